// A minute of sustained load: pgbench with 32 clients through pgnap against one instance,
// while a second instance behind the same pgnap is woken by a client every few seconds and
// suspended in between. Neither disturbs the other: pgbench sees no failed transaction, the
// busy instance never suspends, and the quiet one cycles cleanly every time.
//
// Its own executable (soak_test, label "soak", a longer ctest timeout): `ctest -LE soak`
// leaves it out of a quick run.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace pgnap::it {
namespace {

constexpr int kBenchSeconds = 60;
constexpr int kBenchClients = 32;

std::string pg_ctl_instance(const std::string& name, const std::string& databases, const Cluster& cluster,
                            const std::string& idle_timeout) {
  return "[instances." + name +
         "]\n"
         "databases = " +
         databases +
         "\n"
         "backend = \"pg_ctl\"\n"
         "address = " +
         toml_quote(cluster.address()) +
         "\n"
         "idle_timeout = " +
         toml_quote(idle_timeout) +
         "\n"
         "min_awake = \"0s\"\n"
         "wake_timeout = \"30s\"\n"
         "[instances." +
         name +
         ".pg_ctl]\n"
         "data_dir = " +
         toml_quote(cluster.data_dir()) +
         "\n"
         "bin_dir = " +
         toml_quote(pg_bin_dir()) +
         "\n"
         "os_user = \"postgres\"\n"
         "log_file = " +
         toml_quote(cluster.log_file()) + "\n";
}

// One sample of pgnap's /metrics; -1 if absent, -2 if the scrape failed.
double sample(const Gateway& gateway, const std::string& series) {
  return scrape_metric(gateway.metrics_port(), series);
}

TEST(SoakTest, PgbenchForAMinuteOnOneInstanceWhileTheOtherWakesAndSuspendsOverAndOver) {
  Cluster main_cluster;
  Cluster blog_cluster;
  blog_cluster.start();
  const auto created = psql(blog_cluster.conninfo_direct(), "create database blog");
  ASSERT_EQ(created.exit_code, 0) << created.describe();
  blog_cluster.stop();
  // That start and stop are in blog's server log too.
  const int setup_starts = blog_cluster.ready_count();
  const std::size_t setup_stops = count_lines_containing(blog_cluster.server_log(), "received fast shutdown request");

  GatewayOptions options;
  options.metrics_listen = "127.0.0.1:0";
  options.instances_toml = pg_ctl_instance("main", R"(["*"])", main_cluster, "1m") +
                           pg_ctl_instance("blog", R"(["blog"])", blog_cluster, "1s");
  Gateway gateway(options, &main_cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s, 2)) << gateway.log();
  const std::size_t baseline = open_sockets(gateway.pid()).size();

  const auto init = run_command({"pgbench", "-i", "-s", "1", "-q", gateway.conninfo()}, 90s);
  ASSERT_EQ(init.exit_code, 0) << init.describe();

  CommandResult bench;
  std::atomic<bool> bench_done{false};
  std::thread bench_thread([&] {
    bench = run_command({"pgbench", "-c", std::to_string(kBenchClients), "-j", "2", "-T", std::to_string(kBenchSeconds),
                         gateway.conninfo()},
                        std::chrono::seconds(kBenchSeconds + 60));
    bench_done = true;
  });

  // Meanwhile, blog: a client, then (once pgnap has put it back to sleep) a short pause, and
  // again, until pgbench is done.
  auto asleep_lines = [&] { return count_lines_with_all(gateway.log(), {"asleep (was awake", "instance=blog"}); };
  int cycles = 0;
  std::vector<std::string> failures;
  while (!bench_done && failures.empty()) {
    const auto r = psql(gateway.conninfo("blog"), "select current_database()", 30s);
    if (r.exit_code != 0 || r.out != "blog\n") {
      failures.push_back("cycle " + std::to_string(cycles) + ": " + r.describe());
      break;
    }
    ++cycles;
    if (!wait_until([&] { return asleep_lines() >= static_cast<std::size_t>(cycles); }, 30s, 50ms)) {
      failures.push_back("cycle " + std::to_string(cycles) + ": blog was not suspended within 30 s");
      break;
    }
    std::this_thread::sleep_for(1s);
  }
  bench_thread.join();
  ASSERT_TRUE(failures.empty()) << ::testing::PrintToString(failures) << "\n" << tail_lines(gateway.log(), 40);

  // pgbench: a full minute, nothing failed.
  EXPECT_EQ(bench.exit_code, 0) << bench.describe();
  const auto summary = parse_pgbench(bench.out);
  EXPECT_TRUE(summary.parsed) << bench.out;
  EXPECT_EQ(summary.failed, 0) << bench.out;
  EXPECT_GT(summary.processed, 0) << bench.out;
  // main woke once and stayed awake under load.
  EXPECT_EQ(main_cluster.ready_count(), 1);
  EXPECT_EQ(count_lines_with_all(gateway.log(), {"suspending", "instance=main"}), 0u);
  EXPECT_EQ(count_lines_with_all(gateway.log(), {"stopped without pgnap"}), 0u);

  // blog cycled all along: one real start and one clean stop per client.
  EXPECT_GE(cycles, 5) << "blog was woken only " << cycles << " times in " << kBenchSeconds << " s";
  EXPECT_EQ(blog_cluster.ready_count() - setup_starts, cycles);
  EXPECT_EQ(count_lines_containing(blog_cluster.server_log(), "received fast shutdown request") - setup_stops,
            static_cast<std::size_t>(cycles));
  EXPECT_EQ(sample(gateway, "pgnap_instance_wakes_total{db_instance=\"blog\",outcome=\"ok\"}"), cycles);
  EXPECT_EQ(sample(gateway, "pgnap_instance_wakes_total{db_instance=\"blog\",outcome=\"failed\"}"), 0);
  EXPECT_EQ(sample(gateway, "pgnap_instance_wakes_total{db_instance=\"blog\",outcome=\"timeout\"}"), 0);
  EXPECT_EQ(sample(gateway, "pgnap_instance_suspends_total{db_instance=\"blog\",reason=\"idle\"}"), cycles);
  EXPECT_EQ(sample(gateway, "pgnap_instance_wakes_total{db_instance=\"main\",outcome=\"ok\"}"), 1);
  EXPECT_EQ(sample(gateway, "pgnap_waiting_clients{db_instance=\"main\"}"), 0);
  EXPECT_EQ(sample(gateway, "pgnap_waiting_clients{db_instance=\"blog\"}"), 0);

  // Every session is over: pgnap is back to the sockets it held before.
  std::size_t sockets = 0;
  EXPECT_TRUE(wait_until([&] { return (sockets = open_sockets(gateway.pid()).size()) == baseline; }, 15s))
      << "pgnap holds " << sockets << " sockets, " << baseline << " before the soak";
  std::cout << "soak: pgbench " << summary.processed << " transactions (" << summary.tps << " tps), blog woken "
            << cycles << " times\n";
}

}  // namespace
}  // namespace pgnap::it
