// Parked sessions (docs/pooling.md, "Parked sessions"), against a real PostgreSQL 15 that
// suspends between two uses (idle_timeout 1 s): an idle session of the authenticating mode
// keeps its client connection while the database sleeps, and its next query gets a server
// connection restored to the same settings and prepared statements. A session holding what
// cannot be restored (a temporary table, an advisory lock, ...) is closed as before.
#include <libpq-fe.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/auth_fixture.h"
#include "tests/integration/http_client.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

GatewayOptions parking_options(AuthCluster& ac, const std::string& extra = {}) {
  auto options = ac.file_options();
  options.idle_timeout = "1s";
  options.min_awake = "0s";
  options.login_timeout = "60s";
  options.metrics_listen = "127.0.0.1:0";
  options.instance_extra += extra;
  return options;
}

double metric(const Gateway& gateway, const std::string& series) {
  return scrape_metric(gateway.metrics_port(), series);
}

PgConnPtr log_in(const Gateway& gateway, const std::string& user = "alice") {
  const std::string password = user == "alice" ? kAlicePassword : kBobPassword;
  return connect_or_throw(password_conninfo(gateway, user, password), 60s);
}

std::string value_of(PGconn* conn, const std::string& sql) {
  const auto r = query(conn, sql);
  EXPECT_TRUE(r.ok) << sql << ": " << r.error.sqlstate << " " << r.error.message;
  return r.value;
}

// Waits for the instance to stop (pg_ctl status), the sessions still connected.
::testing::AssertionResult sleeps(AuthCluster& ac, const Gateway& gateway) {
  if (wait_until([&] { return !ac.cluster().is_running(); }, 30s, 100ms)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the instance did not suspend\n" << gateway.log();
}

TEST(ParkingTest, PsqlKeepsItsSearchPathAndNamedStatementAcrossASuspend) {
  AuthCluster ac;
  ac.admin(
      "create schema app; create table app.items(n int); insert into app.items values (7);"
      "grant usage on schema app to public; grant select on app.items to public");
  Gateway gateway(parking_options(ac), &ac.cluster());

  // One psql session: a SET and a PREPARE, idle while the database sleeps, then both used.
  TempDir dir(false);
  const std::string flag = dir.path() + "/slept";
  write_file(dir.path() + "/session.sql",
             "set search_path = app, public;\n"
             "prepare item_count as select count(*) from items;\n"
             "select 'before', n from items;\n"
             "\\! for i in $(seq 600); do test -e " +
                 flag +
                 " && break; sleep 0.1; done\n"
                 "select 'after', n from items;\n"
                 "execute item_count;\n"
                 "show search_path;\n");
  std::jthread psql_run([&] {
    const auto r = run_command({"psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-f", dir.path() + "/session.sql",
                                password_conninfo(gateway, "alice", kAlicePassword)},
                               120s);
    EXPECT_EQ(r.exit_code, 0) << r.describe() << gateway.log();
    EXPECT_EQ(r.out, "SET\nPREPARE\nbefore|7\nafter|7\n1\napp, public\n") << r.describe();
    EXPECT_EQ(r.err, "") << "no error reaches the app";
  });
  struct Release {  // psql goes on, whatever happens here
    std::string flag;
    ~Release() { write_file(flag, ""); }
  } release{flag};
  ASSERT_TRUE(wait_until([&] { return metric(gateway, "pgnap_session_parks_total{db_instance=\"main\"}") == 1; }, 30s))
      << gateway.log();
  ASSERT_TRUE(sleeps(ac, gateway));
  EXPECT_THAT(ac.cluster().server_log(), HasSubstr("database system is shut down"));
  EXPECT_EQ(metric(gateway, "pgnap_parked_sessions{db_instance=\"main\"}"), 1);
  const int starts = ac.starts();
  write_file(flag, "");
  psql_run.join();
  EXPECT_EQ(ac.starts(), starts + 1) << "the resume woke it once";
  EXPECT_EQ(metric(gateway, "pgnap_session_resumes_total{db_instance=\"main\"}"), 1);
  EXPECT_EQ(metric(gateway, "pgnap_session_restore_failures_total{db_instance=\"main\"}"), 0);
  EXPECT_EQ(metric(gateway, "pgnap_idle_sessions_closed_total{db_instance=\"main\"}"), 0);
}

TEST(ParkingTest, ProtocolLevelStatementsSettingsAndTheCancelKeySurviveAPark) {
  AuthCluster ac;
  Gateway gateway(parking_options(ac), &ac.cluster());
  auto conn = log_in(gateway);
  ASSERT_TRUE(query(conn.get(), "set work_mem = '77MB'").ok);
  ASSERT_TRUE(query(conn.get(), "set application_name = 'parked-app'").ok);
  ASSERT_TRUE(query(conn.get(), "set timezone = 'Asia/Tokyo'").ok);
  const Oid int4 = 23;
  PgResultPtr prepared(PQprepare(conn.get(), "add_one", "select $1::int + 1", 1, &int4));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  PgResultPtr inferred(PQprepare(conn.get(), "echo", "select $1 || '!'", 0, nullptr));
  ASSERT_EQ(PQresultStatus(inferred.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  const int pid_before = PQbackendPID(conn.get());

  ASSERT_TRUE(sleeps(ac, gateway));
  EXPECT_EQ(metric(gateway, "pgnap_parked_sessions{db_instance=\"main\"}"), 1);

  const char* one[] = {"41"};
  PgResultPtr r(PQexecPrepared(conn.get(), "add_one", 1, one, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get()) << gateway.log();
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "42");
  const char* word[] = {"hi"};
  PgResultPtr e(PQexecPrepared(conn.get(), "echo", 1, word, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(e.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQgetvalue(e.get(), 0, 0), "hi!");
  EXPECT_EQ(value_of(conn.get(), "show work_mem"), "77MB");
  EXPECT_EQ(value_of(conn.get(), "show application_name"), "parked-app");
  EXPECT_STREQ(PQparameterStatus(conn.get(), "TimeZone"), "Asia/Tokyo");
  EXPECT_EQ(value_of(conn.get(), "show timezone"), "Asia/Tokyo");
  EXPECT_EQ(PQbackendPID(conn.get()), pid_before) << "the key pgnap gave the client is the session's";
  EXPECT_EQ(ac.starts(), 2);

  // The same key cancels a query on the new server connection.
  ASSERT_EQ(PQsendQuery(conn.get(), "select pg_sleep(30)"), 1);
  std::this_thread::sleep_for(300ms);
  PGcancel* cancel = PQgetCancel(conn.get());
  char err[256];
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PgResultPtr cancelled(PQgetResult(conn.get()));
  EXPECT_STREQ(PQresultErrorField(cancelled.get(), PG_DIAG_SQLSTATE), "57014");
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
}

TEST(ParkingTest, ASessionWithATemporaryTableIsNotParkedAndIsClosedAsBefore) {
  AuthCluster ac;
  Gateway gateway(parking_options(ac), &ac.cluster());
  auto parked = log_in(gateway);
  ASSERT_TRUE(query(parked.get(), "select 1").ok);
  auto temp = log_in(gateway, "bob");
  ASSERT_TRUE(query(temp.get(), "create temp table scratch(x int)").ok);

  ASSERT_TRUE(sleeps(ac, gateway));
  EXPECT_THAT(gateway.log(), HasSubstr("closed 1 idle session(s) so that it can sleep"));
  EXPECT_EQ(metric(gateway, "pgnap_session_parks_refused_total{db_instance=\"main\",reason=\"temporary tables\"}"), 1);
  const auto after = query(temp.get(), "select * from scratch");
  EXPECT_FALSE(after.ok);
  EXPECT_THAT(std::string(PQerrorMessage(temp.get())), HasSubstr("terminating idle connection"));
  EXPECT_TRUE(query(parked.get(), "select 'resumed'").ok) << gateway.log();
}

TEST(ParkingTest, AdvisoryLocksCursorsAndListenersAreNotParked) {
  AuthCluster ac;
  auto options = parking_options(ac, "idle_session_timeout = \"1s\"\n");
  options.idle_timeout = "30s";  // awake throughout: the locked sessions stay attached
  Gateway gateway(options, &ac.cluster());
  auto locked = log_in(gateway);
  ASSERT_TRUE(query(locked.get(), "select pg_advisory_lock(7)").ok);
  auto cursor = log_in(gateway);
  ASSERT_TRUE(query(cursor.get(), "declare c cursor with hold for select 1").ok);
  auto listener = log_in(gateway, "bob");
  ASSERT_TRUE(query(listener.get(), "listen jobs").ok);
  auto escapes = log_in(gateway, "bob");
  ASSERT_TRUE(query(escapes.get(), "set standard_conforming_strings = off").ok);
  ASSERT_TRUE(query(escapes.get(), "prepare quoted as select 'it\\'s'").ok);
  auto plain = log_in(gateway);
  ASSERT_TRUE(query(plain.get(), "select 1").ok);
  ASSERT_TRUE(wait_until([&] { return metric(gateway, "pgnap_session_parks_total{db_instance=\"main\"}") == 1; }, 30s))
      << gateway.log();
  EXPECT_TRUE(wait_until(
      [&] {
        return metric(gateway, "pgnap_session_parks_refused_total{db_instance=\"main\",reason=\"advisory locks\"}") >=
                   1 &&
               metric(gateway, "pgnap_session_parks_refused_total{db_instance=\"main\",reason=\"open cursors\"}") >=
                   1 &&
               metric(gateway,
                      "pgnap_session_parks_refused_total{db_instance=\"main\",reason=\"standard_conforming_"
                      "strings off\"}") >= 1;
      },
      30s))
      << gateway.log();
  EXPECT_EQ(metric(gateway, "pgnap_parked_sessions{db_instance=\"main\"}"), 1);
  // Still attached: the lock and the cursor are where they were.
  EXPECT_EQ(value_of(cursor.get(), "fetch c"), "1");
  EXPECT_EQ(value_of(locked.get(), "select count(*) from pg_locks where locktype = 'advisory' and granted"), "1");
  EXPECT_EQ(value_of(listener.get(), "select pg_listening_channels()"), "jobs");
  EXPECT_EQ(value_of(escapes.get(), "execute quoted"), "it's");
}

TEST(ParkingTest, AHundredParkedSessionsResumingAtOnceShareOneStart) {
  AuthCluster ac;
  Gateway gateway(parking_options(ac), &ac.cluster());
  std::vector<PgConnPtr> conns;
  for (int i = 0; i < 100; ++i) {
    conns.push_back(log_in(gateway, i % 2 == 0 ? "alice" : "bob"));
    ASSERT_TRUE(query(conns.back().get(), "set statement_timeout = " + std::to_string(10001 + i)).ok);
  }
  ASSERT_TRUE(sleeps(ac, gateway));
  ASSERT_TRUE(wait_until([&] { return metric(gateway, "pgnap_parked_sessions{db_instance=\"main\"}") == 100; }, 30s));
  const int starts = ac.starts();
  for (auto& conn : conns) ASSERT_EQ(PQsendQuery(conn.get(), "show statement_timeout"), 1);
  for (int i = 0; i < 100; ++i) {
    PgResultPtr r(PQgetResult(conns[i].get()));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << i << ": " << PQerrorMessage(conns[i].get());
    EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), std::to_string(10001 + i) + "ms");
    while (PGresult* rest = PQgetResult(conns[i].get())) PQclear(rest);
  }
  EXPECT_EQ(ac.starts(), starts + 1);
  EXPECT_EQ(metric(gateway, "pgnap_session_resumes_total{db_instance=\"main\"}"), 100);
}

TEST(ParkingTest, AStatementThatCannotBePreparedAgainEndsTheSessionWithAFatalNamingIt) {
  AuthCluster ac;
  ac.admin("create table public.gone(n int); grant select on public.gone to public");
  Gateway gateway(parking_options(ac), &ac.cluster());
  auto conn = log_in(gateway);
  ASSERT_TRUE(query(conn.get(), "prepare from_gone as select n from gone").ok);
  ASSERT_TRUE(sleeps(ac, gateway));
  ac.admin("drop table public.gone");  // behind pgnap's back, while the session is parked
  const auto r = query(conn.get(), "execute from_gone");
  EXPECT_FALSE(r.ok);
  const std::string error = PQerrorMessage(conn.get());
  EXPECT_THAT(error, HasSubstr("could not restore the parked session's prepared statement \"from_gone\"")) << error;
  EXPECT_THAT(error, HasSubstr("relation \"gone\" does not exist")) << error;
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_BAD);
  EXPECT_EQ(metric(gateway, "pgnap_session_restore_failures_total{db_instance=\"main\"}"), 1);
  EXPECT_EQ(metric(gateway, "pgnap_parked_sessions{db_instance=\"main\"}"), 0);
}

TEST(ParkingTest, CloseListenersClosesAnIdleListenerWhileTheOthersPark) {
  AuthCluster ac;
  Gateway gateway(parking_options(ac, "close_listeners = true\n"), &ac.cluster());
  auto listener = log_in(gateway, "bob");
  ASSERT_TRUE(query(listener.get(), "listen jobs").ok);
  auto plain = log_in(gateway);
  ASSERT_TRUE(query(plain.get(), "select 1").ok);
  ASSERT_TRUE(sleeps(ac, gateway));
  EXPECT_FALSE(query(listener.get(), "select 1").ok);
  EXPECT_THAT(std::string(PQerrorMessage(listener.get())), HasSubstr("terminating idle connection"));
  EXPECT_EQ(value_of(plain.get(), "select 'resumed'"), "resumed");
}

TEST(ParkingTest, ParkedSessionsCountAgainstMaxClients) {
  AuthCluster ac;
  auto options = parking_options(ac);
  options.gateway_extra = "max_clients = 2\n";
  Gateway gateway(options, &ac.cluster());
  auto one = log_in(gateway);
  auto two = log_in(gateway, "bob");
  ASSERT_TRUE(query(one.get(), "select 1").ok);
  ASSERT_TRUE(query(two.get(), "select 2").ok);
  ASSERT_TRUE(sleeps(ac, gateway));
  ASSERT_EQ(metric(gateway, "pgnap_parked_sessions{db_instance=\"main\"}"), 2);
  const auto third = connect(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  EXPECT_FALSE(third.ok());
  EXPECT_EQ(third.server.sqlstate, "53300") << third.error;
  two.reset();
  EXPECT_TRUE(wait_until([&] { return connect(password_conninfo(gateway, "alice", kAlicePassword), 30s).ok(); }, 10s,
                         100ms));
  EXPECT_EQ(value_of(one.get(), "select 'resumed'"), "resumed");
}

TEST(ParkingTest, ParkSessionsFalseClosesIdleSessionsAsBefore) {
  AuthCluster ac;
  Gateway gateway(parking_options(ac, "park_sessions = false\n"), &ac.cluster());
  auto conn = log_in(gateway);
  ASSERT_TRUE(query(conn.get(), "select 1").ok);
  ASSERT_TRUE(sleeps(ac, gateway));
  EXPECT_FALSE(query(conn.get(), "select 2").ok);
  EXPECT_THAT(std::string(PQerrorMessage(conn.get())), HasSubstr("terminating idle connection"));
  EXPECT_EQ(metric(gateway, "pgnap_session_parks_total{db_instance=\"main\"}"), 0);
}

}  // namespace
}  // namespace pgnap::it
