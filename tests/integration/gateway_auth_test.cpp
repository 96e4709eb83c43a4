// The authenticating mode (auth.mode = "gateway") against real PostgreSQL 15 with SCRAM and
// md5 roles, real libpq, psql, pg_isready and pgbench: pgnap authenticates clients itself
// and answers at once while the database sleeps; the first query wakes it and is answered;
// a wrong password never wakes it.
#include <libpq-fe.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/integration/auth_fixture.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

// alice and bob known from the auth_file (their verifier and hash as PostgreSQL holds them):
// logins need no auth_query, so nothing but a query wakes the instance.
GatewayOptions file_options(AuthCluster& ac) {
  const std::string file = ac.write_auth_file("\"alice\" \"" + ac.alice_verifier() + "\"\n\"bob\" \"" + ac.bob_hash() +
                                              "\"\n");
  return ac.gateway_options("file = " + toml_quote(file));
}

// One login and query, so that pgnap remembers the session parameters of (user, postgres),
// then the suspend that follows.
void warm_up(Gateway& gateway, const std::string& user, const std::string& password) {
  auto conn = connect_or_throw(password_conninfo(gateway, user, password), 60s);
  ASSERT_TRUE(query(conn.get(), "select 1").ok);
  conn.reset();
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();
}

TEST(GatewayAuthTest, ARightPasswordGetsASessionAtOnceAndTheFirstQueryWakesTheInstance) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  const int starts = ac.starts();
  ASSERT_EQ(starts, 1);

  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  // Logged in, and the database still sleeps.
  EXPECT_FALSE(ac.cluster().is_running());
  EXPECT_EQ(ac.starts(), starts);
  EXPECT_STREQ(PQparameterStatus(conn.get(), "server_encoding"), "UTF8");
  const auto r = query(conn.get(), "select current_user");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(r.value, "alice");
  EXPECT_EQ(ac.starts(), starts + 1);
  EXPECT_THAT(gateway.log(), HasSubstr("cause: query"));
}

TEST(GatewayAuthTest, AWrongPasswordIsRefusedWith28P01AndNeverWakesTheInstance) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  for (const auto& [user, password] :
       {std::pair{"alice", "wrong"}, std::pair{"bob", "wrong"}, std::pair{"nobody", "whatever"}}) {
    const auto c = connect(password_conninfo(gateway, user, password), 30s);
    EXPECT_FALSE(c.ok());
    EXPECT_EQ(c.server.sqlstate, "28P01") << c.error;
    EXPECT_EQ(c.server.message, std::string("password authentication failed for user \"") + user + "\"");
  }
  EXPECT_EQ(ac.starts(), 0) << "a refused login started the database";
  EXPECT_FALSE(ac.cluster().is_running());
}

TEST(GatewayAuthTest, AnMd5RoleLogsInToTheGatewayAndToPostgresql) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  // pgnap asks bob for md5 (its hash is all it holds) and answers PostgreSQL's md5 challenge
  // with that hash.
  auto conn = connect_or_throw(password_conninfo(gateway, "bob", kBobPassword), 60s);
  const auto who = query(conn.get(), "select current_user");
  ASSERT_TRUE(who.ok) << who.error.message;
  EXPECT_EQ(who.value, "bob");
  const auto wrong = connect(password_conninfo(gateway, "bob", "wrong"), 30s);
  EXPECT_EQ(wrong.server.sqlstate, "28P01");
}

TEST(GatewayAuthTest, PgIsReadyAndConnectAndQuitNeverWakeTheInstance) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  const int starts = ac.starts();
  for (int i = 0; i < 5; ++i) {
    const auto ready = run_command(
        {"pg_isready", "-h", "127.0.0.1", "-p", std::to_string(gateway.port()), "-U", "alice", "-d", "postgres"}, 30s);
    EXPECT_EQ(ready.exit_code, 0) << ready.describe();
    auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
    conn.reset();  // connect and quit
  }
  // An idle authenticated session: open, no query.
  auto idle = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(ac.starts(), starts);
  EXPECT_FALSE(ac.cluster().is_running());
}

TEST(GatewayAuthTest, QueriesPipelinedWhileAsleepAreAnsweredInOrderAfterOneStart) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  ASSERT_EQ(PQenterPipelineMode(conn.get()), 1);
  for (int i = 1; i <= 3; ++i) {
    const std::string sql = "select " + std::to_string(i * 10);
    ASSERT_EQ(PQsendQueryParams(conn.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  }
  ASSERT_EQ(PQpipelineSync(conn.get()), 1);
  for (int i = 1; i <= 3; ++i) {
    PgResultPtr res(PQgetResult(conn.get()));
    ASSERT_NE(res, nullptr);
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(res.get());
    EXPECT_EQ(std::string(PQgetvalue(res.get(), 0, 0)), std::to_string(i * 10));
    PgResultPtr end(PQgetResult(conn.get()));  // the NULL that ends each query's results
    EXPECT_EQ(end, nullptr);
  }
  PgResultPtr sync(PQgetResult(conn.get()));
  ASSERT_NE(sync, nullptr);
  EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC);
  EXPECT_EQ(ac.starts(), 2);
}

TEST(GatewayAuthTest, TwoHundredClientsConnectedWhileAsleepEachQueryAfterOneStart) {
  AuthCluster ac;
  ac.cluster().append_conf("max_connections = 250\n");
  auto options = file_options(ac);
  options.max_waiting = 300;
  options.instance_extra += "pool_size = 210\n";            // every session holds its server connection at once
  options.instance_extra += "connect_timeout = \"60s\"\n";  // and 200 server logins at once, too
  options.login_timeout = "60s";                            // 200 SCRAM logins at once, on a machine that may be busy
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  constexpr int kClients = 200;
  std::vector<PgConnPtr> conns(kClients);
  std::atomic<int> connected{0};
  run_in_parallel(kClients, [&](int i) {
    auto c = connect(password_conninfo(gateway, "alice", kAlicePassword), 120s);
    if (c.ok()) {
      conns[static_cast<std::size_t>(i)] = std::move(c.conn);
      ++connected;
    }
  });
  ASSERT_EQ(connected.load(), kClients);
  EXPECT_FALSE(ac.cluster().is_running()) << "connecting woke the database";
  std::atomic<int> answered{0};
  run_in_parallel(kClients, [&](int i) {
    const auto r = query(conns[static_cast<std::size_t>(i)].get(), "select " + std::to_string(i));
    if (r.ok && r.value == std::to_string(i)) ++answered;
  });
  EXPECT_EQ(answered.load(), kClients);
  EXPECT_EQ(ac.starts(), 2) << "one start for the warm-up, one for all 200";
}

TEST(GatewayAuthTest, ACancelOfAQueuedQueryAnswers57014WithoutSendingIt) {
  AuthCluster ac;
  WrapperBinDir bin;
  auto options = file_options(ac);
  options.bin_dir = bin.path();
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  bin.set_start_delay(3.0);  // a slow start: the query stays queued
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  ASSERT_EQ(PQsendQuery(conn.get(), "create table cancelled_before_sent (x int)"), 1);
  ASSERT_TRUE(gateway.wait_for_log("waking (", 10s, 2)) << gateway.log();
  PGcancel* cancel = PQgetCancel(conn.get());
  char err[256];
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PgResultPtr res(PQgetResult(conn.get()));
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(PQresultStatus(res.get()), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(res.get(), PG_DIAG_SQLSTATE), "57014");
  EXPECT_STREQ(PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY), "canceling statement due to user request");
  while (PGresult* more = PQgetResult(conn.get())) PQclear(more);
  // The session goes on: the next query waits for the wake and runs; the cancelled one never did.
  const auto r = query(conn.get(), "select count(*) from pg_class where relname = 'cancelled_before_sent'");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(r.value, "0");
}

TEST(GatewayAuthTest, AFailedWakeAnswersTheQueryWith57P03AndTheSessionLivesOn) {
  AuthCluster ac;
  auto options = file_options(ac);
  options.wake_timeout = "3s";
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  const std::string conf = ac.cluster().conf();
  ac.cluster().append_conf("shared_buffers = 'not a size'\n");
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  const auto failed = query(conn.get(), "select 1");
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.error.severity, "ERROR");
  EXPECT_EQ(failed.error.sqlstate, "57P03");
  EXPECT_THAT(failed.error.message, HasSubstr("could not be started"));
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << "an ERROR, not a FATAL: the session is fine";
  ac.cluster().set_conf(conf);
  // After the backoff, the same session's next query wakes it.
  ASSERT_TRUE(wait_until([&] { return query(conn.get(), "select 2").ok; }, 60s, 500ms)) << gateway.log();
}

TEST(GatewayAuthTest, APasswordChangedWhileAwakeWorksAtOnce) {
  AuthCluster ac;
  const std::string file = ac.write_auth_file("\"pgnap_auth\" \"auth-pw\"\n");
  Gateway gateway(ac.gateway_options("file = " + toml_quote(file) + "\nuser = \"pgnap_auth\""), &ac.cluster());
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 60s);
  ASSERT_TRUE(query(conn.get(), "alter role alice password 'changed-pw'").ok);
  const auto with_new = connect(password_conninfo(gateway, "alice", "changed-pw"), 30s);
  EXPECT_TRUE(with_new.ok()) << with_new.error;
  const auto with_old = connect(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  EXPECT_FALSE(with_old.ok());
  EXPECT_EQ(with_old.server.sqlstate, "28P01");
}

TEST(GatewayAuthTest, ARoleDroppedWhileAsleepGetsTheServersErrorAtItsFirstQuery) {
  AuthCluster ac;
  const std::string file = ac.write_auth_file("\"pgnap_auth\" \"auth-pw\"\n");
  Gateway gateway(ac.gateway_options("file = " + toml_quote(file) + "\nuser = \"pgnap_auth\""), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);         // alice's verifier is now cached
  ac.admin("drop owned by alice; drop role alice");  // behind pgnap's back, while it sleeps
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  const auto r = query(conn.get(), "select 1");
  EXPECT_FALSE(r.ok);
  // PostgreSQL's own FATAL (libpq then adds that the connection closed).
  EXPECT_THAT(std::string(PQerrorMessage(conn.get())),
              HasSubstr("FATAL:  password authentication failed for user \"alice\""));
  EXPECT_THAT(gateway.log(), HasSubstr("pgnap's verifier was not the server's"));
}

TEST(GatewayAuthTest, AParameterThatChangedIsDeliveredBeforeTheFirstResult) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  ac.admin("alter role alice set timezone = 'Asia/Tokyo'");
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  EXPECT_STRNE(PQparameterStatus(conn.get(), "TimeZone"), "Asia/Tokyo") << "the remembered value comes first";
  const auto r = query(conn.get(), "show timezone");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(r.value, "Asia/Tokyo");
  EXPECT_STREQ(PQparameterStatus(conn.get(), "TimeZone"), "Asia/Tokyo");
}

TEST(GatewayAuthTest, PgbenchThroughTheGatewayHasNoFailures) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  const std::string conninfo = password_conninfo(gateway, "alice", kAlicePassword);
  const auto init = run_command({"pgbench", "-i", "-s", "1", "-q", conninfo}, 120s);
  ASSERT_EQ(init.exit_code, 0) << init.describe();
  const auto bench = run_command({"pgbench", "-n", "-c", "4", "-j", "2", "-T", "3", "-M", "extended", conninfo}, 60s);
  ASSERT_EQ(bench.exit_code, 0) << bench.describe();
  const auto summary = parse_pgbench(bench.out);
  EXPECT_TRUE(summary.parsed) << bench.out;
  EXPECT_GT(summary.processed, 0);
  EXPECT_EQ(summary.failed, 0);
}

TEST(GatewayAuthTest, PsycopgAndJdbcLogInWithScramAndQuery) {
  AuthCluster ac;
  Gateway gateway(file_options(ac), &ac.cluster());
  const std::string port = std::to_string(gateway.port());
  const auto py = run_command({"/usr/bin/python3", "-c",
                               "import psycopg\n"
                               "with psycopg.connect(host='127.0.0.1', port=" +
                                   port +
                                   ", user='alice', password='alice-pw', dbname='postgres') as c:\n"
                                   "  print(c.execute('select current_user').fetchone()[0])\n"},
                              60s);
  ASSERT_EQ(py.exit_code, 0) << py.describe();
  EXPECT_EQ(py.out, "alice\n");

  TempDir java(false);
  write_file(java.path() + "/Login.java",
             "import java.sql.*;\n"
             "public class Login {\n"
             "  public static void main(String[] a) throws Exception {\n"
             "    try (Connection c = DriverManager.getConnection(a[0], \"alice\", \"alice-pw\");\n"
             "         PreparedStatement s = c.prepareStatement(\"select current_user || ?\")) {\n"
             "      s.setString(1, \"!\");\n"
             "      try (ResultSet r = s.executeQuery()) { r.next(); System.out.println(r.getString(1)); }\n"
             "    }\n"
             "  }\n"
             "}\n");
  const std::string jar = "/usr/share/java/postgresql.jar";
  const auto compile = run_command({"javac", "-d", java.path(), java.path() + "/Login.java"}, 120s);
  ASSERT_EQ(compile.exit_code, 0) << compile.describe();
  const auto run = run_command(
      {"java", "-cp", java.path() + ":" + jar, "Login", "jdbc:postgresql://127.0.0.1:" + port + "/postgres"}, 120s);
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  EXPECT_EQ(run.out, "alice!\n");
}

}  // namespace
}  // namespace pgnap::it

namespace pgnap::it {
namespace {

TEST(GatewayAuthTest, SigtermEndsSessionsWithNoServerAtOnceWith57P01) {
  AuthCluster ac;
  auto options = file_options(ac);
  options.gateway_extra = "shutdown_timeout = \"60s\"";
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  warm_up(gateway, "alice", kAlicePassword);
  auto idle = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  // Nothing of the session is in flight: the drain does not wait 60 s for it.
  EXPECT_EQ(gateway.terminate(SIGTERM, 20s), 0) << gateway.log();
  const auto after = query(idle.get(), "select 1");
  EXPECT_FALSE(after.ok);
  EXPECT_THAT(std::string(PQerrorMessage(idle.get())), HasSubstr("the gateway is shutting down"));
}

}  // namespace
}  // namespace pgnap::it
