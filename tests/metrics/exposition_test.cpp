// Instance metrics and their exposition: time accrued per state at scrape time, savings
// counters that never go down, histogram buckets, and every family in the text format.
#include "metrics/exposition.h"

#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgnap::metrics {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Clock = InstanceMetrics::Clock;

TEST(InstanceMetrics, AccruesTimePerStateIncludingTheOpenOne) {
  InstanceMetrics m("main", Accounting{});
  Lifetime lifetime;
  lifetime.asleep_seconds = 100;
  lifetime.awake_seconds = 50;
  lifetime.starts = 3;
  lifetime.start_seconds = 1.5;
  m.set_lifetime(lifetime);
  const auto t0 = Clock::time_point{} + 1000s;
  m.set_state("asleep", t0);
  m.set_state("waking", t0 + 10s);
  m.set_state("awake", t0 + 11s);
  m.set_state("suspending", t0 + 31s);
  m.set_state("asleep", t0 + 32s);
  const auto a = m.accrued(t0 + 40s);
  EXPECT_DOUBLE_EQ(a.asleep_seconds, 100 + 10 + 8);  // lifetime + closed + open
  EXPECT_DOUBLE_EQ(a.awake_seconds, 50 + 1 + 20 + 1);
  m.set_state("failed", t0 + 41s);
  const auto b = m.accrued(t0 + 100s);
  EXPECT_DOUBLE_EQ(b.asleep_seconds, 100 + 10 + 9) << "failed time is neither asleep nor awake";
  EXPECT_DOUBLE_EQ(b.awake_seconds, 72);
}

TEST(InstanceMetrics, SavingsCountersHoldInsteadOfGoingDown) {
  Accounting a;  // P_idle 1.872 W, P_busy 7.392 W (docs/accounting.md)
  a.price_per_hour = 1.0;
  a.wake_billed_minimum = 10min;
  InstanceMetrics m("main", a);
  const auto t0 = Clock::time_point{} + 1000s;
  m.set_state("asleep", t0);
  const auto before = m.counters(t0 + 3600s);  // an hour asleep
  EXPECT_NEAR(before.energy_kwh, 1.135 * 1.872 / 1000, 1e-12);
  EXPECT_NEAR(before.cost, 1.0, 1e-12);
  // A wake costs energy and a billed minimum: the net figures dip, the counters hold.
  m.set_state("waking", t0 + 3600s);
  m.wake_finished("ok", 2.0, true);
  m.set_state("awake", t0 + 3602s);
  const auto held = m.counters(t0 + 3602s);
  EXPECT_DOUBLE_EQ(held.energy_kwh, before.energy_kwh);
  EXPECT_DOUBLE_EQ(held.cost, before.cost);
  // More sleep makes the dip good and the counters move on.
  m.set_state("asleep", t0 + 3602s);
  const auto later = m.counters(t0 + 3602s + 7200s);
  EXPECT_GT(later.energy_kwh, before.energy_kwh);
  EXPECT_NEAR(later.cost, 3.0 - 10.0 / 60.0, 1e-9);
}

TEST(InstanceMetrics, CountersStartNoLowerThanAnEarlierRunShowed) {
  InstanceMetrics m("main", Accounting{});
  Lifetime lifetime;
  lifetime.asleep_seconds = 100;
  lifetime.awake_seconds = 10;
  m.set_lifetime(lifetime);
  // The earlier run showed more than the ledger kept (a crash lost part of a heartbeat).
  m.set_reported_floor({104, 11, 1e-3, 0.5, 0, 0});
  const auto t0 = Clock::time_point{} + 1000s;
  m.set_state("asleep", t0);
  const auto at_start = m.counters(t0);
  EXPECT_DOUBLE_EQ(at_start.asleep_seconds, 104);
  EXPECT_DOUBLE_EQ(at_start.awake_seconds, 11);
  EXPECT_DOUBLE_EQ(at_start.energy_kwh, 1e-3);
  // Flat until the live figure passes the floor, then it moves on.
  EXPECT_DOUBLE_EQ(m.counters(t0 + 3s).asleep_seconds, 104);
  EXPECT_DOUBLE_EQ(m.counters(t0 + 10s).asleep_seconds, 110);
}

TEST(InstanceMetrics, HistogramBucketsAndCounts) {
  DurationHistogram h;
  h.observe(0.005);
  h.observe(0.3);
  h.observe(700);  // above the last bucket: only in +Inf
  EXPECT_EQ(h.count, 3u);
  EXPECT_EQ(h.buckets[0], 1u);
  EXPECT_EQ(h.buckets[5], 1u);  // le=0.5
  EXPECT_DOUBLE_EQ(h.sum, 700.305);
}

TEST(Exposition, TheMeasuredBasisOnceAnIdleRateIsKnown) {
  InstanceMetrics m("main", Accounting{});
  GatewayMetrics g;
  std::string text = render_exposition({&m}, g, {"1", "r"});
  EXPECT_THAT(text, HasSubstr("pgnap_savings_basis{db_instance=\"main\",basis=\"model\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_savings_basis{db_instance=\"main\",basis=\"measured\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("pgnap_measured_idle_memory_bytes{")));

  // An hour asleep, then 100 s measured idle-awake: 0.2 CPU-s (0.2% of a vCPU) at 30 MB.
  const auto t0 = Clock::time_point{} + 1000s;
  m.set_state("asleep", t0);
  m.set_state("awake", t0 + 3600s);
  UsageTotals idle;
  idle.seconds = 100;
  idle.cpu_seconds = 0.2;
  idle.memory_seconds = 100;
  idle.memory_byte_seconds = 100 * 30e6;
  idle.samples = 10;
  m.add_usage(idle, UsageTotals{});
  ASSERT_TRUE(m.measured_rates());
  EXPECT_DOUBLE_EQ(m.measured_rates()->cpu_utilisation, 0.002);
  const ReportedCounters c = m.counters(t0 + 3600s);
  // 0.002 vCPU × 3600 s asleep = 7.2 CPU-s; 0.03 GB × 1 h = 0.03 GB-h
  EXPECT_DOUBLE_EQ(c.measured_cpu_seconds, 7.2);
  EXPECT_DOUBLE_EQ(c.measured_memory_gb_hours, 0.03);
  text = render_exposition({&m}, g, {"1", "r"});
  EXPECT_THAT(text, HasSubstr("pgnap_savings_basis{db_instance=\"main\",basis=\"measured\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_measured_idle_cpu_utilisation{db_instance=\"main\"} 0.002"));
  EXPECT_THAT(text, HasSubstr("pgnap_measured_idle_memory_bytes{db_instance=\"main\"} 30000000"));
  EXPECT_THAT(text, HasSubstr("# TYPE pgnap_measured_cpu_seconds_avoided_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE pgnap_measured_memory_freed_byte_seconds_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE pgnap_measured_energy_saved_joules_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE pgnap_measured_carbon_saved_grams_total counter"));
}

TEST(Exposition, ListsEveryFamilyWithHelpTypeAndLabels) {
  Accounting a;
  a.currency = "EUR";
  InstanceMetrics m("blog", a);
  m.set_state("awake");
  m.wake_finished("ok", 0.12, true);
  m.session_opened();
  m.client_error("57P03");
  m.bytes_client_to_server = 42;
  GatewayMetrics g;
  ++g.connections_total;
  g.error("3D000");
  const std::string text = render_exposition({&m}, g, {"9.9.9", "0123456789ab"});
  for (const char* family : {"pgnap_build_info",
                             "pgnap_connections_total",
                             "pgnap_gateway_errors_total",
                             "pgnap_cancel_requests_total",
                             "pgnap_ledger_write_errors_total",
                             "pgnap_ledger_pending_writes",
                             "pgnap_instance_state",
                             "pgnap_instance_wakes_total",
                             "pgnap_instance_suspends_total",
                             "pgnap_instance_unexpected_stops_total",
                             "pgnap_instance_wake_duration_seconds",
                             "pgnap_instance_asleep_seconds_total",
                             "pgnap_instance_awake_seconds_total",
                             "pgnap_energy_saved_joules_total",
                             "pgnap_carbon_saved_grams_total",
                             "pgnap_cost_saved_total",
                             "pgnap_embodied_carbon_saved_grams_total",
                             "pgnap_client_sessions",
                             "pgnap_client_sessions_total",
                             "pgnap_waiting_clients",
                             "pgnap_client_wait_seconds",
                             "pgnap_client_errors_total",
                             "pgnap_relay_bytes_total",
                             "pgnap_accounting_info"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# HELP ") + family + " ")) << family;
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family + " ")) << family;
  }
  EXPECT_THAT(text, HasSubstr("pgnap_build_info{version=\"9.9.9\",revision=\"0123456789ab\"} 1"));
  EXPECT_THAT(text, HasSubstr("\npgnap_ledger_pending_writes 0\n"));
  EXPECT_THAT(text, HasSubstr("pgnap_instance_state{db_instance=\"blog\",state=\"awake\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_instance_state{db_instance=\"blog\",state=\"asleep\"} 0"));
  EXPECT_THAT(text, HasSubstr("pgnap_instance_wakes_total{db_instance=\"blog\",outcome=\"ok\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_instance_wakes_total{db_instance=\"blog\",outcome=\"timeout\"} 0"));
  EXPECT_THAT(text, HasSubstr("pgnap_instance_wake_duration_seconds_bucket{db_instance=\"blog\",le=\"0.1\"} 0"));
  EXPECT_THAT(text, HasSubstr("pgnap_instance_wake_duration_seconds_bucket{db_instance=\"blog\",le=\"0.25\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_instance_wake_duration_seconds_bucket{db_instance=\"blog\",le=\"+Inf\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_client_errors_total{db_instance=\"blog\",sqlstate=\"57P03\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_client_errors_total{db_instance=\"blog\",sqlstate=\"53300\"} 0"));
  EXPECT_THAT(text, HasSubstr("pgnap_gateway_errors_total{sqlstate=\"3D000\"} 1"));
  EXPECT_THAT(text, HasSubstr("pgnap_cost_saved_total{db_instance=\"blog\",currency=\"EUR\"}"));
  EXPECT_THAT(text, HasSubstr("pgnap_relay_bytes_total{db_instance=\"blog\",direction=\"client_to_server\"} 42"));
  EXPECT_THAT(text, HasSubstr("idle_watts=\"1.872\""));
}

}  // namespace
}  // namespace pgnap::metrics
