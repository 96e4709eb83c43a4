// Stopping pgnap: SIGTERM or SIGINT ends it with exit 0, its sessions end, its port closes,
// none of its own processes outlive it, and the instances are left as they are (docs/architecture.md:
// "leaves instances as they are unless configured to suspend them"). Sessions may finish for
// up to shutdown_timeout; the ones still open then are ended with 57P01; a second signal
// stops at once.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <stdexcept>

namespace pgnap::it {
namespace {

// Nothing pgnap started is still running: its process group is empty, and no pg_ctl runs
// for the instance's data directory.
void expect_nothing_left(pid_t gateway_pid, const Cluster& cluster) {
  EXPECT_TRUE(wait_until([&] { return processes_in_group(gateway_pid).empty(); }, 5s))
      << "processes left in pgnap's process group: " << ::testing::PrintToString(processes_in_group(gateway_pid));
  EXPECT_TRUE(processes_with_cmdline({"pg_ctl", cluster.data_dir()}).empty())
      << "a pg_ctl for " << cluster.data_dir() << " is still running";
}

bool port_refuses(std::uint16_t port) {
  try {
    auto raw = RawClient::tcp(port, 2s);
    return false;
  } catch (const std::runtime_error&) {
    return true;
  }
}

TEST(ShutdownTest, SigtermWithASessionOpenExitsZeroAndLeavesNothingRunning) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.gateway_extra = "shutdown_timeout = \"0s\"\n";  // no drain: sessions end at once
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto session = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(session.get(), "select 1").ok);
  ASSERT_TRUE(cluster.is_running());

  const pid_t pid = gateway.pid();
  EXPECT_EQ(gateway.terminate(SIGTERM, 15s), 0) << gateway.log();
  expect_nothing_left(pid, cluster);
  EXPECT_TRUE(port_refuses(gateway.port()))
      << "pgnap's port still accepts connections after it exited: did a process it started "
         "(the postmaster?) inherit its listening socket?";
  EXPECT_FALSE(query(session.get(), "select 1").ok) << "the session outlived the gateway";
  // Not configured to suspend on exit: the awake instance stays awake.
  EXPECT_TRUE(cluster.is_running());
}

TEST(ShutdownTest, SigintWhileAsleepExitsZeroAndStartsNothing) {
  Cluster cluster;
  Gateway gateway(GatewayOptions::for_cluster(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const pid_t pid = gateway.pid();
  EXPECT_EQ(gateway.terminate(SIGINT, 15s), 0) << gateway.log();
  expect_nothing_left(pid, cluster);
  EXPECT_FALSE(cluster.is_running());
  EXPECT_EQ(cluster.ready_count(), 0);
}

// One session finishes its query and disconnects within shutdown_timeout; the other stays
// idle and is ended with 57P01 when the time is up. New connections are refused from the
// first moment.
TEST(ShutdownTest, SigtermDrainsASessionThatFinishesAndEndsOneThatDoesNotWith57P01) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.gateway_extra = "shutdown_timeout = \"3s\"\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto finishing = connect_or_throw(gateway.conninfo(), 60s);
  auto lingering = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(lingering.get(), "select 1").ok);
  ASSERT_EQ(PQsendQuery(finishing.get(), "select pg_sleep(1.5), 'finished'"), 1);

  const auto signalled = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(gateway.pid(), SIGTERM), 0);
  ASSERT_TRUE(gateway.wait_for_log("draining 2 session(s)", 5s)) << gateway.log();
  EXPECT_TRUE(port_refuses(gateway.port())) << "pgnap still accepts connections while draining";

  // The query in flight completes, and its client leaves in time.
  PgResultPtr result(PQgetResult(finishing.get()));
  ASSERT_EQ(PQresultStatus(result.get()), PGRES_TUPLES_OK) << PQerrorMessage(finishing.get());
  EXPECT_STREQ(PQgetvalue(result.get(), 0, 1), "finished");
  while (PGresult* more = PQgetResult(finishing.get())) PQclear(more);
  finishing.reset();

  // The idle one is ended when shutdown_timeout is up, and pgnap exits 0.
  EXPECT_EQ(gateway.wait_exit(15s), 0) << gateway.log();
  const auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_GE(took, 2900ms) << "pgnap did not wait for shutdown_timeout";
  // libpq keeps the FATAL's text (SQLSTATE included when verbose), as for PostgreSQL's own
  // "terminating connection due to administrator command".
  PQsetErrorVerbosity(lingering.get(), PQERRORS_VERBOSE);
  const auto after = query(lingering.get(), "select 1");
  EXPECT_FALSE(after.ok);
  EXPECT_THAT(std::string(PQerrorMessage(lingering.get())),
              ::testing::HasSubstr("FATAL:  57P01: the gateway is shutting down"));
  EXPECT_THAT(gateway.log(), ::testing::HasSubstr("ending 1 session(s) still open after shutdown_timeout"));
  EXPECT_TRUE(cluster.is_running()) << "suspend_on_exit is false: the instance stays as it is";
}

// A second SIGTERM during the drain stops at once, with the ledger closed.
TEST(ShutdownTest, SecondSigtermDuringTheDrainStopsAtOnce) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.gateway_extra = "shutdown_timeout = \"1h\"\n";
  Gateway gateway(options, &cluster);
  auto session = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(session.get(), "select 1").ok);

  ASSERT_EQ(::kill(gateway.pid(), SIGTERM), 0);
  ASSERT_TRUE(gateway.wait_for_log("draining 1 session(s)", 5s)) << gateway.log();
  EXPECT_EQ(gateway.wait_exit(1s), -1) << "pgnap did not drain";
  ASSERT_EQ(::kill(gateway.pid(), SIGTERM), 0);
  EXPECT_EQ(gateway.wait_exit(10s), 1) << gateway.log();
  EXPECT_THAT(gateway.log(), ::testing::HasSubstr("stopping at once"));
  EXPECT_FALSE(query(session.get(), "select 1").ok);
}

// suspend_on_exit = true: the instance pgnap woke is stopped when pgnap stops.
TEST(ShutdownTest, SuspendOnExitStopsTheInstanceWhenPgnapStops) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.instance_extra = "suspend_on_exit = true\n";
  Gateway gateway(options, &cluster);
  ASSERT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0);
  ASSERT_TRUE(cluster.is_running());
  EXPECT_EQ(gateway.terminate(SIGTERM, 30s), 0) << gateway.log();
  EXPECT_FALSE(cluster.is_running()) << "suspend_on_exit = true left the instance running";
}

}  // namespace
}  // namespace pgnap::it
