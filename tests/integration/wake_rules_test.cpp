// Wake rules and maintenance wakes (issue 16), end to end against real PostgreSQL:
// [instances.NAME.wake] ignore — clients that never wake the instance (refused with 57P03
// while it sleeps, served but never keeping it awake while it is awake) — and
// [instances.NAME.maintenance] — an instance asleep for `every` is woken, a command runs
// against it, the run is recorded in the ledger, and it sleeps again — and the report's
// record of who woke it.
//
// Tests run in parallel on a loaded machine: no tight timings, seconds of slack.
#include <libpq-fe.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <poll.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "tests/integration/auth_fixture.h"
#include "tests/integration/harness.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

constexpr const char* kAsleepMessage = "instance \"main\" is asleep and is not woken for this client";

std::string wake_toml(const std::string& ignore) { return "[instances.main.wake]\nignore = " + ignore + "\n"; }

boost::json::object report_json(const Gateway& gateway) {
  const auto r = run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  return boost::json::parse(r.out).as_object();
}

boost::json::object main_instance(const boost::json::object& report) {
  for (const auto& i : report.at("instances").as_array()) {
    if (i.as_object().at("name").as_string() == "main") return i.as_object();
  }
  ADD_FAILURE() << "no instance \"main\" in the report: " << boost::json::serialize(report);
  return {};
}

// query() with a deadline of its own (libpq's PQexec would wait forever): nullopt if no
// result came in time.
std::optional<QueryResult> query_within(PGconn* conn, const std::string& sql, Millis timeout) {
  if (PQsendQuery(conn, sql.c_str()) == 0) {
    QueryResult r;
    r.error.message = PQerrorMessage(conn);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PQisBusy(conn) != 0) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left <= Millis(0)) return std::nullopt;
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    (void)::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 200)));
    if (PQconsumeInput(conn) == 0) break;
  }
  QueryResult out;
  out.ok = true;
  bool first = true;
  while (PGresult* raw = PQgetResult(conn)) {
    PgResultPtr res(raw);
    if (!first) continue;
    first = false;
    const auto status = PQresultStatus(raw);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
      out.rows = PQntuples(raw);
      if (out.rows > 0 && PQnfields(raw) > 0) out.value = PQgetvalue(raw, 0, 0);
    } else {
      out.ok = false;
      out.error = result_error(raw, conn);
    }
  }
  if (first) {
    out.ok = false;
    out.error.message = PQerrorMessage(conn);
  }
  return out;
}

CommandResult pgnap_wake(const Gateway& gateway) {
  return run_command({pgnap_binary(), "wake", "main", "-c", gateway.config_path()}, 60s);
}

// ---- 1. transparent mode, ignore by application_name -----------------------------------------

TEST(WakeRulesTest, TransparentIgnoredApplicationNameIsRefusedWith57P03AndNeverWakes) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.extra_toml = wake_toml(R"([ { application_name = "uptime*" } ])");
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  for (int i = 0; i < 20; ++i) {
    const auto c = connect(gateway.conninfo() + " application_name=uptime-kuma", 30s);
    ASSERT_FALSE(c.ok()) << "attempt " << i << " was let in while asleep";
    EXPECT_EQ(c.server.sqlstate, "57P03") << "attempt " << i << ": " << c.error;
    EXPECT_EQ(c.server.severity, "FATAL") << c.error;
    EXPECT_EQ(c.server.message, kAsleepMessage) << c.error;
    EXPECT_THAT(c.server.detail, HasSubstr("application_name = \"uptime*\"")) << c.error;
  }
  EXPECT_EQ(cluster.ready_count(), 0) << "an ignored client started the cluster";
  EXPECT_FALSE(cluster.is_running());
  EXPECT_EQ(gateway.count_in_log("waking"), 0u) << gateway.log();

  // Another application wakes it.
  const auto r = psql(gateway.conninfo() + " application_name=billing", "select 'served'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "served\n");
  EXPECT_EQ(cluster.ready_count(), 1);
  EXPECT_EQ(gateway.count_in_log("waking"), 1u) << gateway.log();

  // Awake now: the ignored application is served.
  const auto kuma = psql(gateway.conninfo() + " application_name=uptime-kuma", "select 'kuma served'");
  ASSERT_EQ(kuma.exit_code, 0) << kuma.describe();
  EXPECT_EQ(kuma.out, "kuma served\n");
  EXPECT_EQ(cluster.ready_count(), 1);
}

bool cluster_running_check(AuthCluster& ac) { return ac.cluster().is_running(); }

// ---- 2. gateway-auth mode, ignore by user ------------------------------------------------------

TEST(WakeRulesTest, GatewayAuthIgnoredUserLogsInButItsQueriesGet57P03WithoutWaking) {
  AuthCluster ac;
  auto options = ac.file_options();
  options.idle_timeout = "1s";
  options.extra_toml += wake_toml(R"([ { user = "bob" } ])");
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  // Warm up: pgnap learns the session parameters of alice and bob (bob logs in while alice's
  // query keeps it awake), then it sleeps.
  {
    auto alice = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 60s);
    ASSERT_TRUE(query(alice.get(), "select 1").ok);
    auto bob = connect_or_throw(password_conninfo(gateway, "bob", kBobPassword), 60s);
    const auto b = query(bob.get(), "select current_user");
    ASSERT_TRUE(b.ok) << b.error.message;
    EXPECT_EQ(b.value, "bob");
  }
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();
  ASSERT_FALSE(ac.cluster().is_running());
  const int starts = ac.starts();
  ASSERT_EQ(starts, 1);
  const std::size_t wakes_logged = gateway.count_in_log("waking");

  // bob logs in while it sleeps (the gateway answers) ...
  auto bob = connect_or_throw(password_conninfo(gateway, "bob", kBobPassword), 30s);
  EXPECT_FALSE(ac.cluster().is_running());
  // ... and every query of his is refused with an ERROR, the session staying usable.
  for (int i = 0; i < 20; ++i) {
    const auto answered = query_within(bob.get(), "select 'bob " + std::to_string(i) + "'", 30s);
    ASSERT_TRUE(answered) << "query " << i << " got no answer in 30 s";
    const auto& q = *answered;
    ASSERT_FALSE(q.ok) << "query " << i << " was served while asleep: " << q.value;
    EXPECT_EQ(q.error.severity, "ERROR") << "query " << i << ": " << q.error.message;
    EXPECT_EQ(q.error.sqlstate, "57P03") << "query " << i << ": " << q.error.message;
    EXPECT_EQ(q.error.message, kAsleepMessage);
    EXPECT_THAT(q.error.detail, HasSubstr("user = \"bob\"")) << q.error.detail;
    ASSERT_EQ(PQstatus(bob.get()), CONNECTION_OK)
        << "query " << i << " closed bob's session: " << PQerrorMessage(bob.get());
  }
  EXPECT_EQ(ac.starts(), starts) << "bob's queries started the database";
  EXPECT_FALSE(ac.cluster().is_running());
  EXPECT_EQ(gateway.count_in_log("waking"), wakes_logged) << gateway.log();

  // A while later, still asleep: still answered the same way.
  std::this_thread::sleep_for(2s);
  {
    const auto later = query_within(bob.get(), "select 'bob later'", 30s);
    ASSERT_TRUE(later) << "bob's query after a pause got no answer in 30 s";
    EXPECT_FALSE(later->ok);
    EXPECT_EQ(later->error.sqlstate, "57P03") << later->error.message;
  }
  EXPECT_EQ(ac.starts(), starts);

  // alice is not ignored: her query wakes it. bob's next query, on the same session, is served.
  auto alice = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  const auto a = query(alice.get(), "select current_user");
  ASSERT_TRUE(a.ok) << a.error.message;
  EXPECT_EQ(a.value, "alice");
  EXPECT_EQ(ac.starts(), starts + 1);
  ASSERT_TRUE(cluster_running_check(ac));
  const auto b = query_within(bob.get(), "select current_user", 30s);
  ASSERT_TRUE(b) << "bob's query, sent while the instance is awake, got no answer in 30 s";
  ASSERT_TRUE(b->ok) << b->error.sqlstate << " " << b->error.message;
  EXPECT_EQ(b->value, "bob");
}

// ---- 3. transparent mode, ignore by address ------------------------------------------------------

TEST(WakeRulesTest, TransparentIgnoredAddressIsRefusedWhileAsleepAndServedOnceWokenByPgnapWake) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.extra_toml = wake_toml(R"([ { address = "127.0.0.1/32" } ])");
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  for (int i = 0; i < 20; ++i) {
    const auto c = connect(gateway.conninfo(), 30s);
    ASSERT_FALSE(c.ok()) << "attempt " << i << " was let in while asleep";
    EXPECT_EQ(c.server.sqlstate, "57P03") << c.error;
    EXPECT_EQ(c.server.message, kAsleepMessage) << c.error;
    EXPECT_THAT(c.server.detail, HasSubstr("address = \"127.0.0.1/32\"")) << c.error;
  }
  EXPECT_EQ(cluster.ready_count(), 0);
  EXPECT_EQ(gateway.count_in_log("waking"), 0u) << gateway.log();

  // The harness listens on 127.0.0.1 only: the operator wakes it.
  const auto w = pgnap_wake(gateway);
  ASSERT_EQ(w.exit_code, 0) << w.describe();
  ASSERT_TRUE(wait_until([&] { return cluster.is_running(); }, 60s));
  ASSERT_TRUE(gateway.wait_for_log("ready after", 60s)) << gateway.log();

  const auto r = psql(gateway.conninfo(), "select 'served while awake'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "served while awake\n");
  EXPECT_EQ(cluster.ready_count(), 1);
}

// ---- 4. an ignored session never keeps it awake ----------------------------------------------------

TEST(WakeRulesTest, TransparentIgnoredSessionDoesNotKeepTheInstanceAwakeAndIsClosedWith57P01) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "2s";
  options.instance_extra = "idle_session_timeout = \"60s\"\n";
  options.extra_toml = wake_toml(R"([ { application_name = "uptime*" } ])");
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  // A normal client wakes it and leaves.
  {
    const auto r = psql(gateway.conninfo() + " application_name=billing", "select 1");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
  }
  ASSERT_TRUE(cluster.is_running());
  ASSERT_EQ(gateway.count_in_log("asleep (was awake"), 0u) << gateway.log();

  // The monitor stays connected and busy: select 1 every second.
  auto monitor = connect_or_throw(gateway.conninfo() + " application_name=uptime-x", 30s);
  const auto started = std::chrono::steady_clock::now();
  ServerError closed_with;
  int served = 0;
  bool closed = false;
  while (std::chrono::steady_clock::now() - started < 30s) {
    const auto q = query(monitor.get(), "select 1");
    if (!q.ok || PQstatus(monitor.get()) != CONNECTION_OK) {
      closed = true;
      closed_with = q.error;
      break;
    }
    ++served;
    std::this_thread::sleep_for(1s);
  }
  const auto closed_after = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(closed) << "the ignored session was kept open for 30 s; served " << served << " queries\n"
                      << gateway.log();
  EXPECT_LT(closed_after, 20s);
  EXPECT_GE(served, 1) << "the ignored client was not served while awake";
  // libpq reports the FATAL that closed the connection in its error message (the failed
  // query's result carries no SQLSTATE of its own).
  EXPECT_THAT(std::string(PQerrorMessage(monitor.get())) + closed_with.message,
              HasSubstr("terminating idle connection so that the database can sleep"))
      << closed_with.sqlstate << " " << PQerrorMessage(monitor.get());
  EXPECT_TRUE(gateway.wait_for_log("asleep (was awake", 15s)) << gateway.log();
  EXPECT_TRUE(wait_until([&] { return !cluster.is_running(); }, 15s));
  EXPECT_EQ(cluster.ready_count(), 1);
}

// ---- 5. maintenance wakes ------------------------------------------------------------------------

// `expected_output` may say {SOCK} for the cluster's socket directory.
void run_maintenance_test(const std::string& script, int expected_status, std::string expected_output) {
  Cluster cluster({.tcp = false});  // the command reaches it over its socket directory
  if (const auto at = expected_output.find("{SOCK}"); at != std::string::npos) {
    expected_output.replace(at, 6, cluster.socket_dir());
  }
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1s";
  options.extra_toml =
      "[instances.main.maintenance]\nevery = \"2s\"\nstay_awake = \"1s\"\n"
      "command = [\"sh\", \"-c\", " +
      toml_quote(script) + "]\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  // Asleep 2 s: woken for maintenance, the command runs, then it sleeps again.
  ASSERT_TRUE(gateway.wait_for_log("waking (maintenance", 30s)) << gateway.log();
  ASSERT_TRUE(gateway.wait_for_log("maintenance: running", 60s)) << gateway.log();
  ASSERT_TRUE(gateway.wait_for_log("maintenance: sh -c", 60s)) << gateway.log();
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 60s)) << gateway.log();
  EXPECT_EQ(cluster.ready_count(), 1);  // (a second maintenance wake may follow later)

  const std::string log = gateway.log();
  // The finished line (its level, the exit status) and the output tail after it.
  const auto at = log.find("maintenance: sh -c");
  ASSERT_NE(at, std::string::npos) << log;
  const auto line_start = log.rfind('\n', at) + 1;
  const std::string line = log.substr(line_start, log.find('\n', at) - line_start);
  const std::string from_finish = log.substr(at, 300);
  EXPECT_THAT(line, HasSubstr("exited with status " + std::to_string(expected_status))) << line;
  EXPECT_THAT(line, HasSubstr(expected_status == 0 ? " info " : " warning ")) << line;
  EXPECT_THAT(from_finish, HasSubstr(expected_output)) << from_finish;

  const auto report = report_json(gateway);
  const auto inst = main_instance(report);
  ASSERT_FALSE(inst.empty());
  const auto& causes = inst.at("wake_causes").as_object();
  EXPECT_GE(causes.at("maintenance").to_number<long>(), 1) << boost::json::serialize(inst);
  EXPECT_EQ(causes.at("client").to_number<long>(), 0) << boost::json::serialize(inst);
  const auto& m = inst.at("maintenance").as_object();
  EXPECT_GE(m.at("runs").to_number<long>(), 1) << boost::json::serialize(m);
  ASSERT_FALSE(m.at("last_exit_status").is_null()) << boost::json::serialize(m);
  EXPECT_EQ(m.at("last_exit_status").to_number<long>(), expected_status) << boost::json::serialize(m);
  EXPECT_EQ(m.at("last_outcome").as_string(), expected_status == 0 ? "ok" : "failed") << boost::json::serialize(m);
  if (expected_status == 0) {
    EXPECT_EQ(m.at("failed").to_number<long>(), 0) << boost::json::serialize(m);
  } else {
    EXPECT_EQ(m.at("failed").to_number<long>(), m.at("runs").to_number<long>()) << boost::json::serialize(m);
  }
}

TEST(WakeRulesTest, MaintenanceWakeRunsASucceedingCommandAgainstTheInstanceAndSleepsAgain) {
  // A cluster on a socket directory: PGHOST is that directory, PGPORT 5432.
  run_maintenance_test(R"(echo "host=$PGHOST port=$PGPORT"; exit 0)", 0, "host={SOCK} port=5432");
}

TEST(WakeRulesTest, MaintenanceWakeRecordsAFailingCommandsExitStatusAndOutput) {
  run_maintenance_test("echo broken >&2; exit 3", 3, "broken");
}

// ---- 6. the report's client wakes ------------------------------------------------------------------

TEST(WakeRulesTest, ReportListsTheApplicationNameAndAddressThatWokeIt) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1s";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  for (int i = 1; i <= 3; ++i) {
    const auto r = psql(gateway.conninfo() + " application_name=uptime-monitor", "select 1");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s, static_cast<std::size_t>(i))) << gateway.log();
  }
  EXPECT_EQ(cluster.ready_count(), 3);

  const auto inst = main_instance(report_json(gateway));
  ASSERT_FALSE(inst.empty());
  EXPECT_EQ(inst.at("wake_causes").at("client").to_number<long>(), 3) << boost::json::serialize(inst);
  const auto& cw = inst.at("client_wakes").as_object();
  const auto& apps = cw.at("by_application").as_array();
  ASSERT_GE(apps.size(), 1u) << boost::json::serialize(cw);
  EXPECT_EQ(apps.at(0).at("application_name").as_string(), "uptime-monitor") << boost::json::serialize(cw);
  EXPECT_EQ(apps.at(0).at("wakes").to_number<long>(), 3) << boost::json::serialize(cw);
  bool loopback = false;
  for (const auto& a : cw.at("by_address").as_array()) {
    if (a.at("address").as_string() == "127.0.0.1") {
      loopback = true;
      EXPECT_EQ(a.at("wakes").to_number<long>(), 3) << boost::json::serialize(cw);
    }
  }
  EXPECT_TRUE(loopback) << boost::json::serialize(cw);

  const auto table = run_command({pgnap_binary(), "report", "-c", gateway.config_path()});
  ASSERT_EQ(table.exit_code, 0) << table.describe();
  EXPECT_THAT(table.out, HasSubstr("uptime-monitor"));
  EXPECT_THAT(table.out, HasSubstr("127.0.0.1"));
}

}  // namespace
}  // namespace pgnap::it
