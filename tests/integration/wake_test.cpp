// Wake on connect: an instance asleep when pgnap starts is started by the first client, the
// clients that arrive meanwhile share that one start, and every one of them is served.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

TEST(WakeTest, AsleepAtStartPsqlThroughPgnapWakesTheClusterAndGetsItsRow) {
  Cluster cluster;
  cluster.start();
  const auto setup = psql(cluster.conninfo_direct(),
                          "create table greeting(msg text); "
                          "insert into greeting values ('hello from a sleeping cluster')");
  ASSERT_EQ(setup.exit_code, 0) << setup.describe();
  cluster.stop();
  const int starts_before = cluster.ready_count();

  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";  // nothing in this test should race a suspend
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  EXPECT_FALSE(cluster.is_running());

  const auto r = psql(gateway.conninfo(), "select msg from greeting");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "hello from a sleeping cluster\n");
  EXPECT_TRUE(cluster.is_running());
  EXPECT_EQ(cluster.ready_count(), starts_before + 1);
  EXPECT_EQ(gateway.count_in_log("waking"), 1u) << gateway.log();
  EXPECT_TRUE(gateway.wait_for_log("ready after", 5s)) << gateway.log();
  // Every lifecycle line names its instance.
  const std::string log = gateway.log();
  for (const char* event : {"adopted asleep", "waking", "ready after"}) {
    EXPECT_EQ(count_lines_with_all(log, {event, "instance=main"}), count_lines_containing(log, event))
        << event << " logged without instance=main:\n"
        << log;
  }
}

TEST(WakeTest, AdoptsARunningClusterAwakeAndServesItWithoutAStart) {
  Cluster cluster;
  cluster.start();
  Gateway gateway(GatewayOptions::for_cluster(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted awake", 10s)) << gateway.log();

  const auto r = psql(gateway.conninfo(), "select 'served'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "served\n");
  EXPECT_EQ(cluster.ready_count(), 1);  // the harness's own start only
  EXPECT_EQ(gateway.count_in_log("waking"), 0u) << gateway.log();
}

TEST(WakeTest, WakesAnInstanceAddressedOverTcp) {
  Cluster cluster({.tcp = true});
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  // inet_server_port() is the server's TCP port: null had pgnap reached it over a socket file.
  const auto r = psql(gateway.conninfo(), "select inet_server_port()");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, std::to_string(cluster.port()) + "\n");
  EXPECT_EQ(cluster.ready_count(), 1);
}

TEST(WakeTest, FiftyClientsAtOnceWhileAsleepShareOneStartAndAreAllServed) {
  constexpr int kClients = 50;
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  std::atomic<int> served{0};
  std::mutex mutex;
  std::vector<std::string> failures;
  run_in_parallel(kClients, [&](int i) {
    auto c = connect(gateway.conninfo(), 60s);
    std::string failure;
    if (!c.ok()) {
      failure = "client " + std::to_string(i) + ": " + c.error;
    } else {
      const auto q = query(c.conn.get(), "select " + std::to_string(i) + " * 2");
      if (q.ok && q.value == std::to_string(i * 2)) {
        ++served;
        return;
      }
      failure = "client " + std::to_string(i) + ": query: " + q.error.message;
    }
    std::lock_guard lock(mutex);
    failures.push_back(failure);
  });

  EXPECT_EQ(served.load(), kClients) << ::testing::PrintToString(failures);
  EXPECT_EQ(cluster.ready_count(), 1) << "the cluster was started more than once";
  EXPECT_EQ(gateway.count_in_log("waking"), 1u) << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("ready after"));
}

// pgnap's own sockets (its listener, its clients' connections) must not leak into the
// processes it starts: a postmaster holding pgnap's listening socket keeps the port open,
// accepting into a backlog nobody reads, after pgnap has exited. (Asio does not make
// sockets close-on-exec by itself.)
TEST(WakeTest, TheClusterPgnapStartsHoldsNoneOfPgnapsSockets) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto session = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(session.get(), "select 1").ok);
  const auto pgnap_sockets = open_sockets(gateway.pid());
  ASSERT_FALSE(pgnap_sockets.empty());

  const pid_t postmaster = cluster.postmaster_pid();
  auto server_processes = child_processes(postmaster);
  server_processes.push_back(postmaster);
  std::vector<std::string> leaked;
  for (pid_t pid : server_processes) {
    for (const auto& socket : open_sockets(pid)) {
      if (std::find(pgnap_sockets.begin(), pgnap_sockets.end(), socket) != pgnap_sockets.end()) {
        leaked.push_back("pid " + std::to_string(pid) + " holds " + socket);
      }
    }
  }
  EXPECT_TRUE(leaked.empty()) << "PostgreSQL processes inherited pgnap's sockets (they need "
                                 "close-on-exec): "
                              << ::testing::PrintToString(leaked);
}

}  // namespace
}  // namespace pgnap::it
