// The savings ledger against wall-clock time: a real wake/suspend cycle is recorded as
// contiguous intervals whose lengths match what happened; a kill -9 loses at most one
// heartbeat and counts nothing twice; `pgnap report` follows the formula from the
// configured coefficients.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "accounting/ledger.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

constexpr double kHeartbeat = 1.0;  // ledger_heartbeat in these tests, seconds
// Scheduling and the log's millisecond stamps: what "at the same moment" may differ by.
constexpr double kSlack = 0.3;

double now_unix() { return accounting::unix_now(); }

// The time of the first log line containing `needle` ("2026-11-27T13:11:04.462Z info ...").
std::optional<double> log_time(const std::string& log, std::string_view needle) {
  std::size_t start = 0;
  while (start < log.size()) {
    const std::size_t end = log.find('\n', start);
    const std::string line = log.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (line.find(needle) != std::string::npos && line.size() > 24) {
      std::tm tm{};
      int ms = 0;
      if (std::sscanf(line.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec, &ms) == 7) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return static_cast<double>(timegm(&tm)) + ms / 1000.0;
      }
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nullopt;
}

std::vector<accounting::IntervalRow> intervals_of(const std::string& ledger, const std::string& instance) {
  return accounting::read_ledger(ledger, 0, 1e12, instance).intervals;
}

double sum_hours(const std::vector<accounting::IntervalRow>& intervals, const std::string& state) {
  double s = 0;
  for (const auto& i : intervals) {
    if (i.state == state) s += (i.end - i.start) / 3600.0;
  }
  return s;
}

boost::json::object report_json(const Gateway& gateway) {
  const auto r = run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  return boost::json::parse(r.out).as_object();
}

TEST(LedgerTest, ARealCycleMatchesWallClockAndTheReportFollowsTheFormula) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1s";
  options.gateway_extra = "ledger_heartbeat = \"1s\"\n";
  options.extra_toml =
      "[instances.main.accounting]\n"
      "vcpus = 4\nmemory_gb = 8\nresidual_watts = 1.5\n"
      "grid_intensity = 300\ngrid_source = \"Test grid\"\ngrid_year = 2025\n"
      "price_per_hour = 0.12\ncurrency = \"EUR\"\nwake_billed_minimum = \"10m\"\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto r = psql(gateway.conninfo(), "select 1");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();
  std::this_thread::sleep_for(3s);  // asleep for a few seconds

  // While pgnap runs, the report counts the open interval up to its last heartbeat.
  {
    const auto live = report_json(gateway);
    const double asleep_live = live.at("instances").as_array().at(0).at("hours_asleep").to_number<double>() * 3600;
    // The sleep began after pgnap logged the suspend and before it logged "asleep" (on a busy
    // machine the two lines, the stop between them, can be far apart).
    // The first sleep, from the adoption to the wake, counts too: psql may take a second or
    // more to start on a busy machine.
    const std::string log_now = gateway.log();
    const double now = now_unix();
    const double first_sleep = *log_time(log_now, "waking (") - *log_time(log_now, "adopted asleep");
    const double since_suspending = now - *log_time(log_now, "with no sessions, suspending");
    const double since_asleep = now - *log_time(log_now, "asleep (was awake");
    EXPECT_LE(asleep_live, first_sleep + since_suspending + 2 * kSlack);
    EXPECT_GE(asleep_live, first_sleep + since_asleep - kHeartbeat - 2 * kSlack);
  }

  ASSERT_EQ(gateway.terminate(), 0);
  const double stopped_at = now_unix();
  const std::string log = gateway.log();

  const auto intervals = intervals_of(gateway.ledger_path(), "main");
  ASSERT_EQ(intervals.size(), 5u);
  const std::vector<std::string> expected{"asleep", "waking", "awake", "suspending", "asleep"};
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    EXPECT_EQ(intervals[i].state, expected[i]) << i;
    EXPECT_FALSE(intervals[i].open) << "a clean stop closes every interval";
    EXPECT_LE(intervals[i].start, intervals[i].end);
    if (i > 0) {
      EXPECT_DOUBLE_EQ(intervals[i].start, intervals[i - 1].end) << "intervals are contiguous";
    }
  }
  // Wall clock: the last sleep began between pgnap's "suspending" and "asleep" lines and ended
  // when pgnap stopped.
  const auto suspending_logged = log_time(log, "with no sessions, suspending");
  const auto asleep_logged = log_time(log, "asleep (was awake");
  const auto stop_logged = log_time(log, "shutting down");
  ASSERT_TRUE(suspending_logged && asleep_logged && stop_logged) << log;
  const auto& sleep = intervals.back();
  EXPECT_GE(sleep.start, *suspending_logged - kSlack);
  EXPECT_LE(sleep.start, *asleep_logged + kSlack);
  EXPECT_NEAR(sleep.end, *stop_logged, kSlack);
  EXPECT_LE(sleep.end, stopped_at);
  EXPECT_NEAR(sleep.end - sleep.start, *stop_logged - *asleep_logged, kHeartbeat);
  EXPECT_GE(sleep.end - sleep.start, 3.0);

  const auto data = accounting::read_ledger(gateway.ledger_path(), 0, 1e12, "main");
  ASSERT_EQ(data.wakes.size(), 1u);
  EXPECT_EQ(data.wakes[0].outcome, "ok");
  EXPECT_TRUE(data.wakes[0].started);
  EXPECT_EQ(data.wakes[0].clients_waited, 1u);
  EXPECT_GT(data.wakes[0].duration_s, 0.0);
  EXPECT_LT(data.wakes[0].duration_s, 30.0);

  // The report, recomputed here from the configured coefficients:
  //   P_idle = 4 x 0.74 + 8 x 0.392 - 1.5 = 4.596 W, P_busy = 4 x 3.5 + 8 x 0.392 = 17.136 W.
  const auto report = report_json(gateway);
  const auto& main = report.at("instances").as_array().at(0).as_object();
  EXPECT_EQ(main.at("name").as_string(), "main");
  const double hours_asleep = sum_hours(intervals, "asleep");
  const double hours_awake = sum_hours(intervals, "waking") + sum_hours(intervals, "awake") +
                             sum_hours(intervals, "suspending");
  EXPECT_NEAR(main.at("hours_asleep").to_number<double>(), hours_asleep, 1e-9);
  EXPECT_NEAR(main.at("hours_awake").to_number<double>(), hours_awake, 1e-9);
  EXPECT_EQ(main.at("wakes").to_number<std::int64_t>(), 1);
  const double start_hours = data.wakes[0].duration_s / 3600.0;
  const double kwh = 1.135 * (4.596 * hours_asleep - 17.136 * start_hours) / 1000.0;
  EXPECT_NEAR(main.at("energy_saved_kwh").to_number<double>(), kwh, 1e-12);
  EXPECT_NEAR(main.at("carbon_saved_g").to_number<double>(), kwh * 300, 1e-9);
  EXPECT_NEAR(main.at("cost_saved").to_number<double>(), hours_asleep * 0.12 - 1 * 0.12 * (10.0 / 60.0), 1e-9);
  EXPECT_EQ(main.at("currency").as_string(), "EUR");
  const auto& grid = main.at("grid").as_object();
  EXPECT_EQ(grid.at("source").as_string(), "Test grid");
  EXPECT_EQ(grid.at("year").to_number<std::int64_t>(), 2025);
}

TEST(LedgerTest, Kill9WhileAsleepLosesAtMostOneHeartbeatAndCountsNothingTwice) {
  Cluster cluster;
  TempDir keep(false);
  auto options = GatewayOptions::for_cluster(cluster);
  options.ledger = keep.path() + "/ledger.db";
  options.gateway_extra = "ledger_heartbeat = \"1s\"\n";

  double killed_at = 0;
  double first_started = 0;
  {
    Gateway first(options, &cluster);
    ASSERT_TRUE(first.wait_for_log("adopted asleep", 10s)) << first.log();
    std::this_thread::sleep_for(3500ms);
    killed_at = now_unix();
    first.kill9();
  }
  std::this_thread::sleep_for(1s);  // pgnap is down: this second is nobody's to count
  double restarted_at = now_unix();
  double stopped_at = 0;
  {
    Gateway second(options, &cluster);
    ASSERT_TRUE(second.wait_for_log("adopted asleep", 10s)) << second.log();
    EXPECT_THAT(second.log(), HasSubstr("closed at their last heartbeat"));
    std::this_thread::sleep_for(2s);
    ASSERT_EQ(second.terminate(), 0);
    stopped_at = now_unix();
  }

  const auto intervals = intervals_of(options.ledger, "main");
  ASSERT_EQ(intervals.size(), 2u);
  const auto& before = intervals[0];
  const auto& after = intervals[1];
  first_started = before.start;
  EXPECT_EQ(before.state, "asleep");
  EXPECT_EQ(after.state, "asleep");
  EXPECT_FALSE(before.open);
  EXPECT_THAT(before.end_reason, HasSubstr("last heartbeat"));
  // Closed at its last heartbeat: before the kill, by at most one heartbeat.
  EXPECT_LE(before.end, killed_at + 0.05);
  EXPECT_GE(before.end, killed_at - kHeartbeat - kSlack);
  // No overlap, and the time pgnap was down is not counted.
  EXPECT_GE(after.start, before.end);
  EXPECT_GE(after.start, restarted_at - 0.05);
  const double counted = (before.end - before.start) + (after.end - after.start);
  EXPECT_LE(counted, stopped_at - first_started);
  const double lost = (killed_at - before.end);
  EXPECT_LE(lost, kHeartbeat + kSlack) << "more than one heartbeat lost";
  EXPECT_GE(lost, -0.05);
}

}  // namespace
}  // namespace pgnap::it

namespace pgnap::it {
namespace {

// Counts the non-overlapping occurrences of `needle` in `text`.
std::size_t occurrences(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}


// Every format of `pgnap report`, from a real ledger of two instances (one woken and put back
// to sleep, one asleep throughout), read while nothing runs.
TEST(LedgerTest, EveryReportFormatFromARealLedgerOfTwoInstances) {
  Cluster main_cluster;
  Cluster blog_cluster;
  auto options = GatewayOptions::for_cluster(main_cluster);
  options.idle_timeout = "1s";
  options.gateway_extra = "ledger_heartbeat = \"1s\"\n";
  options.extra_toml =
      "[instances.blog]\n"
      "databases = [\"blog\"]\n"
      "backend = \"pg_ctl\"\n"
      "address = \"" +
      blog_cluster.address() +
      "\"\n"
      "[instances.blog.pg_ctl]\n"
      "data_dir = \"" +
      blog_cluster.data_dir() +
      "\"\n"
      "bin_dir = \"" +
      pg_bin_dir() +
      "\"\n"
      "os_user = \"postgres\"\n"
      "log_file = \"" +
      blog_cluster.log_file() +
      "\"\n"
      "[instances.blog.accounting]\n"
      "currency = \"EUR\"\nprice_per_hour = 0.05\n";
  Gateway gateway(options, &main_cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s, 2)) << gateway.log();
  ASSERT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0);
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(gateway.terminate(), 0);
  EXPECT_FALSE(blog_cluster.is_running()) << "traffic to one instance never wakes the other";

  auto report = [&](const std::string& format) {
    const auto r = run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--format", format});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return r.out;
  };

  // JSON: documented fields present and typed (docs/accounting.md).
  const auto json = boost::json::parse(report("json")).as_object();
  EXPECT_TRUE(json.at("since").is_string());
  EXPECT_TRUE(json.at("until").is_string());
  const auto& instances = json.at("instances").as_array();
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_EQ(instances[0].at("name").as_string(), "main");
  EXPECT_EQ(instances[1].at("name").as_string(), "blog");
  for (const auto& value : instances) {
    const auto& i = value.as_object();
    for (const char* number :
         {"hours_asleep", "hours_awake", "hours_failed", "share_asleep", "wake_p50_seconds", "wake_p95_seconds",
          "energy_saved_kwh", "carbon_saved_g", "cost_saved", "embodied_saved_g"}) {
      EXPECT_TRUE(i.at(number).is_number()) << number;
    }
    for (const char* count : {"wakes", "wakes_failed", "clients_waited", "starts"}) {
      EXPECT_TRUE(i.at(count).is_int64() || i.at(count).is_uint64()) << count;
    }
    EXPECT_TRUE(i.at("currency").is_string());
    EXPECT_TRUE(i.at("grid").at("intensity_g_per_kwh").is_number());
    EXPECT_TRUE(i.at("grid").at("source").is_string());
    EXPECT_TRUE(i.at("coefficients").is_object());
    EXPECT_TRUE(i.at("parts").is_object());
    EXPECT_GT(i.at("hours_asleep").to_number<double>(), 0.0);
  }
  EXPECT_EQ(instances[0].at("wakes").to_number<std::int64_t>(), 1);
  EXPECT_EQ(instances[1].at("wakes").to_number<std::int64_t>(), 0);
  EXPECT_EQ(instances[1].at("currency").as_string(), "EUR");
  EXPECT_TRUE(json.at("total").is_object());

  // CSV (RFC 4180): a header, one row per instance, a total; as many fields on every row.
  const auto rows = parse_csv(report("csv"));
  ASSERT_EQ(rows.size(), 4u);
  const auto& header = rows[0];
  const auto name_column = std::find(header.begin(), header.end(), "name") - header.begin();
  ASSERT_LT(static_cast<std::size_t>(name_column), header.size());
  EXPECT_NE(std::find(header.begin(), header.end(), "hours_asleep"), header.end());
  EXPECT_EQ(rows[1][static_cast<std::size_t>(name_column)], "main");
  EXPECT_EQ(rows[2][static_cast<std::size_t>(name_column)], "blog");
  EXPECT_EQ(rows[3][static_cast<std::size_t>(name_column)], "TOTAL");
  for (const auto& row : rows) EXPECT_EQ(row.size(), header.size());

  // HTML: one self-contained page, one timeline per instance.
  const std::string html = report("html");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_THAT(html, HasSubstr("</html>"));
  EXPECT_EQ(occurrences(html, "<svg class=\"timeline\" data-instance=\"main\""), 1u);
  EXPECT_EQ(occurrences(html, "<svg class=\"timeline\" data-instance=\"blog\""), 1u);
  EXPECT_EQ(occurrences(html, "<svg"), occurrences(html, "</svg>"));
  // Self-contained: nothing loaded from elsewhere (the xmlns URIs are names, not fetches).
  EXPECT_EQ(occurrences(html, "src="), 0u);
  EXPECT_EQ(occurrences(html, "<link"), 0u);
  EXPECT_EQ(occurrences(html, "url(h"), 0u) << "only in-page references (url(#id))";

  // Table: readable, both instances and the grid source named.
  const std::string table = report("table");
  EXPECT_THAT(table, HasSubstr("main"));
  EXPECT_THAT(table, HasSubstr("blog"));
  EXPECT_THAT(table, HasSubstr("Ember"));

  // One instance only, and a bad option value.
  const auto only = boost::json::parse(run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--instance",
                                                    "blog", "--format", "json"})
                                           .out)
                        .as_object();
  ASSERT_EQ(only.at("instances").as_array().size(), 1u);
  EXPECT_EQ(only.at("instances").as_array()[0].at("name").as_string(), "blog");
  EXPECT_EQ(run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--since", "yesterday-ish"}).exit_code,
            2);
}

}  // namespace
}  // namespace pgnap::it
