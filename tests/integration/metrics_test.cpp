// /metrics from the real pgnap through a real wake/session/suspend cycle: the values a
// Grafana dashboard would show, counters that advance between scrapes, and lifetime
// counters that survive a restart because they start from the ledger.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>
#include <thread>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;


std::map<std::string, double> scrape(const Gateway& gateway) {
  const auto r = http_get(gateway.metrics_port(), "/metrics");
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_THAT(r.headers, HasSubstr("text/plain; version=0.0.4"));
  return metric_samples(r.body);
}

double value(const std::map<std::string, double>& s, const std::string& key) {
  const auto it = s.find(key);
  EXPECT_NE(it, s.end()) << "no sample " << key;
  return it == s.end() ? -1 : it->second;
}

GatewayOptions metrics_options(const Cluster& cluster) {
  auto options = GatewayOptions::for_cluster(cluster);
  options.metrics_listen = "127.0.0.1:0";
  options.idle_timeout = "1s";
  options.extra_toml = "[instances.main.accounting]\nprice_per_hour = 0.05\ncurrency = \"EUR\"\n";
  return options;
}

const std::string kMain = "{db_instance=\"main\"}";
std::string state(const std::string& s) { return "pgnap_instance_state{db_instance=\"main\",state=\"" + s + "\"}"; }

TEST(MetricsTest, AWakeASessionAndASuspendShowInTheMetrics) {
  Cluster cluster;
  Gateway gateway(metrics_options(cluster), &cluster);
  ASSERT_NE(gateway.metrics_port(), 0) << gateway.log();
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto before = scrape(gateway);
  EXPECT_EQ(value(before, state("asleep")), 1);
  EXPECT_EQ(value(before, "pgnap_instance_wakes_total{db_instance=\"main\",outcome=\"ok\"}"), 0);
  EXPECT_EQ(value(before, "pgnap_build_info{version=\"" + pgnap_version() + "\",revision=\"" + pgnap_revision() + "\"}"), 1);

  {
    auto session = connect_or_throw(gateway.conninfo(), 60s);
    ASSERT_TRUE(query(session.get(), "select repeat('x', 10000)").ok);
    const auto during = scrape(gateway);
    EXPECT_EQ(value(during, state("awake")), 1);
    EXPECT_EQ(value(during, state("asleep")), 0);
    EXPECT_EQ(value(during, "pgnap_client_sessions" + kMain), 1);
    EXPECT_EQ(value(during, "pgnap_instance_wakes_total{db_instance=\"main\",outcome=\"ok\"}"), 1);
    EXPECT_EQ(value(during, "pgnap_instance_wake_duration_seconds_count" + kMain), 1);
    EXPECT_GT(value(during, "pgnap_instance_wake_duration_seconds_sum" + kMain), 0);
    EXPECT_GE(value(during, "pgnap_relay_bytes_total{db_instance=\"main\",direction=\"server_to_client\"}"), 10000);
    EXPECT_GT(value(during, "pgnap_relay_bytes_total{db_instance=\"main\",direction=\"client_to_server\"}"), 0);
    EXPECT_EQ(value(during, "pgnap_client_wait_seconds_count" + kMain), 1) << "the first client waited for the wake";
  }
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();

  // Asleep seconds advance between two scrapes by the time between them: at least the time
  // from the end of the first to the start of the second, at most from the start of the
  // first to the end of the second (measured here, so a loaded machine cannot fail it).
  const auto first_sent = std::chrono::steady_clock::now();
  const auto first = scrape(gateway);
  const auto first_done = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1500ms);
  const auto second_sent = std::chrono::steady_clock::now();
  const auto second = scrape(gateway);
  const auto second_done = std::chrono::steady_clock::now();
  const double least = std::chrono::duration<double>(second_sent - first_done).count();
  const double most = std::chrono::duration<double>(second_done - first_sent).count();
  EXPECT_EQ(value(second, state("asleep")), 1);
  EXPECT_EQ(value(second, "pgnap_client_sessions" + kMain), 0);
  EXPECT_EQ(value(second, "pgnap_client_sessions_total" + kMain), 1);
  EXPECT_EQ(value(second, "pgnap_instance_suspends_total{db_instance=\"main\",reason=\"idle\"}"), 1);
  // Asleep seconds advance between two scrapes, not only at transitions.
  const double slept = value(second, "pgnap_instance_asleep_seconds_total" + kMain) -
                       value(first, "pgnap_instance_asleep_seconds_total" + kMain);
  EXPECT_GE(slept, least - 0.01);
  EXPECT_LE(slept, most + 0.01);
  EXPECT_GT(value(second, "pgnap_instance_awake_seconds_total" + kMain), 1.0);
  // Savings: positive, and growing while it sleeps. The counter is held at its highest value
  // while the wake's own energy is made good (docs/metrics.md), which takes longer the
  // longer the wake took on a loaded machine: wait for it to grow rather than assume when.
  EXPECT_GT(value(second, "pgnap_energy_saved_joules_total" + kMain), 0);
  const double energy_before = value(first, "pgnap_energy_saved_joules_total" + kMain);
  EXPECT_TRUE(wait_until(
      [&] { return value(scrape(gateway), "pgnap_energy_saved_joules_total" + kMain) > energy_before; }, 30s, 250ms))
      << "the energy saved did not grow while the instance slept";
  EXPECT_GT(value(second, "pgnap_carbon_saved_grams_total" + kMain), 0);
  EXPECT_GE(value(second, "pgnap_cost_saved_total{db_instance=\"main\",currency=\"EUR\"}"), 0);
  EXPECT_EQ(value(second, "pgnap_connections_total"), 1);
}

TEST(MetricsTest, LifetimeCountersContinueFromTheLedgerAfterARestart) {
  Cluster cluster;
  TempDir keep(false);
  auto options = metrics_options(cluster);
  options.ledger = keep.path() + "/ledger.db";
  double asleep_before = 0;
  {
    Gateway first(options, &cluster);
    ASSERT_TRUE(first.wait_for_log("adopted asleep", 10s)) << first.log();
    std::this_thread::sleep_for(2s);
    asleep_before = value(scrape(first), "pgnap_instance_asleep_seconds_total" + kMain);
    EXPECT_GE(asleep_before, 1.9);
    ASSERT_EQ(first.terminate(), 0);
  }
  Gateway second(options, &cluster);
  ASSERT_TRUE(second.wait_for_log("adopted asleep", 10s)) << second.log();
  const auto after = scrape(second);
  EXPECT_GE(value(after, "pgnap_instance_asleep_seconds_total" + kMain), asleep_before)
      << "a restart must not set the lifetime counter back";
  EXPECT_GT(value(after, "pgnap_energy_saved_joules_total" + kMain), 0);
  // Per-run counters do restart (as Prometheus expects of a new process).
  EXPECT_EQ(value(after, "pgnap_connections_total"), 0);
}

TEST(MetricsTest, TheEndpointAnswersOnlyWhatItServes) {
  Cluster cluster;
  Gateway gateway(metrics_options(cluster), &cluster);
  ASSERT_NE(gateway.metrics_port(), 0);
  EXPECT_EQ(http_get(gateway.metrics_port(), "/nope").status, 404);
  EXPECT_EQ(http_get(gateway.metrics_port(), "/").status, 200);
  EXPECT_EQ(http_get(gateway.metrics_port(), "/metrics?format=x").status, 200);
  // A scraper that connects and says nothing does not hold anything up.
  auto silent = RawClient::tcp(gateway.metrics_port());
  EXPECT_EQ(http_get(gateway.metrics_port(), "/metrics").status, 200);
  EXPECT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0);
}

}  // namespace
}  // namespace pgnap::it

namespace pgnap::it {
namespace {

// After kill -9 the ledger loses up to a heartbeat of time, but what /metrics last showed was
// kept: the counters come back no lower (a decrease would read as a counter reset).
TEST(MetricsTest, LifetimeCountersComeBackNoLowerAfterKill9) {
  Cluster cluster;
  TempDir keep(false);
  auto options = metrics_options(cluster);
  options.ledger = keep.path() + "/ledger.db";
  options.gateway_extra = "ledger_heartbeat = \"10s\"\n";  // the crash loses up to 10 s of ledger time
  double asleep_shown = 0;
  double energy_shown = 0;
  {
    Gateway first(options, &cluster);
    ASSERT_TRUE(first.wait_for_log("adopted asleep", 10s)) << first.log();
    std::this_thread::sleep_for(2s);
    const auto s = scrape(first);
    asleep_shown = value(s, "pgnap_instance_asleep_seconds_total" + kMain);
    energy_shown = value(s, "pgnap_energy_saved_joules_total" + kMain);
    std::this_thread::sleep_for(200ms);  // the ledger's writer commits what was shown
    first.kill9();
  }
  Gateway second(options, &cluster);
  ASSERT_TRUE(second.wait_for_log("adopted asleep", 10s)) << second.log();
  const auto after = scrape(second);
  EXPECT_GE(value(after, "pgnap_instance_asleep_seconds_total" + kMain), asleep_shown);
  EXPECT_GE(value(after, "pgnap_energy_saved_joules_total" + kMain), energy_shown);
}

}  // namespace
}  // namespace pgnap::it
