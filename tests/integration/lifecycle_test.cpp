// Suspend on idle: an instance with no sessions is stopped (cleanly) after idle_timeout, one
// with a session attached never is, and a client that arrives while it is being stopped
// waits for the stop and is then served by a fresh start.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// "suspending" is also a substring of the debug line "queued while suspending".
constexpr std::string_view kQueued = "queued while suspending";
constexpr std::string_view kAdopted = "adopted asleep";

GatewayOptions quick_idle(const Cluster& cluster) {
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1s";
  options.min_awake = "0s";
  return options;
}

TEST(LifecycleTest, IdleInstanceIsStoppedCleanlyAfterIdleTimeout) {
  Cluster cluster;
  Gateway gateway(quick_idle(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto r = psql(gateway.conninfo(), "select 1");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  // The query started it (psql may take longer to exit, on a busy machine, than the instance
  // stays awake after it: whether it still runs now is not the question).
  ASSERT_EQ(cluster.ready_count(), 1) << cluster.server_log();

  // pg_ctl status is the judge; the 20 s bound only keeps a broken gateway from hanging CI.
  EXPECT_TRUE(wait_until([&] { return !cluster.is_running(); }, 20s, 100ms)) << "still running long after idle_timeout";
  EXPECT_TRUE(gateway.wait_for_log("asleep", 10s, 1, {kAdopted})) << gateway.log();
  EXPECT_EQ(count_lines_with_all(gateway.log(), {"suspending", "instance=main"}), 1u) << gateway.log();
  // A suspend is a clean shutdown (pg_ctl stop -m fast), never immediate.
  EXPECT_THAT(cluster.server_log(), HasSubstr("received fast shutdown request"));
  EXPECT_THAT(cluster.server_log(), Not(HasSubstr("immediate shutdown")));
}

TEST(LifecycleTest, OpenSessionKeepsTheInstanceAwakePastIdleTimeout) {
  Cluster cluster;
  Gateway gateway(quick_idle(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto idle = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(idle.get(), "select 1").ok);
  auto in_transaction = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(in_transaction.get(), "begin").ok);

  // Three idle_timeouts with sessions attached but silent. (The one fixed sleep of the
  // suite: an absence cannot be polled for.)
  std::this_thread::sleep_for(3s);
  EXPECT_TRUE(cluster.is_running());
  EXPECT_EQ(gateway.count_in_log("suspending", {kQueued}), 0u) << gateway.log();
  const auto q = query(idle.get(), "select 'still relayed'");
  EXPECT_EQ(q.value, "still relayed") << q.error.message;
  EXPECT_TRUE(query(in_transaction.get(), "commit").ok);

  // Once the last session leaves, the idle clock runs.
  idle.reset();
  EXPECT_TRUE(cluster.is_running());
  in_transaction.reset();
  EXPECT_TRUE(wait_until([&] { return !cluster.is_running(); }, 20s, 100ms))
      << "not stopped after its last session left";
  EXPECT_EQ(cluster.ready_count(), 1);
}

TEST(LifecycleTest, ClientArrivingWhileTheInstanceSuspendsIsServed) {
  Cluster cluster;
  WrapperBinDir wrapper;
  auto options = quick_idle(cluster);
  options.bin_dir = wrapper.path();
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  constexpr int kCycles = 4;
  PgConnPtr held;  // the last cycle's session stays open, so no extra suspend skews the counts
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    // Every other stop is made slow (the wrapper sleeps a second before the real pg_ctl
    // stop), so a client surely lands inside it; the others race a stop at its own speed.
    wrapper.set_stop_delay(cycle % 2 == 0 ? 1.0 : 0.0);

    const auto r = psql(gateway.conninfo(), "select 1");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    ASSERT_TRUE(gateway.wait_for_log("suspending", 20s, static_cast<std::size_t>(cycle) + 1, {kQueued}))
        << gateway.log();

    auto c = connect(gateway.conninfo(), 60s);
    ASSERT_TRUE(c.ok()) << c.error;
    const auto q = query(c.conn.get(), "select 'served'");
    EXPECT_EQ(q.value, "served") << q.error.message;
    held = std::move(c.conn);
    if (cycle + 1 < kCycles) held.reset();
  }

  EXPECT_GE(gateway.count_in_log(kQueued), 1u) << "no client ever arrived while the instance was suspending\n"
                                               << gateway.log();
  // Each cycle: one clean stop, then one fresh start for the client that came during it.
  EXPECT_EQ(count_lines_containing(cluster.server_log(), "received fast shutdown request"),
            static_cast<std::size_t>(kCycles));
  EXPECT_EQ(cluster.ready_count(), kCycles + 1);
}

}  // namespace
}  // namespace pgnap::it
