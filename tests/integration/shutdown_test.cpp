// Stopping pgnap: SIGTERM or SIGINT ends it with exit 0, its sessions end, its port closes,
// none of its own processes outlive it, and the instances are left as they are (DESIGN.md:
// "leaves instances as they are unless configured to suspend them").
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
      << "processes left in pgnap's process group: "
      << ::testing::PrintToString(processes_in_group(gateway_pid));
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

}  // namespace
}  // namespace pgnap::it
