// When waking goes wrong: a cluster that cannot start, one that hangs, too many waiters, and a
// cluster that dies under pgnap. Clients get real ErrorResponses that say why, pgnap leaves no
// stray processes, and it serves normally again once the cause is gone.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <mutex>
#include <string>
#include <vector>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kCouldNotStart = "instance \"main\" could not be started";

// Connects until a client is served; a 57P03 (the wake failed, or the instance is backing
// off after a failure) is retried a little later. The last attempt's result is returned.
ConnectResult connect_once_recovered(const Gateway& gateway, Millis within) {
  ConnectResult last;
  wait_until(
      [&] {
        last = connect(gateway.conninfo(), 15s);
        return last.ok() || last.server.sqlstate != "57P03";
      },
      within, 250ms);
  return last;
}

void expect_could_not_start(const ConnectResult& c) {
  ASSERT_FALSE(c.ok()) << "expected the wake to fail";
  EXPECT_EQ(c.server.severity, "FATAL") << c.error;
  EXPECT_EQ(c.server.sqlstate, "57P03") << c.error;
  EXPECT_THAT(c.server.message, StartsWith(kCouldNotStart)) << c.error;
}

TEST(FailuresTest, WakeOfABrokenClusterFailsWith57P03ThatSaysWhyThenServesOnceFixed) {
  Cluster cluster;
  const std::string good_conf = cluster.conf();
  cluster.append_conf("shared_buffers = 'lots'\n");
  auto options = GatewayOptions::for_cluster(cluster);
  options.wake_timeout = "20s";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto first = connect(gateway.conninfo(), 15s);
  expect_could_not_start(first);
  ASSERT_EQ(first.server.sqlstate, "57P03") << "no point going on";
  // The detail carries the server log's tail: the operator sees the bad setting.
  EXPECT_THAT(first.server.detail, HasSubstr("shared_buffers")) << first.error;
  EXPECT_TRUE(gateway.wait_for_log("wake failed", 5s)) << gateway.log();
  EXPECT_EQ(count_lines_with_all(gateway.log(), {"wake failed", "instance=main"}), gateway.count_in_log("wake failed"));
  EXPECT_FALSE(cluster.is_running());

  // Still broken: the next client is refused as well (at once during the backoff, or by a
  // new wake that fails the same way).
  expect_could_not_start(connect(gateway.conninfo(), 15s));

  // Fixed: after the backoff, a client triggers a new wake and is served.
  cluster.set_conf(good_conf);
  const auto served = connect_once_recovered(gateway, 30s);
  ASSERT_TRUE(served.ok()) << served.error;
  EXPECT_EQ(query(served.conn.get(), "select 'recovered'").value, "recovered");
  EXPECT_EQ(cluster.ready_count(), 1);
  EXPECT_TRUE(cluster.is_running());
}

TEST(FailuresTest, MoreClientsThanMaxWaitingDuringASlowWakeGet53300) {
  constexpr int kClients = 6;
  constexpr int kMaxWaiting = 2;
  Cluster cluster;
  WrapperBinDir wrapper;
  wrapper.set_start_delay(3.0);  // every client arrives while the wake is still going on
  auto options = GatewayOptions::for_cluster(cluster);
  options.bin_dir = wrapper.path();
  options.max_waiting = kMaxWaiting;
  options.idle_timeout = "1m";
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  std::mutex mutex;
  std::vector<ServerError> rejected;
  std::vector<std::string> other_failures;
  int served = 0;
  run_in_parallel(kClients, [&](int) {
    auto c = connect(gateway.conninfo(), 60s);
    const bool query_ok = c.ok() && query(c.conn.get(), "select 1").ok;
    std::lock_guard lock(mutex);
    if (query_ok) {
      ++served;
    } else if (!c.ok() && c.server.sqlstate == "53300") {
      rejected.push_back(c.server);
    } else {
      other_failures.push_back(c.ok() ? "query failed" : c.error);
    }
  });

  EXPECT_TRUE(other_failures.empty()) << ::testing::PrintToString(other_failures);
  EXPECT_EQ(served, kMaxWaiting);
  EXPECT_EQ(rejected.size(), static_cast<std::size_t>(kClients - kMaxWaiting));
  for (const auto& e : rejected) {
    EXPECT_EQ(e.severity, "FATAL");
    EXPECT_THAT(e.message, StartsWith("too many clients waiting for instance \"main\" to start"));
  }
  EXPECT_EQ(wrapper.invocations("start"), 1);
  EXPECT_EQ(cluster.ready_count(), 1);
  const auto m = http_get(gateway.metrics_port(), "/metrics");
  EXPECT_THAT(m.body, HasSubstr("pgnap_limit_hits_total{limit=\"max_waiting\"} " +
                                std::to_string(kClients - kMaxWaiting) + "\n"))
      << m.body;
}

TEST(FailuresTest, WakeThatHangsFailsWith57P03AtWakeTimeoutAndLeavesNoProcessBehind) {
  Cluster cluster;
  WrapperBinDir wrapper;
  wrapper.set_start_delay(std::nullopt);  // pg_ctl start never returns
  auto options = GatewayOptions::for_cluster(cluster);
  options.bin_dir = wrapper.path();
  options.wake_timeout = "2s";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto c = connect(gateway.conninfo(), 15s);
  expect_could_not_start(c);
  ASSERT_EQ(c.server.sqlstate, "57P03") << "no point going on";
  EXPECT_GE(c.elapsed, 1500ms) << "refused before wake_timeout";
  EXPECT_LE(c.elapsed, 10s) << "held far past wake_timeout (2s)";
  EXPECT_TRUE(gateway.wait_for_log("wake failed", 5s)) << gateway.log();

  // pgnap must end the whole hung start: the wrapper's shell and the sleep it runs.
  ASSERT_EQ(wrapper.sleep_pids().size(), 1u) << wrapper.invocation_log();
  const pid_t sleep_pid = wrapper.sleep_pids()[0];
  EXPECT_TRUE(wait_until([&] { return !process_alive(sleep_pid); }, 10s))
      << "pgnap left the hung pg_ctl start's `sleep` (pid " << sleep_pid << ") running";
  for (pid_t pid : wrapper.invocation_pids("start")) {
    EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }, 10s))
        << "pgnap left the hung `pg_ctl start` (pid " << pid << ") running";
  }
  EXPECT_FALSE(cluster.is_running());

  // Starting works again: after the backoff the next client is served.
  wrapper.set_start_delay(0.0);
  const auto served = connect_once_recovered(gateway, 30s);
  ASSERT_TRUE(served.ok()) << served.error;
  EXPECT_EQ(query(served.conn.get(), "select 'recovered'").value, "recovered");
}

TEST(FailuresTest, ClusterKilledWithSigkillWhileAwakeIsWokenAgainForTheNextClient) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto first = psql(gateway.conninfo(), "select 1");
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  ASSERT_EQ(cluster.ready_count(), 1);

  // Kill the postmaster, then wait until it and its children are gone, reaped and all:
  // until then PostgreSQL itself refuses to start again (its lock file names a pid that
  // kill(pid, 0) still finds, and its shared memory is still attached). On a machine whose
  // init reaps orphans lazily (as on ours: up to ~2 s), that takes a moment.
  const pid_t postmaster = cluster.postmaster_pid();
  ASSERT_GT(postmaster, 0);
  auto processes = child_processes(postmaster);
  ASSERT_FALSE(processes.empty());
  processes.push_back(postmaster);
  ASSERT_EQ(::kill(postmaster, SIGKILL), 0);
  ASSERT_TRUE(wait_until(
      [&] {
        for (pid_t pid : processes) {
          if (!process_gone(pid)) return false;
        }
        return true;
      },
      15s))
      << "the killed postmaster or its children were not reaped";

  const auto next = psql(gateway.conninfo(), "select 'woken again'");
  ASSERT_EQ(next.exit_code, 0) << next.describe();
  EXPECT_EQ(next.out, "woken again\n");
  EXPECT_EQ(cluster.ready_count(), 2);
  EXPECT_NE(cluster.postmaster_pid(), postmaster);
}

}  // namespace
}  // namespace pgnap::it
