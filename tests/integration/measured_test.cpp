// The measured basis end to end (docs/accounting.md, "Measured"): pgnap reads what a real
// PostgreSQL's own processes use while it is awake, splits it into idle and busy stretches,
// writes it to the ledger and the metrics, and `pgnap report` rests its headline on the idle
// rate when there is one, and on the model, saying why, when there is none.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <csignal>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;


double value(const std::map<std::string, double>& s, const std::string& key) {
  const auto it = s.find(key);
  EXPECT_NE(it, s.end()) << "no sample " << key;
  return it == s.end() ? -1 : it->second;
}


// One stopped cluster behind a pgnap that measures it every second (the minimum), so that a
// few seconds awake give several readings.
class MeasuredTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = GatewayOptions::for_cluster(cluster_);
    options_.metrics_listen = "127.0.0.1:0";
    options_.extra_toml = "[instances.main.accounting]\nmeasure_interval = \"1s\"\n";
  }

  // `pgnap report --format FORMAT` on the gateway's config (its ledger), after it stopped.
  std::string report(const Gateway& gateway, const std::string& format) {
    const auto r = run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--format", format});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return r.out;
  }
  boost::json::object main_of(const Gateway& gateway) {
    const auto json = boost::json::parse(report(gateway, "json")).as_object();
    const auto& instances = json.at("instances").as_array();
    EXPECT_EQ(instances.size(), 1u);
    return instances.at(0).as_object();
  }

  Cluster cluster_;
  GatewayOptions options_;
};

// A psql query wakes the cluster and leaves; it stays awake with no session until its
// idle_timeout, so the sampler takes several idle readings of the real postmaster and its
// children (checkpointer, walwriter, background writer, autovacuum launcher: an idle
// PostgreSQL still runs them). The suspend writes them to the ledger and the metrics; the
// metrics and every report format then say "measured", with rates a real PostgreSQL has
// (some CPU, megabytes of memory, read as PSS when pgnap may read smaps_rollup, i.e. as root)
// and what the hours asleep avoided of them.
TEST_F(MeasuredTest, AnIdleAwakeClusterIsMeasuredAndTheReportSaysMeasured) {
  options_.idle_timeout = "4s";
  Gateway gateway(options_, &cluster_);
  ASSERT_NE(gateway.metrics_port(), 0) << gateway.log();
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto r = psql(gateway.conninfo(), "select 1");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 60s)) << gateway.log();
  // The sampler flushed when the instance left the awake state, before the suspend ended.
  EXPECT_GE(count_lines_with_all(gateway.log(), {"instance=main", "measured: "}), 1u) << gateway.log();

  // /metrics: the headline's basis is measured now, with the idle rates measured.
  const auto metrics = http_get(gateway.metrics_port(), "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  const auto s = metric_samples(metrics.body);
  EXPECT_EQ(value(s, "pgnap_savings_basis{db_instance=\"main\",basis=\"measured\"}"), 1);
  EXPECT_EQ(value(s, "pgnap_savings_basis{db_instance=\"main\",basis=\"model\"}"), 0);
  EXPECT_GT(value(s, "pgnap_measured_idle_memory_bytes{db_instance=\"main\"}"), 0);
  EXPECT_GT(value(s, "pgnap_measured_idle_cpu_utilisation{db_instance=\"main\"}"), 0);
  EXPECT_GT(value(s, "pgnap_measured_cpu_seconds_avoided_total{db_instance=\"main\"}"), 0);
  EXPECT_GT(value(s, "pgnap_measured_memory_freed_byte_seconds_total{db_instance=\"main\"}"), 0);

  // A clean stop: every ledger row committed, the last sleep closed, before the report reads.
  ASSERT_EQ(gateway.terminate(), 0) << gateway.log();

  const auto main = main_of(gateway);
  EXPECT_EQ(main.at("basis").as_string(), "measured");
  EXPECT_EQ(main.at("saved").at("basis").as_string(), "measured");
  EXPECT_EQ(main.at("model").at("basis").as_string(), "model");
  const auto& m = main.at("measured").as_object();
  EXPECT_EQ(m.at("basis").as_string(), "measured");
  ASSERT_TRUE(m.at("available").as_bool()) << boost::json::serialize(m);
  EXPECT_THAT(std::string(m.at("note").as_string()), StartsWith("measured over "));
  EXPECT_GT(m.at("idle_seconds_measured").to_number<double>(), 0);
  EXPECT_GT(m.at("idle_cpu_utilisation").to_number<double>(), 0)
      << "an idle PostgreSQL's background processes used no CPU at all? " << boost::json::serialize(m);
  const double memory = m.at("idle_memory_bytes").to_number<double>();
  EXPECT_GT(memory, 1e6);
  EXPECT_LT(memory, 2e9);
  EXPECT_EQ(m.at("memory_source").as_string(), running_as_root() ? "pss" : "rss");
  EXPECT_EQ(m.at("cpu_source").as_string(), "proc");
  EXPECT_GT(main.at("hours_asleep").to_number<double>(), 0);
  EXPECT_GT(m.at("cpu_seconds_avoided").to_number<double>(), 0);
  EXPECT_GT(m.at("memory_gb_hours_freed").to_number<double>(), 0);
  // The headline is the measured figures.
  EXPECT_DOUBLE_EQ(main.at("saved").at("energy_kwh").to_number<double>(),
                   m.at("energy_saved_kwh").to_number<double>());

  // Table: the row of "main" in "What sleeping avoided" ends with its basis.
  const std::string table = report(gateway, "table");
  const auto section_at = table.find("What sleeping avoided");
  ASSERT_NE(section_at, std::string::npos) << table;
  const std::string section = table.substr(section_at, table.find("\n\n", section_at) - section_at);
  EXPECT_TRUE(std::regex_search(section, std::regex("\nmain [^\n]* measured\n"))) << section;

  // CSV: the flattened columns, "true" and "measured" in main's row.
  const auto rows = parse_csv(report(gateway, "csv"));
  ASSERT_GE(rows.size(), 2u);
  const auto column = [&](const std::string& name) {
    const auto it = std::find(rows[0].begin(), rows[0].end(), name);
    EXPECT_NE(it, rows[0].end()) << "no column " << name;
    const auto i = static_cast<std::size_t>(it - rows[0].begin());
    return i < rows[1].size() ? rows[1][i] : std::string("(missing)");
  };
  EXPECT_EQ(column("name"), "main");
  EXPECT_EQ(column("measured_available"), "true");
  EXPECT_EQ(column("saved_basis"), "measured");
  EXPECT_EQ(column("basis"), "measured");

  // HTML: the capacity line says which basis.
  EXPECT_THAT(report(gateway, "html"), HasSubstr("<p class=\"capacity\">Basis: measured."));
}

// A session holds a query running for the whole time the instance is awake: every reading
// closes an interval in which a session was in use, so nothing is measured idle. SIGTERM
// arrives while the query runs; the drain waits for it, and the sampler's readings go on
// (all busy) until the session ends and the shutdown flushes them, tens of milliseconds
// later (an idle interval would need two readings after the release, a second apart). The
// report then has busy rows only: the model stays the headline, and the note says why.
TEST_F(MeasuredTest, AClusterNeverIdleWhileAwakeFallsBackToTheModelAndSaysSo) {
  options_.gateway_extra = "shutdown_timeout = \"30s\"\n";  // far longer than the query: the drain lets it end
  Gateway gateway(options_, &cluster_);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  CommandResult query_result;
  std::thread client([&] { query_result = psql(gateway.conninfo(), "select pg_sleep(5)"); });
  const bool relaying = gateway.wait_for_log("relaying", 60s);
  if (relaying) std::this_thread::sleep_for(2s);  // a couple of readings during the query
  EXPECT_EQ(gateway.terminate(SIGTERM, 30s), 0) << "pgnap did not exit after the drain: " << gateway.log();
  client.join();
  ASSERT_TRUE(relaying) << gateway.log();
  ASSERT_EQ(query_result.exit_code, 0) << "the drain did not let the query finish: " << query_result.describe();
  EXPECT_THAT(gateway.log(), HasSubstr("draining 1 session(s)"));
  EXPECT_EQ(gateway.count_in_log("asleep (was awake"), 0u) << "it was meant to stay awake until pgnap stopped";

  const auto main = main_of(gateway);
  EXPECT_EQ(main.at("basis").as_string(), "model");
  const auto& m = main.at("measured").as_object();
  EXPECT_FALSE(m.at("available").as_bool()) << boost::json::serialize(m);
  EXPECT_THAT(std::string(m.at("note").as_string()), StartsWith("never idle while awake"));
  EXPECT_GT(m.at("busy_seconds_measured").to_number<double>(), 0) << boost::json::serialize(m);
  EXPECT_EQ(m.at("idle_seconds_measured").to_number<double>(), 0);
  EXPECT_TRUE(m.at("idle_cpu_utilisation").is_null());
  EXPECT_TRUE(m.at("energy_saved_kwh").is_null());
  const auto& saved = main.at("saved").as_object();
  EXPECT_EQ(saved.at("basis").as_string(), "model");
  EXPECT_DOUBLE_EQ(saved.at("energy_kwh").to_number<double>(),
                   main.at("model").at("energy_saved_kwh").to_number<double>());

  // HTML: the capacity line says which basis, and why (the note, as a sentence).
  EXPECT_THAT(report(gateway, "html"), HasSubstr("<p class=\"capacity\">Basis: model. Never idle while awake"));
}

}  // namespace
}  // namespace pgnap::it
