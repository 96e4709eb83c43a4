// build_report over hand-made ledger rows (clipping to the window, state grouping, wakes,
// percentiles, instance order), parse_report_time, and the four formats: JSON parses with
// every field present and typed, CSV rows match the header, HTML is well-formed XML with one
// timeline per instance. No ledger file: the rows are what read_ledger would return.
#include "accounting/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json/src.hpp>  // header-only Boost.JSON, in this one translation unit

namespace pgnap::accounting {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr UnixTime kSince = 1793491200;  // 2026-11-01T00:00:00Z
constexpr UnixTime kUntil = kSince + 86400;

IntervalRow interval(std::string instance, std::string state, UnixTime start, UnixTime end, bool open = false) {
  IntervalRow r;
  r.instance = std::move(instance);
  r.state = std::move(state);
  r.start = start;
  r.end = end;
  r.open = open;
  return r;
}

WakeRow wake(std::string instance, UnixTime at, std::string outcome, double seconds, std::uint32_t clients,
             bool started) {
  WakeRow w;
  w.instance = std::move(instance);
  w.requested_at = at;
  w.finished_at = at + seconds;
  w.outcome = std::move(outcome);
  w.duration_s = seconds;
  w.clients_waited = clients;
  w.started = started;
  return w;
}

Accounting priced(double price, std::string currency) {
  Accounting a;
  a.price_per_hour = price;
  a.currency = std::move(currency);
  a.wake_billed_minimum = 10min;
  return a;
}

// A day of two configured instances with rows, one configured without rows, and two the
// configuration no longer lists.
LedgerData sample_day() {
  LedgerData d;
  d.intervals = {
      interval("main", "awake", kSince - 7200, kSince - 3600),          // wholly before: dropped
      interval("main", "asleep", kSince - 3600, kSince + 7200),         // straddles since: 7200 s
      interval("main", "waking", kSince + 7200, kSince + 7201),         // 1 s
      interval("main", "awake", kSince + 7201, kSince + 10800),         // 3599 s
      interval("main", "suspending", kSince + 10800, kSince + 10805),   // 5 s
      interval("main", "asleep", kSince + 10805, kUntil + 3600, true),  // straddles until: 75595 s
      interval("blog", "asleep", kSince, kSince + 100),
      interval("blog", "failed", kSince + 100, kSince + 400),
      interval("blog", "asleep", kSince + 400, kSince + 3600),
      interval("blog", "awake", kUntil, kUntil + 60),  // starts at until: outside [since, until)
      interval("ghost", "asleep", kSince, kSince + 1800),
  };
  d.wakes = {
      wake("main", kSince - 10, "ok", 0.4, 1, true),  // requested before the window
      wake("main", kSince + 7200, "ok", 0.9, 1, true),
      wake("main", kSince + 20000, "ok", 0.5, 2, true),
      wake("main", kSince + 30000, "ok", 0.7, 0, false),  // server was already up
      wake("main", kSince + 40000, "timeout", 60, 3, true),
      wake("main", kUntil, "ok", 0.6, 1, true),  // at until: outside
      wake("blog", kSince + 100, "failed", 30, 1, true),
      wake("alpha", kSince + 500, "ok", 1.25, 4, true),
  };
  return d;
}

std::vector<std::pair<std::string, Accounting>> sample_config() {
  return {{"main", priced(0.02, "USD")}, {"blog", priced(0.01, "EUR")}, {"idle", Accounting{}}};
}

const InstanceReport& find(const Report& r, const std::string& name) {
  const auto it = std::find_if(r.instances.begin(), r.instances.end(),
                               [&](const InstanceReport& i) { return i.name == name; });
  if (it == r.instances.end()) throw std::runtime_error("no instance " + name);
  return *it;
}

// ---- build_report ----

TEST(BuildReport, ClipsIntervalsToTheWindowAndGroupsStates) {
  const Report r = build_report(sample_day(), kSince, kUntil, sample_config());
  const InstanceReport& main = find(r, "main");
  // asleep: 7200 s (from since) + 75595 s (to until) = 82795 s; awake: 1 + 3599 + 5 = 3605 s
  EXPECT_DOUBLE_EQ(main.activity.hours_asleep, 82795.0 / 3600);
  EXPECT_DOUBLE_EQ(main.activity.hours_awake, 3605.0 / 3600);
  EXPECT_EQ(main.hours_failed, 0);
  EXPECT_DOUBLE_EQ(main.share_asleep, 82795.0 / 86400);
  ASSERT_EQ(main.intervals.size(), 5u);
  EXPECT_EQ(main.intervals.front().start, kSince);
  EXPECT_EQ(main.intervals.back().end, kUntil);
  EXPECT_TRUE(main.intervals.back().open);

  const InstanceReport& blog = find(r, "blog");
  EXPECT_DOUBLE_EQ(blog.activity.hours_asleep, 3300.0 / 3600);
  EXPECT_DOUBLE_EQ(blog.hours_failed, 300.0 / 3600);  // neither asleep nor awake
  EXPECT_EQ(blog.activity.hours_awake, 0);
  EXPECT_EQ(blog.share_asleep, 1.0);
  EXPECT_EQ(blog.intervals.size(), 3u);
}

TEST(BuildReport, CountsWakesRequestedInTheWindow) {
  const Report r = build_report(sample_day(), kSince, kUntil, sample_config());
  const InstanceReport& main = find(r, "main");
  EXPECT_EQ(main.wakes, 4u);
  EXPECT_EQ(main.wakes_failed, 1u);
  EXPECT_EQ(main.clients_waited, 6u);  // 1 + 2 + 0 + 3
  // ok wakes 0.5, 0.7, 0.9: p50 = rank ceil(1.5) = 2 → 0.7; p95 = rank ceil(2.85) = 3 → 0.9
  EXPECT_EQ(main.wake_p50_s, 0.7);
  EXPECT_EQ(main.wake_p95_s, 0.9);
  // starts: the wakes that ran the start command, whatever their outcome: 0.9 + 0.5 + 60
  EXPECT_EQ(main.activity.starts, 3u);
  EXPECT_DOUBLE_EQ(main.activity.start_seconds, 61.4);
  ASSERT_EQ(main.wake_rows.size(), 4u);
  EXPECT_EQ(main.wake_rows.front().requested_at, kSince + 7200);

  const InstanceReport& blog = find(r, "blog");
  EXPECT_EQ(blog.wakes, 1u);
  EXPECT_EQ(blog.wakes_failed, 1u);
  EXPECT_EQ(blog.wake_p50_s, 0);  // no successful wake
  EXPECT_EQ(blog.activity.starts, 1u);
}

TEST(BuildReport, SavingsFollowTheModel) {
  const Report r = build_report(sample_day(), kSince, kUntil, sample_config());
  const InstanceReport& main = find(r, "main");
  const Savings expected = savings(priced(0.02, "USD"), main.activity);
  EXPECT_DOUBLE_EQ(main.savings.energy_kwh, expected.energy_kwh);
  EXPECT_DOUBLE_EQ(main.savings.cost, expected.cost);
  // by hand: 22.9986 h × 0.02 − 3 starts × 0.02 × 1/6 h = 0.4599722… − 0.01
  EXPECT_NEAR(main.savings.cost, 82795.0 / 3600 * 0.02 - 0.01, 1e-12);
  // energy: 1.135 × (1.872 × 82795/3600 − 7.392 × 61.4/3600) / 1000
  EXPECT_NEAR(main.savings.energy_kwh, 1.135 * (1.872 * 82795 - 7.392 * 61.4) / 3600 / 1000, 1e-12);
}

TEST(BuildReport, ConfiguredFirstInOrderThenUnknownAlphabetically) {
  const Report r = build_report(sample_day(), kSince, kUntil, sample_config());
  std::vector<std::string> names;
  for (const InstanceReport& i : r.instances) names.push_back(i.name);
  EXPECT_THAT(names, ElementsAre("main", "blog", "idle", "alpha", "ghost"));

  const InstanceReport& idle = find(r, "idle");  // configured, no rows: zeros
  EXPECT_EQ(idle.activity.hours_asleep, 0);
  EXPECT_EQ(idle.wakes, 0u);
  EXPECT_EQ(idle.savings.energy_kwh, 0);

  const InstanceReport& ghost = find(r, "ghost");  // no longer configured: defaults
  EXPECT_EQ(ghost.accounting.vcpus, Accounting{}.vcpus);
  EXPECT_DOUBLE_EQ(ghost.activity.hours_asleep, 0.5);
  EXPECT_EQ(find(r, "alpha").wakes, 1u);
}

TEST(BuildReport, TotalsSumAndKeepCurrenciesApart) {
  const Report r = build_report(sample_day(), kSince, kUntil, sample_config());
  double asleep = 0, kwh = 0, g = 0;
  for (const InstanceReport& i : r.instances) {
    asleep += i.activity.hours_asleep;
    kwh += i.savings.energy_kwh;
    g += i.savings.carbon_g;
  }
  EXPECT_DOUBLE_EQ(r.hours_asleep, asleep);
  EXPECT_DOUBLE_EQ(r.energy_kwh, kwh);
  EXPECT_DOUBLE_EQ(r.carbon_g, g);
  EXPECT_EQ(r.wakes, 6u);
  EXPECT_EQ(r.wakes_failed, 2u);
  EXPECT_EQ(r.clients_waited, 11u);
  // every successful wake: 0.5, 0.7, 0.9, 1.25 → p50 rank 2 = 0.7, p95 rank 4 = 1.25
  EXPECT_EQ(r.wake_p50_s, 0.7);
  EXPECT_EQ(r.wake_p95_s, 1.25);
  ASSERT_EQ(r.cost_by_currency.size(), 2u);
  EXPECT_DOUBLE_EQ(r.cost_by_currency.at("USD"), find(r, "main").savings.cost);
  EXPECT_DOUBLE_EQ(r.cost_by_currency.at("EUR"), find(r, "blog").savings.cost);
}

TEST(BuildReport, NearestRankPercentiles) {
  LedgerData d;
  for (int s = 20; s >= 1; --s) d.wakes.push_back(wake("main", kSince + s, "ok", s, 1, true));
  const Report r = build_report(d, kSince, kUntil, {{"main", Accounting{}}});
  // 20 samples 1..20: p50 = rank 10 → 10; p95 = rank 19 → 19
  EXPECT_EQ(r.instances[0].wake_p50_s, 10);
  EXPECT_EQ(r.instances[0].wake_p95_s, 19);

  LedgerData one;
  one.wakes = {wake("main", kSince, "ok", 2.5, 1, true)};
  const Report single = build_report(one, kSince, kUntil, {{"main", Accounting{}}});
  EXPECT_EQ(single.instances[0].wake_p50_s, 2.5);
  EXPECT_EQ(single.instances[0].wake_p95_s, 2.5);
}

TEST(BuildReport, EmptyLedger) {
  const Report r = build_report(LedgerData{}, kSince, kUntil, {{"main", Accounting{}}});
  ASSERT_EQ(r.instances.size(), 1u);
  EXPECT_EQ(r.instances[0].activity.hours_asleep, 0);
  EXPECT_EQ(r.instances[0].share_asleep, 0);
  EXPECT_EQ(r.hours_asleep, 0);
  EXPECT_EQ(r.energy_kwh, 0);
  EXPECT_EQ(r.cost_by_currency.at("USD"), 0);

  const Report none = build_report(LedgerData{}, kSince, kUntil, {});
  EXPECT_TRUE(none.instances.empty());
}

TEST(BuildReport, ReversedWindowIsEmpty) {
  const Report r = build_report(sample_day(), kUntil, kSince, sample_config());
  EXPECT_EQ(r.until, r.since);
  EXPECT_EQ(r.hours_asleep, 0);
  EXPECT_EQ(r.wakes, 0u);
}

// ---- parse_report_time ----

TEST(ParseReportTime, Dates) {
  const UnixTime now = kSince + 12345;
  EXPECT_EQ(parse_report_time("2026-11-01", now), 1793491200);
  EXPECT_EQ(parse_report_time("2026-11-01T08:00", now), 1793520000);
  EXPECT_EQ(parse_report_time("2026-11-01T08:00Z", now), 1793520000);
  EXPECT_EQ(parse_report_time("2026-11-01T08:00:30", now), 1793520030);
  EXPECT_EQ(parse_report_time("2026-11-01T08:00:30Z", now), 1793520030);
  EXPECT_EQ(parse_report_time("2026-11-01 08:00:30", now), 1793520030);
  EXPECT_EQ(parse_report_time(" 2026-11-01 ", now), 1793491200);
  EXPECT_EQ(parse_report_time("2024-02-29", now), 1709164800);  // leap day
}

TEST(ParseReportTime, DurationsGoBackFromNow) {
  const UnixTime now = kSince;
  EXPECT_EQ(parse_report_time("90s", now), now - 90);
  EXPECT_EQ(parse_report_time("30m", now), now - 1800);
  EXPECT_EQ(parse_report_time("12h", now), now - 43200);
  EXPECT_EQ(parse_report_time("7d", now), now - 7 * 86400);
  EXPECT_EQ(parse_report_time("2w", now), now - 14 * 86400);
  EXPECT_EQ(parse_report_time("0d", now), now);
}

TEST(ParseReportTime, Garbage) {
  const UnixTime now = kSince;
  for (const char* bad : {"",
                          " ",
                          "yesterday",
                          "7",
                          "d",
                          "-7d",
                          "+7d",
                          "7 d",
                          "1h30m",
                          "7D",
                          "1.5h",
                          "7days",
                          "99999999999w",
                          "2026-13-01",
                          "2026-00-10",
                          "2026-02-29",
                          "2026-04-31",
                          "2026-11-1",
                          "26-11-01",
                          "2026/11/01",
                          "2026-11-01T",
                          "2026-11-01T08",
                          "2026-11-01T24:00",
                          "2026-11-01T08:60",
                          "2026-11-01T08:00:61",
                          "2026-11-01T08:00+02:00",
                          "2026-11-01T08:00ZZ",
                          "2026-11-01Z",
                          "2026-11-01x",
                          "1969-12-31",
                          "2026-11-01T08:00:00.5"}) {
    EXPECT_EQ(parse_report_time(bad, now), std::nullopt) << '"' << bad << '"';
  }
}

// ---- format checkers ----

// RFC 4180 records; an unterminated quote or a stray quote fails the test.
std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  std::size_t i = 0;
  bool quoted_field = false;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' && field.empty() && !quoted_field) {
      quoted_field = true;
      ++i;
      for (;;) {
        if (i >= text.size()) {
          ADD_FAILURE() << "unterminated quoted field";
          return rows;
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      quoted_field = false;
      ++i;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(std::move(field));
      field.clear();
      quoted_field = false;
      rows.push_back(std::move(row));
      row.clear();
      i += 2;
    } else {
      if (c == '"' || c == '\n' || c == '\r' || quoted_field) ADD_FAILURE() << "stray character at " << i;
      field += c;
      ++i;
    }
  }
  if (!row.empty() || !field.empty()) ADD_FAILURE() << "last record not ended by CRLF";
  return rows;
}

bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

// A reference after '&' at text[i]: predefined entity or numeric character reference.
bool valid_reference(std::string_view text, std::size_t i) {
  for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) {
    if (text.substr(i, std::string_view(e).size()) == e) return true;
  }
  std::size_t j = i + 1;
  if (j >= text.size() || text[j] != '#') return false;
  ++j;
  const bool hex = j < text.size() && text[j] == 'x';
  if (hex) ++j;
  const std::size_t digits = j;
  while (j < text.size() && (hex ? std::isxdigit(static_cast<unsigned char>(text[j]))
                                 : std::isdigit(static_cast<unsigned char>(text[j])))) {
    ++j;
  }
  return j > digits && j < text.size() && text[j] == ';';
}

// XML well-formedness, enough for the report page: one root, tags balanced and properly
// nested, attributes quoted and unique, '<' never in text, every '&' a valid reference.
// Returns "" when well-formed, else what is wrong and where.
std::string xml_problem(std::string_view doc) {
  std::vector<std::string> stack;
  bool root_done = false;
  std::size_t i = 0;
  auto where = [&](std::size_t at) { return " at offset " + std::to_string(at); };
  while (i < doc.size()) {
    if (doc[i] == '&') {
      if (!valid_reference(doc, i)) return "bad reference" + where(i);
      ++i;
      continue;
    }
    if (doc[i] != '<') {
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(doc[i]))) return "text outside the root" + where(i);
      ++i;
      continue;
    }
    if (doc.substr(i, 4) == "<!--") {
      const auto end = doc.find("-->", i + 4);
      if (end == std::string_view::npos) return "unterminated comment" + where(i);
      i = end + 3;
      continue;
    }
    if (doc.substr(i, 9) == "<!DOCTYPE") {
      if (!stack.empty() || root_done) return "misplaced DOCTYPE" + where(i);
      const auto end = doc.find('>', i);
      if (end == std::string_view::npos) return "unterminated DOCTYPE" + where(i);
      i = end + 1;
      continue;
    }
    const bool closing = i + 1 < doc.size() && doc[i + 1] == '/';
    std::size_t j = i + (closing ? 2 : 1);
    const std::size_t name_begin = j;
    if (j >= doc.size() || !name_start(doc[j])) return "bad tag name" + where(i);
    while (j < doc.size() && name_char(doc[j])) ++j;
    const std::string name(doc.substr(name_begin, j - name_begin));
    auto skip_space = [&] {
      while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
    };
    if (closing) {
      skip_space();
      if (j >= doc.size() || doc[j] != '>') return "bad end tag" + where(i);
      if (stack.empty() || stack.back() != name) {
        return "</" + name + "> closes <" + (stack.empty() ? "" : stack.back()) + ">" + where(i);
      }
      stack.pop_back();
      if (stack.empty()) root_done = true;
      i = j + 1;
      continue;
    }
    if (stack.empty() && root_done) return "second root element" + where(i);
    std::vector<std::string> attributes;
    for (;;) {
      const std::size_t before = j;
      skip_space();
      if (j >= doc.size()) return "unterminated tag <" + name + ">" + where(i);
      if (doc[j] == '>') {
        stack.push_back(name);
        ++j;
        break;
      }
      if (doc.substr(j, 2) == "/>") {
        if (stack.empty()) root_done = true;
        j += 2;
        break;
      }
      if (j == before) return "attributes not separated in <" + name + ">" + where(j);
      const std::size_t attr_begin = j;
      if (!name_start(doc[j])) return "bad attribute name in <" + name + ">" + where(j);
      while (j < doc.size() && name_char(doc[j])) ++j;
      const std::string attr(doc.substr(attr_begin, j - attr_begin));
      if (std::find(attributes.begin(), attributes.end(), attr) != attributes.end()) {
        return "duplicate attribute " + attr + where(j);
      }
      attributes.push_back(attr);
      skip_space();
      if (j >= doc.size() || doc[j] != '=') return "attribute " + attr + " without value" + where(j);
      ++j;
      skip_space();
      if (j >= doc.size() || (doc[j] != '"' && doc[j] != '\'')) return "unquoted attribute " + attr + where(j);
      const char quote = doc[j++];
      const std::size_t value_begin = j;
      while (j < doc.size() && doc[j] != quote) {
        if (doc[j] == '<') return "'<' in attribute " + attr + where(j);
        if (doc[j] == '&' && !valid_reference(doc, j)) return "bad reference in attribute" + where(j);
        ++j;
      }
      if (j >= doc.size()) return "unterminated attribute value" + where(value_begin);
      ++j;
    }
    i = j;
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (!root_done) return "no root element";
  return "";
}

std::size_t count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string_view::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

TEST(XmlChecker, CatchesWhatItMust) {
  EXPECT_EQ(xml_problem("<!DOCTYPE html>\n<a x=\"1\"><b/>t &amp; &#215;</a>\n"), "");
  EXPECT_NE(xml_problem("<a><b></a></b>"), "");
  EXPECT_NE(xml_problem("<a>x < y</a>"), "");
  EXPECT_NE(xml_problem("<a>fish & chips</a>"), "");
  EXPECT_NE(xml_problem("<a x=1></a>"), "");
  EXPECT_NE(xml_problem("<a x=\"1\" x=\"2\"></a>"), "");
  EXPECT_NE(xml_problem("<a>&nbsp;</a>"), "");
  EXPECT_NE(xml_problem("<a></a><b></b>"), "");
  EXPECT_NE(xml_problem("<a><br></a>"), "");
}

// A report with every kind of row, and an instance whose name needs quoting everywhere.
UsageRow usage_row(std::string instance, UnixTime start, UnixTime end, bool idle, double seconds, double cpu_seconds,
                   double memory_bytes, std::uint64_t samples) {
  UsageRow u;
  u.instance = std::move(instance);
  u.started_at = start;
  u.ended_at = end;
  u.idle = idle;
  u.totals.seconds = seconds;
  u.totals.cpu_seconds = cpu_seconds;
  u.totals.memory_seconds = seconds;
  u.totals.memory_byte_seconds = memory_bytes * seconds;
  u.totals.samples = samples;
  u.cpu_source = "proc";
  u.memory_source = "pss";
  return u;
}

// main's awake hour of sample_day(), measured: an hour idle at 0.15% of a vCPU and 40 MB,
// and ten minutes busy at 2% and 60 MB.
std::vector<UsageRow> main_usage() {
  return {usage_row("main", kSince + 7201, kSince + 10201, true, 3600, 5.4, 40e6, 360),
          usage_row("main", kSince + 10201, kSince + 10800, false, 600, 12, 60e6, 60)};
}

Report rich_report() {
  LedgerData d = sample_day();
  d.usage = main_usage();
  const std::string odd = "a,b \"c\" <d> & e\x01\xff";
  d.intervals.push_back(interval(odd, "asleep", kSince, kSince + 600));
  d.wakes.push_back(wake(odd, kSince + 600, "ok", 0.3, 1, true));
  auto config = sample_config();
  config[0].second.embodied_g_per_hour = 1.5;
  config[0].second.power_watts = 9.0;
  return build_report(d, kSince, kUntil, config);
}

// ---- JSON ----

void expect_number(const boost::json::object& o, const char* key) {
  ASSERT_TRUE(o.contains(key)) << key;
  EXPECT_TRUE(o.at(key).is_number()) << key << " is " << boost::json::serialize(o.at(key));
}
void expect_string(const boost::json::object& o, const char* key) {
  ASSERT_TRUE(o.contains(key)) << key;
  EXPECT_TRUE(o.at(key).is_string()) << key;
}
void expect_integer(const boost::json::object& o, const char* key) {
  ASSERT_TRUE(o.contains(key)) << key;
  EXPECT_TRUE(o.at(key).is_int64() || o.at(key).is_uint64()) << key;
}

TEST(FormatJson, ParsesWithEveryFieldPresentAndTyped) {
  const Report report = rich_report();
  const std::string text = format_json(report);
  boost::json::error_code ec;
  const boost::json::value doc = boost::json::parse(text, ec);
  ASSERT_FALSE(ec) << ec.message() << "\n" << text;
  const auto& root = doc.as_object();
  EXPECT_EQ(root.at("schema").as_string(), "pgnap.report/1");
  EXPECT_EQ(root.at("since").as_string(), "2026-11-01T00:00:00Z");
  EXPECT_EQ(root.at("until").as_string(), "2026-11-02T00:00:00Z");

  const auto& instances = root.at("instances").as_array();
  ASSERT_EQ(instances.size(), report.instances.size());
  for (std::size_t k = 0; k < instances.size(); ++k) {
    const auto& i = instances[k].as_object();
    EXPECT_EQ(i.at("name").as_string(), boost::json::string_view(k == 0 ? "main" : i.at("name").as_string()));
    expect_string(i, "name");
    for (const char* f :
         {"hours_asleep", "hours_awake", "hours_failed", "share_asleep", "wake_p50_seconds", "wake_p95_seconds",
          "start_seconds", "energy_saved_kwh", "carbon_saved_g", "cost_saved", "embodied_saved_g"}) {
      expect_number(i, f);
    }
    for (const char* f : {"wakes", "wakes_failed", "clients_waited", "starts"}) expect_integer(i, f);
    expect_string(i, "currency");

    const auto& grid = i.at("grid").as_object();
    expect_number(grid, "intensity_g_per_kwh");
    expect_string(grid, "source");
    expect_integer(grid, "year");

    const auto& c = i.at("coefficients").as_object();
    for (const char* f : {"vcpus", "memory_gb", "idle_watts_per_vcpu", "busy_watts_per_vcpu", "watts_per_gb",
                          "residual_watts", "pue", "grid_intensity", "price_per_hour", "wake_billed_minimum_seconds",
                          "embodied_g_per_hour", "idle_watts", "busy_watts"}) {
      expect_number(c, f);
    }
    for (const char* f : {"power_watts", "busy_power_watts"}) {
      ASSERT_TRUE(c.contains(f));
      EXPECT_TRUE(c.at(f).is_null() || c.at(f).is_number()) << f;
    }
    expect_string(c, "grid_source");
    expect_integer(c, "grid_year");
    expect_string(c, "currency");

    const auto& parts = i.at("parts").as_object();
    for (const char* f : {"idle_energy_kwh", "wake_energy_kwh", "wake_cost"}) expect_number(parts, f);
  }

  const auto& main = instances[0].as_object();
  EXPECT_NEAR(main.at("hours_asleep").to_number<double>(), 82795.0 / 3600, 1e-12);
  EXPECT_EQ(main.at("wakes").to_number<std::int64_t>(), 4);
  EXPECT_EQ(main.at("coefficients").as_object().at("power_watts").to_number<double>(), 9.0);
  EXPECT_EQ(main.at("coefficients").as_object().at("wake_billed_minimum_seconds").to_number<double>(), 600);
  EXPECT_TRUE(instances[1].as_object().at("coefficients").as_object().at("power_watts").is_null());
  EXPECT_EQ(main.at("grid").as_object().at("year").to_number<std::int64_t>(), 2024);
  // The odd name survives: quotes and '<' intact, the control byte and bad UTF-8 replaced.
  bool found_odd = false;
  for (const auto& v : instances) {
    if (v.as_object().at("name").as_string() == "a,b \"c\" <d> & e\xEF\xBF\xBD\xEF\xBF\xBD") found_odd = true;
  }
  EXPECT_TRUE(found_odd);

  const auto& total = root.at("total").as_object();
  for (const char* f :
       {"hours_asleep", "hours_awake", "hours_failed", "share_asleep", "wake_p50_seconds", "wake_p95_seconds",
        "start_seconds", "energy_saved_kwh", "carbon_saved_g", "embodied_saved_g"}) {
    expect_number(total, f);
  }
  for (const char* f : {"wakes", "wakes_failed", "clients_waited", "starts"}) expect_integer(total, f);
  const auto& cost = total.at("cost_saved").as_object();
  ASSERT_EQ(cost.size(), 2u);
  EXPECT_TRUE(cost.at("USD").is_number());
  EXPECT_TRUE(cost.at("EUR").is_number());
  EXPECT_NEAR(total.at("energy_saved_kwh").to_number<double>(), report.energy_kwh, 1e-12);
  EXPECT_NEAR(total.at("embodied_saved_g").to_number<double>(), report.embodied_g, 1e-9);
  EXPECT_GT(report.embodied_g, 0);
}

TEST(FormatJson, EmptyReportsParse) {
  for (const auto& config : {std::vector<std::pair<std::string, Accounting>>{},
                             std::vector<std::pair<std::string, Accounting>>{{"main", Accounting{}}}}) {
    const std::string text = format_json(build_report(LedgerData{}, kSince, kUntil, config));
    boost::json::error_code ec;
    const auto doc = boost::json::parse(text, ec);
    ASSERT_FALSE(ec) << text;
    EXPECT_EQ(doc.at("instances").as_array().size(), config.size());
    EXPECT_TRUE(doc.at("total").at("cost_saved").is_object());
  }
}

// ---- CSV ----

TEST(FormatCsv, HeaderThenOneRowPerInstanceThenTotal) {
  const Report report = rich_report();
  const std::string text = format_csv(report);
  const auto rows = parse_csv(text);
  ASSERT_EQ(rows.size(), report.instances.size() + 2);
  const auto& header = rows.front();
  for (const auto& row : rows) EXPECT_EQ(row.size(), header.size());
  for (const char* column : {"since",
                             "until",
                             "name",
                             "hours_asleep",
                             "hours_awake",
                             "hours_failed",
                             "share_asleep",
                             "wakes",
                             "wakes_failed",
                             "wake_p50_seconds",
                             "wake_p95_seconds",
                             "clients_waited",
                             "starts",
                             "energy_saved_kwh",
                             "carbon_saved_g",
                             "cost_saved",
                             "currency",
                             "embodied_saved_g",
                             "grid_intensity_g_per_kwh",
                             "grid_source",
                             "grid_year",
                             "coefficients_idle_watts",
                             "coefficients_busy_watts",
                             "parts_idle_energy_kwh",
                             "parts_wake_energy_kwh",
                             "parts_wake_cost"}) {
    EXPECT_NE(std::find(header.begin(), header.end(), column), header.end()) << column;
  }
  auto column = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  EXPECT_EQ(rows[1][column("name")], "main");
  EXPECT_EQ(rows[1][column("since")], "2026-11-01T00:00:00Z");
  EXPECT_NEAR(std::stod(rows[1][column("hours_asleep")]), 82795.0 / 3600, 1e-12);
  EXPECT_EQ(rows[1][column("wakes")], "4");
  EXPECT_EQ(rows.back()[column("name")], "TOTAL");
  EXPECT_EQ(rows.back()[column("wakes")], std::to_string(report.wakes));
  EXPECT_EQ(rows.back()[column("cost_saved")], "");  // two currencies: see the JSON
  // The name with a comma and quotes is quoted, and reads back whole.
  EXPECT_THAT(text, HasSubstr("\"a,b \"\"c\"\" <d> & e"));
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(),
                          [&](const auto& r) { return r[column("name")].rfind("a,b \"c\" <d> & e", 0) == 0; }),
            1);
  EXPECT_EQ(rows[1][column("grid_source")], "Ember, Global Electricity Review 2025 (world average)");
}

TEST(FormatCsv, OneCurrencyHasATotal) {
  const Report report = build_report(sample_day(), kSince, kUntil, {{"main", priced(0.02, "USD")}});
  const auto rows = parse_csv(format_csv(report));
  const auto& header = rows.front();
  const auto cost = static_cast<std::size_t>(std::find(header.begin(), header.end(), "cost_saved") - header.begin());
  const auto cur = static_cast<std::size_t>(std::find(header.begin(), header.end(), "currency") - header.begin());
  EXPECT_NEAR(std::stod(rows.back()[cost]), report.cost_by_currency.at("USD"), 1e-12);
  EXPECT_EQ(rows.back()[cur], "USD");
}

// ---- table ----

TEST(FormatTable, AlignedWithWindowTotalsAndGridSources) {
  const Report report = build_report(sample_day(), kSince, kUntil, sample_config());
  const std::string text = format_table(report);
  EXPECT_THAT(text, HasSubstr("2026-11-01T00:00:00Z"));
  EXPECT_THAT(text, HasSubstr("2026-11-02T00:00:00Z"));
  EXPECT_THAT(text, HasSubstr("TOTAL"));
  EXPECT_THAT(text, HasSubstr("23.00"));  // main asleep: 22.9986 h
  EXPECT_THAT(text, HasSubstr("95.8%"));  // 82795 / 86400
  EXPECT_THAT(text, HasSubstr("4 (1)"));
  EXPECT_THAT(text, HasSubstr("0.70 / 0.90"));
  EXPECT_THAT(text, HasSubstr(" USD"));
  EXPECT_THAT(text, HasSubstr(" EUR"));
  EXPECT_THAT(text, HasSubstr("473 gCO2e/kWh, Ember, Global Electricity Review 2025 (world average) (2024)"));
  EXPECT_THAT(text, Not(HasSubstr("embodied")));  // off unless set

  // The rows (header, one per instance, TOTAL) all end at the same column.
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto nl = text.find('\n'); nl != std::string::npos; start = nl + 1, nl = text.find('\n', start)) {
    lines.push_back(text.substr(start, nl - start));
  }
  // The first table: from its header to the blank line after it (the measured section follows).
  const auto header = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("instance", 0) == 0; });
  ASSERT_NE(header, lines.end());
  lines.erase(std::find(header, lines.end(), std::string()), lines.end());
  lines.erase(lines.begin(), header);
  std::vector<std::size_t> widths;
  for (const auto& l : lines) {
    if (l.rfind("instance", 0) == 0 || l.rfind("TOTAL", 0) == 0) widths.push_back(l.size());
    for (const auto& i : report.instances) {
      if (l.rfind(i.name + " ", 0) == 0 && l.find("gCO2e/kWh") == std::string::npos) widths.push_back(l.size());
    }
  }
  ASSERT_EQ(widths.size(), report.instances.size() + 2);
  for (const std::size_t w : widths) EXPECT_EQ(w, widths.front());
}

TEST(FormatTable, EmbodiedAndNegativeSavingsAreExplained) {
  LedgerData d;
  d.intervals = {interval("main", "asleep", kSince, kSince + 1)};
  d.wakes = {wake("main", kSince + 1, "ok", 5, 1, true)};
  Accounting a;
  a.embodied_g_per_hour = 3;
  const std::string text = format_table(build_report(d, kSince, kUntil, {{"main", a}}));
  EXPECT_THAT(text, HasSubstr("embodied"));
  EXPECT_THAT(text, HasSubstr("negative"));
}

// ---- HTML ----

TEST(FormatHtml, WellFormedWithOneTimelinePerInstance) {
  const Report report = rich_report();
  const std::string html = format_html(report);
  EXPECT_EQ(xml_problem(html), "");
  EXPECT_EQ(count(html, "<svg class=\"timeline\" data-instance=\""), report.instances.size());
  for (const char* name : {"main", "blog", "idle", "alpha", "ghost"}) {
    EXPECT_EQ(count(html, "<svg class=\"timeline\" data-instance=\"" + std::string(name) + "\""), 1u) << name;
  }
  EXPECT_EQ(count(html, "data-instance=\"a,b &quot;c&quot; &lt;d&gt; &amp; e"), 1u);
  EXPECT_EQ(count(html, "<svg"), report.instances.size());  // no other SVG on the page
  // Self-contained: nothing fetched.
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
  EXPECT_THAT(html, Not(HasSubstr(" src=")));
  EXPECT_THAT(html, Not(HasSubstr("url(http")));
  // The savings, the bands, the wakes and the sources are there.
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html, HasSubstr("class=\"asleep\""));
  EXPECT_THAT(html, HasSubstr("class=\"awake\""));
  EXPECT_THAT(html, HasSubstr("class=\"waking\""));
  EXPECT_THAT(html, HasSubstr("class=\"suspending\""));
  EXPECT_THAT(html, HasSubstr("class=\"failed\""));
  EXPECT_THAT(html, HasSubstr("class=\"wake\""));
  EXPECT_THAT(html, HasSubstr("class=\"wake-failed\""));
  EXPECT_THAT(html, HasSubstr("Cloud Carbon Footprint"));
  EXPECT_THAT(html, HasSubstr("473 gCO2e/kWh, Ember, Global Electricity Review 2025 (world average) (2024)"));
  EXPECT_THAT(html, HasSubstr("Embodied"));
}

TEST(FormatHtml, WellFormedForEveryWindowLength) {
  for (const double span :
       {0.0, 600.0, 3 * 3600.0, 86400.0, 7 * 86400.0, 40 * 86400.0, 400 * 86400.0, 12 * 365 * 86400.0}) {
    const Report report = build_report(sample_day(), kSince, kSince + span, sample_config());
    const std::string html = format_html(report);
    EXPECT_EQ(xml_problem(html), "") << "span " << span;
    EXPECT_EQ(count(html, "<svg class=\"timeline\""), report.instances.size());
    if (span >= 600) {
      EXPECT_THAT(html, HasSubstr("<text class=\"tl\"")) << "span " << span;
    }
  }
  // From the epoch (no --since): the timelines start at the first record, with few labels.
  const std::string all = format_html(build_report(sample_day(), 0, kUntil, sample_config()));
  EXPECT_EQ(xml_problem(all), "");
  // (the earliest row, main's awake spell from 22:00 the day before, is not clipped here)
  EXPECT_NE(all.find("the timelines start at the first record, 2026-10-31 22:00"), std::string::npos);
  EXPECT_LE(count(all, "<text class=\"tl\""), 5 * (8 + 1));

  const std::string empty = format_html(build_report(LedgerData{}, kSince, kUntil, {}));
  EXPECT_EQ(xml_problem(empty), "");
  EXPECT_EQ(count(empty, "<svg"), 0u);
}

// ---- wakes by cause, who woke it, maintenance ----

WakeRow caused(std::string instance, UnixTime at, std::string cause, std::string application = {},
               std::string address = {}) {
  WakeRow w = wake(std::move(instance), at, "ok", 0.5, cause == "client" ? 1 : 0, true);
  w.cause = std::move(cause);
  w.application_name = std::move(application);
  w.client_address = std::move(address);
  return w;
}

MaintenanceRow run(std::string instance, UnixTime at, int exit_status, std::string outcome) {
  return {std::move(instance), at, at + 30, "vacuumdb --all", exit_status, std::move(outcome), "done\n"};
}

// main: 12 client wakes (uptime-monitor 6 from one host on many ports, 2 without an
// application_name over the Unix socket, four others once each), one manual, one by a
// window, one for maintenance; two maintenance runs, the last failed with status 3.
LedgerData woken_day() {
  LedgerData d;
  d.intervals = {interval("main", "asleep", kSince, kUntil)};
  for (int i = 0; i < 6; ++i) {
    d.wakes.push_back(caused("main", kSince + 1000 * i, "client", "uptime-monitor",
                             "10.0.0.5:" + std::to_string(40000 + i)));
  }
  d.wakes.push_back(caused("main", kSince + 10000, "client", "", "unix"));
  d.wakes.push_back(caused("main", kSince + 10001, "client", "", "unix"));
  d.wakes.push_back(caused("main", kSince + 10002, "client", "psql", "[::1]:5432"));
  d.wakes.push_back(caused("main", kSince + 10003, "client", "app-c", "10.0.0.8:1"));
  d.wakes.push_back(caused("main", kSince + 10004, "client", "app-a", "10.0.0.6:1"));
  d.wakes.push_back(caused("main", kSince + 10005, "client", "app-b", "10.0.0.7:1"));
  d.wakes.push_back(caused("main", kSince + 20000, "manual"));
  d.wakes.push_back(caused("main", kSince + 21000, "window"));
  d.wakes.push_back(caused("main", kSince + 22000, "maintenance"));
  d.wakes.push_back(caused("main", kUntil + 1, "client", "late", "10.9.9.9:1"));  // outside the window
  d.maintenance = {run("main", kSince + 3600, 0, "ok"), run("main", kSince + 4 * 3600, 3, "failed"),
                   run("main", kSince - 60, 0, "ok"),  // before the window
                   run("retired", kSince + 7200, -1, "timeout")};
  return d;
}

std::vector<std::pair<std::string, Accounting>> woken_config() { return {{"main", {}}, {"quiet", {}}}; }

TEST(AddressWithoutPort, KeepsTheHostOnly) {
  EXPECT_EQ(address_without_port("10.0.0.5:50312"), "10.0.0.5");
  EXPECT_EQ(address_without_port("[::1]:50312"), "::1");
  EXPECT_EQ(address_without_port("[2001:db8::7]:5432"), "2001:db8::7");
  EXPECT_EQ(address_without_port("unix"), "unix");
  EXPECT_EQ(address_without_port(""), "");
  EXPECT_EQ(address_without_port("2001:db8::7"), "2001:db8::7");
}

TEST(BuildReport, CountsWakesByCauseAndRanksWhoWokeIt) {
  const Report r = build_report(woken_day(), kSince, kUntil, woken_config());
  const InstanceReport& main = find(r, "main");
  EXPECT_EQ(main.wakes, 15u);
  EXPECT_DOUBLE_EQ(main.wakes_per_day, 15.0);
  EXPECT_EQ(main.wakes_client, 12u);
  EXPECT_EQ(main.wakes_manual, 1u);
  EXPECT_EQ(main.wakes_window, 1u);
  EXPECT_EQ(main.wakes_maintenance, 1u);
  // By count, then by name; the sixth and beyond summed.
  std::vector<std::pair<std::string, std::uint64_t>> apps, addresses;
  for (const auto& s : main.top_applications) apps.emplace_back(s.name, s.wakes);
  for (const auto& s : main.top_addresses) addresses.emplace_back(s.name, s.wakes);
  using P = std::pair<std::string, std::uint64_t>;
  EXPECT_THAT(apps, ElementsAre(P{"uptime-monitor", 6}, P{"", 2}, P{"app-a", 1}, P{"app-b", 1}, P{"app-c", 1}));
  EXPECT_EQ(main.other_applications_wakes, 1u);  // psql
  EXPECT_THAT(addresses,
              ElementsAre(P{"10.0.0.5", 6}, P{"unix", 2}, P{"10.0.0.6", 1}, P{"10.0.0.7", 1}, P{"10.0.0.8", 1}));
  EXPECT_EQ(main.other_addresses_wakes, 1u);  // ::1

  EXPECT_EQ(main.maintenance_runs, 2u);
  EXPECT_EQ(main.maintenance_failed, 1u);
  ASSERT_TRUE(main.last_maintenance.has_value());
  EXPECT_EQ(main.last_maintenance->exit_status, 3);

  // An instance only maintenance rows know is reported too.
  const InstanceReport& retired = find(r, "retired");
  EXPECT_EQ(retired.maintenance_runs, 1u);
  EXPECT_EQ(retired.maintenance_failed, 1u);
  EXPECT_EQ(find(r, "quiet").wakes_per_day, 0);

  EXPECT_EQ(r.wakes_client, 12u);
  EXPECT_EQ(r.wakes_maintenance, 1u);
  EXPECT_EQ(r.maintenance_runs, 3u);
  EXPECT_EQ(r.maintenance_failed, 2u);
  EXPECT_DOUBLE_EQ(r.wakes_per_day, 15.0);
  // Half a day: the same wakes are twice the rate.
  EXPECT_DOUBLE_EQ(find(build_report(woken_day(), kSince, kSince + 43200, woken_config()), "main").wakes_per_day,
                   2 * 15.0);  // every wake of the day falls in its first half
}

TEST(BuildReport, WakesOfAnOlderLedgerAreAClientsOfUnknownIdentity) {
  const Report r = build_report(sample_day(), kSince, kUntil, sample_config());
  const InstanceReport& main = find(r, "main");
  EXPECT_EQ(main.wakes_client, main.wakes);
  ASSERT_EQ(main.top_addresses.size(), 1u);
  EXPECT_EQ(main.top_addresses[0].name, "");
  EXPECT_EQ(main.top_addresses[0].wakes, main.wakes);
}

TEST(FormatTable, ShowsWakesByCauseWhoWokeItAndMaintenance) {
  const std::string text = format_table(build_report(woken_day(), kSince, kUntil, woken_config()));
  EXPECT_THAT(text, HasSubstr("Wakes by cause:\n  main     15 wakes, 15.0/day: 12 client, 1 manual, 1 window, "
                              "1 maintenance\n"));
  EXPECT_THAT(text, HasSubstr("Who woke them (top 5 application_names and addresses, among all client wakes):\n"));
  EXPECT_THAT(text, HasSubstr("  main     application_name: uptime-monitor 6, (none) 2, app-a 1, app-b 1, app-c 1, "
                              "others 1\n"));
  EXPECT_THAT(text, HasSubstr("\n           address:          10.0.0.5 6, unix 2, 10.0.0.6 1, 10.0.0.7 1, "
                              "10.0.0.8 1, others 1\n"));
  EXPECT_THAT(text, HasSubstr("Maintenance runs:\n  main     2 runs, 1 failed; last 2026-11-01 04:00 UTC, exit "
                              "status 3 (failed)\n  retired  1 run, 1 failed; last 2026-11-01 02:00 UTC, no exit "
                              "status (timeout)\n"));
  EXPECT_THAT(text, HasSubstr("1 maintenance\n\nWho woke"));  // quiet: no wakes, no runs: not listed

  // Without wakes or runs, the sections are left out.
  const std::string quiet = format_table(build_report(LedgerData{}, kSince, kUntil, woken_config()));
  EXPECT_THAT(quiet, Not(HasSubstr("Wakes by cause")));
  EXPECT_THAT(quiet, Not(HasSubstr("Who woke")));
  EXPECT_THAT(quiet, Not(HasSubstr("Maintenance")));
}

TEST(FormatTable, AnApplicationNameCannotDrawOnTheTerminal) {
  LedgerData d;
  d.wakes = {caused("main", kSince, "client",
                    "evil\x1b[2J\nnext\xc2\x9b"
                    "1m",
                    "10.0.0.1:1")};
  const std::string text = format_table(build_report(d, kSince, kUntil, {{"main", {}}}));
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos);
  EXPECT_THAT(text, HasSubstr("application_name: evil\xEF\xBF\xBD[2J next\xEF\xBF\xBD"
                              "1m 1\n"));
}

TEST(FormatJson, WakeCausesWhoWokeItAndMaintenance) {
  const std::string text = format_json(build_report(woken_day(), kSince, kUntil, woken_config()));
  boost::json::error_code ec;
  const boost::json::value doc = boost::json::parse(text, ec);
  ASSERT_FALSE(ec) << ec.message() << "\n" << text;
  const auto& main = doc.at("instances").as_array()[0].as_object();
  EXPECT_EQ(main.at("wakes_per_day").to_number<double>(), 15.0);
  const auto& causes = main.at("wake_causes").as_object();
  EXPECT_EQ(causes.at("client").to_number<std::int64_t>(), 12);
  EXPECT_EQ(causes.at("manual").to_number<std::int64_t>(), 1);
  EXPECT_EQ(causes.at("window").to_number<std::int64_t>(), 1);
  EXPECT_EQ(causes.at("maintenance").to_number<std::int64_t>(), 1);
  const auto& who = main.at("client_wakes").as_object();
  const auto& apps = who.at("by_application").as_array();
  ASSERT_EQ(apps.size(), 5u);
  EXPECT_EQ(apps[0].at("application_name").as_string(), "uptime-monitor");
  EXPECT_EQ(apps[0].at("wakes").to_number<std::int64_t>(), 6);
  EXPECT_EQ(apps[1].at("application_name").as_string(), "");
  EXPECT_EQ(who.at("other_applications").to_number<std::int64_t>(), 1);
  const auto& addresses = who.at("by_address").as_array();
  EXPECT_EQ(addresses[0].at("address").as_string(), "10.0.0.5");
  EXPECT_EQ(addresses[1].at("address").as_string(), "unix");
  const auto& maintenance = main.at("maintenance").as_object();
  EXPECT_EQ(maintenance.at("runs").to_number<std::int64_t>(), 2);
  EXPECT_EQ(maintenance.at("failed").to_number<std::int64_t>(), 1);
  EXPECT_EQ(maintenance.at("last_exit_status").to_number<std::int64_t>(), 3);
  EXPECT_EQ(maintenance.at("last_outcome").as_string(), "failed");
  EXPECT_EQ(maintenance.at("last_started_at").as_string(), "2026-11-01T04:00:00Z");

  const auto& quiet = doc.at("instances").as_array()[1].as_object();
  EXPECT_TRUE(quiet.at("client_wakes").at("by_application").as_array().empty());
  EXPECT_TRUE(quiet.at("maintenance").at("last_exit_status").is_null());
  EXPECT_TRUE(quiet.at("maintenance").at("last_outcome").is_null());
  const auto& retired = doc.at("instances").as_array()[2].as_object();
  EXPECT_TRUE(retired.at("maintenance").at("last_exit_status").is_null()) << "it did not exit";

  const auto& total = doc.at("total").as_object();
  EXPECT_EQ(total.at("wake_causes").at("client").to_number<std::int64_t>(), 12);
  EXPECT_EQ(total.at("maintenance").at("runs").to_number<std::int64_t>(), 3);
  EXPECT_EQ(total.at("wakes_per_day").to_number<double>(), 15.0);
  EXPECT_TRUE(total.at("cost_saved").is_object());
}

TEST(FormatCsv, WakeCausesWhoWokeItAndMaintenanceAreColumns) {
  const Report report = build_report(woken_day(), kSince, kUntil, woken_config());
  const auto rows = parse_csv(format_csv(report));
  ASSERT_EQ(rows.size(), report.instances.size() + 2);
  const auto& header = rows.front();
  for (const auto& row : rows) EXPECT_EQ(row.size(), header.size());
  auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name;
    return static_cast<std::size_t>(it - header.begin());
  };
  const auto& main = rows[1];
  EXPECT_EQ(main[column("wake_causes_client")], "12");
  EXPECT_EQ(main[column("wake_causes_maintenance")], "1");
  EXPECT_EQ(main[column("wakes_per_day")], "15");
  EXPECT_EQ(main[column("client_wakes_by_application_1")], "uptime-monitor");
  EXPECT_EQ(main[column("client_wakes_by_application_1_wakes")], "6");
  EXPECT_EQ(main[column("client_wakes_by_application_2")], "");
  EXPECT_EQ(main[column("client_wakes_by_application_2_wakes")], "2");
  EXPECT_EQ(main[column("client_wakes_by_address_5")], "10.0.0.8");
  EXPECT_EQ(main[column("client_wakes_other_addresses")], "1");
  EXPECT_EQ(main[column("maintenance_last_exit_status")], "3");
  const auto& quiet = rows[2];
  EXPECT_EQ(quiet[column("client_wakes_by_application_1")], "");
  EXPECT_EQ(quiet[column("client_wakes_by_application_1_wakes")], "");
  EXPECT_EQ(quiet[column("maintenance_last_exit_status")], "");
  EXPECT_EQ(rows.back()[column("name")], "TOTAL");
  EXPECT_EQ(rows.back()[column("wake_causes_client")], "12");
  EXPECT_EQ(rows.back()[column("maintenance_runs")], "3");
  EXPECT_EQ(rows.back()[column("client_wakes_by_application_1")], "");
  // The columns that were there before keep their places: the new ones come after them.
  EXPECT_LT(column("parts_wake_cost"), column("wake_causes_client"));
  EXPECT_EQ(column("name"), 2u);
}

TEST(FormatHtml, ShowsWakesByCauseWhoWokeItAndMaintenance) {
  const std::string html = format_html(build_report(woken_day(), kSince, kUntil, woken_config()));
  EXPECT_EQ(xml_problem(html), "");
  EXPECT_THAT(html, HasSubstr("<th>Wakes by cause</th><td>12 client, 1 manual, 1 window, 1 maintenance"));
  EXPECT_THAT(html, HasSubstr("15.0 wakes a day"));
  EXPECT_THAT(html, HasSubstr("<th>Woken by application_name</th><td>uptime-monitor 6, (none) 2, app-a 1"));
  EXPECT_THAT(html, HasSubstr("(top 5, among all 12 client wakes)"));
  EXPECT_THAT(html, HasSubstr("<th>Woken from address</th><td>10.0.0.5 6, unix 2"));
  EXPECT_THAT(html, HasSubstr("<th>Maintenance runs</th><td>2 runs, 1 failed; last 2026-11-01 04:00 UTC, exit "
                              "status 3 (failed)"));
  EXPECT_THAT(html, HasSubstr("for uptime-monitor from 10.0.0.5"));  // a wake's tooltip
  EXPECT_THAT(html, HasSubstr("15 wakes, 15.0/day"));
}

}  // namespace
}  // namespace pgnap::accounting

// ---- the measured basis ----

namespace pgnap::accounting {
namespace {

TEST(BuildReport, MeasuredBasisFromTheIdleUsageRows) {
  LedgerData d = sample_day();
  d.usage = main_usage();
  const Report report = build_report(d, kSince, kUntil, sample_config());
  const InstanceReport& main = find(report, "main");
  ASSERT_TRUE(main.measured.available) << main.measured.note;
  // 5.4 CPU-s over 3600 s = 0.0015 vCPU; 40e6 B over the same hour = 0.04 GB. The busy rows are
  // kept apart (2% and 60 MB) and never used for what sleeping avoided.
  EXPECT_DOUBLE_EQ(main.measured.rates.cpu_utilisation, 0.0015);
  EXPECT_DOUBLE_EQ(main.measured.rates.memory_gb, 0.04);
  EXPECT_DOUBLE_EQ(main.measured.busy.cpu_utilisation(), 0.02);
  const MeasuredSavings expected = measured_savings(main.accounting, {0.0015, 0.04}, main.activity);
  EXPECT_DOUBLE_EQ(main.measured.savings.energy_kwh, expected.energy_kwh);
  // 0.0015 × 22.9986 h × 3600 = 124.19 CPU-s; 0.04 GB × 22.9986 h = 0.92 GB-h
  EXPECT_NEAR(main.measured.savings.cpu_seconds, 0.0015 * 82795, 1e-9);
  EXPECT_NEAR(main.measured.savings.memory_gb_hours, 0.04 * 82795 / 3600, 1e-12);
  EXPECT_EQ(main.basis, "measured");
  EXPECT_EQ(main.saved_energy_kwh, main.measured.savings.energy_kwh);
  EXPECT_THAT(main.measured.note, HasSubstr("measured over 60.0 min idle-awake"));
  EXPECT_THAT(main.measured.note, HasSubstr("360 readings"));
  EXPECT_THAT(main.measured.note, HasSubstr("memory as PSS"));
  // The model's figures are still there, apart.
  EXPECT_GT(main.savings.energy_kwh, main.measured.savings.energy_kwh);

  const InstanceReport& blog = find(report, "blog");
  EXPECT_FALSE(blog.measured.available);
  EXPECT_EQ(blog.basis, "model");
  EXPECT_EQ(blog.saved_energy_kwh, blog.savings.energy_kwh);
  EXPECT_THAT(blog.measured.note, HasSubstr("nothing measured"));

  EXPECT_EQ(report.instances_measured, 1u);
  EXPECT_EQ(report.basis, "mixed");
  EXPECT_DOUBLE_EQ(report.measured_cpu_seconds, main.measured.savings.cpu_seconds);
  double saved = 0;
  for (const InstanceReport& r : report.instances) saved += r.saved_energy_kwh;
  EXPECT_DOUBLE_EQ(report.saved_energy_kwh, saved);
}

TEST(BuildReport, NeverIdleWhileAwakeKeepsTheModelAndSaysSo) {
  LedgerData d = sample_day();
  d.usage = {main_usage()[1]};  // busy only
  const InstanceReport main = find(build_report(d, kSince, kUntil, sample_config()), "main");
  EXPECT_FALSE(main.measured.available);
  EXPECT_EQ(main.basis, "model");
  EXPECT_EQ(main.saved_energy_kwh, main.savings.energy_kwh);
  EXPECT_THAT(main.measured.note, ::testing::StartsWith("never idle while awake"));
  EXPECT_THAT(main.measured.note, HasSubstr("10.0 min measured busy"));
  EXPECT_EQ(main.measured.savings.energy_kwh, 0);
}

TEST(BuildReport, WhatCannotBeMeasuredSaysWhy) {
  auto config = sample_config();
  config[1].second.measure = false;  // blog
  const Report report = build_report(sample_day(), kSince, kUntil, config, {{"main", "a remote database"}});
  EXPECT_EQ(find(report, "main").measured.note, "nothing to measure: a remote database; the model alone is reported");
  EXPECT_THAT(find(report, "blog").measured.note, ::testing::StartsWith("measurement is off"));
  EXPECT_EQ(report.basis, "model");
}

TEST(FormatJson, MeasuredModelAndSavedCarryTheirBasis) {
  const Report report = rich_report();
  const auto doc = boost::json::parse(format_json(report));
  const auto& main = doc.at("instances").at(0).as_object();
  EXPECT_EQ(main.at("basis").as_string(), "measured");
  EXPECT_EQ(main.at("saved").at("basis").as_string(), "measured");
  EXPECT_EQ(main.at("model").at("basis").as_string(), "model");
  EXPECT_EQ(main.at("model").at("energy_saved_kwh").to_number<double>(), main.at("energy_saved_kwh").to_number<double>());
  const auto& m = main.at("measured").as_object();
  EXPECT_EQ(m.at("basis").as_string(), "measured");
  EXPECT_TRUE(m.at("available").as_bool());
  EXPECT_DOUBLE_EQ(m.at("idle_cpu_utilisation").to_number<double>(), 0.0015);
  EXPECT_DOUBLE_EQ(m.at("idle_memory_bytes").to_number<double>(), 40e6);
  EXPECT_EQ(m.at("cpu_source").as_string(), "proc");
  EXPECT_EQ(m.at("memory_source").as_string(), "pss");
  for (const char* f : {"idle_seconds_measured", "busy_cpu_utilisation", "busy_memory_bytes", "busy_seconds_measured",
                        "cpu_seconds_avoided", "memory_gb_hours_freed", "start_cpu_seconds", "watts",
                        "energy_saved_kwh", "carbon_saved_g", "cost_saved"}) {
    expect_number(m, f);
  }
  EXPECT_DOUBLE_EQ(main.at("saved").at("energy_kwh").to_number<double>(), m.at("energy_saved_kwh").to_number<double>());

  // An instance without a measurement: the same fields, null, and the note says why.
  const auto& blog = doc.at("instances").at(1).as_object();
  EXPECT_EQ(blog.at("basis").as_string(), "model");
  EXPECT_FALSE(blog.at("measured").at("available").as_bool());
  EXPECT_TRUE(blog.at("measured").at("idle_cpu_utilisation").is_null());
  EXPECT_TRUE(blog.at("measured").at("energy_saved_kwh").is_null());
  EXPECT_FALSE(blog.at("measured").at("note").as_string().empty());

  const auto& total = doc.at("total").as_object();
  EXPECT_EQ(total.at("basis").as_string(), "mixed");
  EXPECT_EQ(total.at("measured").at("instances").to_number<std::int64_t>(), 1);
  EXPECT_NEAR(total.at("measured").at("cpu_seconds_avoided").to_number<double>(), report.measured_cpu_seconds, 1e-9);
}

TEST(FormatCsv, MeasuredColumnsWithTheirBasis) {
  const auto rows = parse_csv(format_csv(rich_report()));
  const auto& header = rows.front();
  auto column = [&header](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name;
    return static_cast<std::size_t>(it - header.begin());
  };
  EXPECT_EQ(rows[1][column("measured_available")], "true");
  EXPECT_EQ(rows[1][column("measured_basis")], "measured");
  EXPECT_EQ(rows[1][column("saved_basis")], "measured");
  EXPECT_EQ(rows[1][column("model_basis")], "model");
  EXPECT_EQ(rows[2][column("measured_available")], "false");
  EXPECT_EQ(rows[2][column("measured_idle_cpu_utilisation")], "");
  EXPECT_EQ(rows.back()[column("basis")], "mixed");
  EXPECT_NE(rows.back()[column("measured_cpu_seconds_avoided")], "");
}

TEST(FormatTable, PhysicalQuantitiesFirstThenEachFiguresBasis) {
  const std::string text = format_table(rich_report());
  const auto section = text.find("What sleeping avoided");
  ASSERT_NE(section, std::string::npos);
  const std::string rest = text.substr(section);
  EXPECT_THAT(rest, HasSubstr("0.15% of a vCPU"));
  EXPECT_THAT(rest, HasSubstr("40.0 MB"));
  EXPECT_THAT(rest, HasSubstr("CPU-s avoided"));
  EXPECT_THAT(rest, HasSubstr("GB-h freed"));
  EXPECT_THAT(rest, HasSubstr("measured over 60.0 min idle-awake"));
  EXPECT_THAT(rest, HasSubstr("model"));
  EXPECT_THAT(text, HasSubstr("kWh (model)"));
}

TEST(FormatHtml, ShowsTheBasisAndMemoryFreedAsCapacity) {
  const Report report = rich_report();
  const std::string html = format_html(report);
  EXPECT_EQ(xml_problem(html), "");
  EXPECT_THAT(html, HasSubstr("GB-h"));
  EXPECT_THAT(html, HasSubstr("energy saved (basis: mixed)"));
  EXPECT_THAT(html, HasSubstr("Basis: measured. While asleep, 40.0 MB of memory"));
  EXPECT_THAT(html, HasSubstr("room for another site"));
  EXPECT_THAT(html, HasSubstr("Basis: model. Nothing measured"));
  EXPECT_THAT(html, HasSubstr("Energy saved (measured)"));
  EXPECT_THAT(html, HasSubstr("Energy saved (model)"));
}

}  // namespace
}  // namespace pgnap::accounting
