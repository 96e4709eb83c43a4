// Several instances behind one pgnap, routed by database name: each wakes, sleeps and is
// counted on its own (a busy site never keeps a quiet one awake), a name no instance serves
// is refused with 3D000, and `pgnap check` shows the routing table.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <thread>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

std::string pg_ctl_instance(const std::string& name, const std::string& database, const Cluster& cluster) {
  return "[instances." + name +
         "]\n"
         "databases = [" +
         toml_quote(database) +
         "]\n"
         "backend = \"pg_ctl\"\n"
         "address = " +
         toml_quote(cluster.address()) +
         "\n"
         "idle_timeout = \"1s\"\n"
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

// Two clusters, each with its own database ("app" in one, "blog" in the other), both stopped,
// and the options of a pgnap that routes each name to its cluster (and nothing else: no "*").
class MultiInstanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto [cluster, database] : {std::pair{&app_, "app"}, std::pair{&blog_, "blog"}}) {
      cluster->start();
      const auto r = psql(cluster->conninfo_direct(), std::string("create database ") + database);
      ASSERT_EQ(r.exit_code, 0) << r.describe();
      cluster->stop();
    }
    options_.instances_toml = pg_ctl_instance("app", "app", app_) + pg_ctl_instance("blog", "blog", blog_);
    options_.metrics_listen = "127.0.0.1:0";
  }

  Cluster app_;
  Cluster blog_;
  GatewayOptions options_;
};

// The value of one sample in a /metrics exposition ("" if absent).
std::string sample(const std::string& exposition, const std::string& series) {
  const std::regex line("(^|\n)" + std::regex_replace(series, std::regex(R"([{}()\[\].*+?^$|\\])"), R"(\$&)") +
                        " ([^\n]+)");
  std::smatch m;
  return std::regex_search(exposition, m, line) ? m[2].str() : "";
}

TEST_F(MultiInstanceTest, TrafficToOneInstanceDoesNotKeepTheOtherAwake) {
  Gateway gateway(options_, &app_);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s, 2)) << gateway.log();

  // Wake blog once, then keep app busy with short sessions for four idle_timeouts
  // and at least a dozen sessions (whichever takes longer: a loaded machine makes
  // each session slower, which must not change what the test checks).
  const auto blog = psql(gateway.conninfo("blog"), "select current_database()");
  ASSERT_EQ(blog.exit_code, 0) << blog.describe();
  EXPECT_EQ(blog.out, "blog\n");
  EXPECT_FALSE(app_.is_running()) << "waking blog woke app";

  const auto until = std::chrono::steady_clock::now() + 4s;
  int sessions = 0;
  while (std::chrono::steady_clock::now() < until || sessions < 12) {
    auto c = connect(gateway.conninfo("app"), 30s);
    ASSERT_TRUE(c.ok()) << c.error;
    const auto q = query(c.conn.get(), "select current_database()");
    ASSERT_TRUE(q.ok) << q.error.message;
    ASSERT_EQ(q.value, "app");
    ++sessions;
    c.conn.reset();
    std::this_thread::sleep_for(150ms);
  }

  // blog went to sleep meanwhile; app never did.
  EXPECT_TRUE(app_.is_running());
  EXPECT_FALSE(blog_.is_running());
  const std::string log = gateway.log();
  EXPECT_EQ(count_lines_with_all(log, {"instance=blog", "asleep (was awake"}), 1u) << log;
  EXPECT_EQ(count_lines_with_all(log, {"instance=app", "asleep (was awake"}), 0u) << log;
  EXPECT_EQ(count_lines_with_all(log, {"instance=app", "waking ("}), 1u) << log;
  EXPECT_EQ(count_lines_with_all(log, {"instance=blog", "waking ("}), 1u) << log;
  EXPECT_EQ(app_.ready_count(), 2) << "one start in SetUp, one by pgnap";
  EXPECT_EQ(blog_.ready_count(), 2) << "one start in SetUp, one by pgnap";

  // Each instance's own counters.
  const auto metrics = http_get(gateway.metrics_port(), "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  for (const char* name : {"app", "blog"}) {
    EXPECT_EQ(sample(metrics.body,
                     std::string("pgnap_instance_wakes_total{db_instance=\"") + name + "\",outcome=\"ok\"}"),
              "1")
        << name;
  }
  EXPECT_EQ(sample(metrics.body, "pgnap_instance_suspends_total{db_instance=\"blog\",reason=\"idle\"}"), "1");
  EXPECT_EQ(sample(metrics.body, "pgnap_instance_suspends_total{db_instance=\"app\",reason=\"idle\"}"), "0");
  EXPECT_EQ(sample(metrics.body, "pgnap_instance_state{db_instance=\"app\",state=\"awake\"}"), "1");
  EXPECT_EQ(sample(metrics.body, "pgnap_instance_state{db_instance=\"blog\",state=\"asleep\"}"), "1");
  EXPECT_EQ(sample(metrics.body, "pgnap_client_sessions_total{db_instance=\"app\"}"), std::to_string(sessions));
  EXPECT_EQ(sample(metrics.body, "pgnap_client_sessions_total{db_instance=\"blog\"}"), "1");

  // Quiet now, app follows on its own timer.
  EXPECT_TRUE(wait_until(
      [&] {
        return count_lines_with_all(gateway.log(), {"instance=app", "asleep (was awake"}) == 1;
      },
      20s))
      << gateway.log();
  EXPECT_FALSE(app_.is_running());
}

TEST_F(MultiInstanceTest, ANameNoInstanceServesIsRefusedWith3D000AndWakesNothing) {
  Gateway gateway(options_, &app_);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s, 2)) << gateway.log();

  for (const char* database : {"shop", "postgres"}) {
    const auto c = connect(gateway.conninfo(database), 10s);
    ASSERT_FALSE(c.ok()) << database << " was served";
    EXPECT_EQ(c.server.severity, "FATAL") << c.error;
    EXPECT_EQ(c.server.sqlstate, "3D000") << c.error;
    EXPECT_THAT(c.server.message, HasSubstr(std::string("database \"") + database + "\" is not served"));
    EXPECT_THAT(c.server.detail, HasSubstr("app, blog"));
  }
  EXPECT_EQ(gateway.count_in_log("waking ("), 0u) << gateway.log();
  EXPECT_FALSE(app_.is_running());
  EXPECT_FALSE(blog_.is_running());
}

TEST_F(MultiInstanceTest, CheckPrintsTheRoutingTable) {
  TempDir dir(false);
  const std::string path = dir.path() + "/pgnap.toml";
  write_file(path, render_config(options_, dir.path() + "/ledger.db"));
  const auto r = run_command({pgnap_binary(), "check", "-c", path}, 30s);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto routing = r.out.find("Routing (database -> instance)");
  ASSERT_NE(routing, std::string::npos) << r.out;
  const std::string table = r.out.substr(routing, r.out.find("\n\n", routing) - routing);
  EXPECT_TRUE(std::regex_search(table, std::regex("\n  app +app\n"))) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex("\n  blog +blog\n"))) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex(R"(\(any other database\) +refused.*3D000)"))) << table;
  EXPECT_THAT(r.out, HasSubstr("Instance app\n"));
  EXPECT_THAT(r.out, HasSubstr("Instance blog\n"));
}

}  // namespace
}  // namespace pgnap::it
