// build_report: the ledger's rows over a window → per-instance hours, wakes and savings.
// parse_report_time: the CLI's --since/--until values.
#include "accounting/report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <set>
#include <string_view>

namespace pgnap::accounting {

namespace {

// Nearest-rank percentile of a sorted, non-empty sample: the smallest value with at least
// p% of the sample at or below it (no interpolation, so it is always a measured duration).
double nearest_rank(const std::vector<double>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void set_percentiles(std::vector<double> durations, double& p50, double& p95) {
  if (durations.empty()) {
    p50 = p95 = 0;
    return;
  }
  std::sort(durations.begin(), durations.end());
  p50 = nearest_rank(durations, 50);
  p95 = nearest_rank(durations, 95);
}

double share(double asleep, double awake) {
  const double total = asleep + awake;
  return total > 0 ? asleep / total : 0;
}

bool in_window(UnixTime t, UnixTime since, UnixTime until) { return t >= since && t < until; }

// The `limit` commonest keys, by count then key; the rest summed into `others`.
std::vector<WakeSource> top(const std::map<std::string, std::uint64_t>& counts, std::size_t limit,
                            std::uint64_t& others) {
  std::vector<WakeSource> all;
  for (const auto& [name, n] : counts) all.push_back({name, n});
  std::stable_sort(all.begin(), all.end(), [](const WakeSource& a, const WakeSource& b) { return a.wakes > b.wakes; });
  others = 0;
  for (std::size_t i = limit; i < all.size(); ++i) others += all[i].wakes;
  if (all.size() > limit) all.resize(limit);
  return all;
}

// Wakes by cause, and who caused the client ones.
void summarise_causes(InstanceReport& r) {
  std::map<std::string, std::uint64_t> applications, addresses;
  for (const WakeRow& w : r.wake_rows) {
    if (w.cause == "client") {
      ++r.wakes_client;
      ++applications[w.application_name];
      ++addresses[address_without_port(w.client_address)];
    } else if (w.cause == "manual") {
      ++r.wakes_manual;
    } else if (w.cause == "window") {
      ++r.wakes_window;
    } else if (w.cause == "maintenance") {
      ++r.wakes_maintenance;
    }
  }
  r.top_applications = top(applications, kTopWakeSources, r.other_applications_wakes);
  r.top_addresses = top(addresses, kTopWakeSources, r.other_addresses_wakes);
}

// Fills one instance's figures from its (already clipped and filtered) rows.
void summarise(InstanceReport& r, std::vector<double>& ok_durations) {
  for (const IntervalRow& iv : r.intervals) {
    const double hours = (iv.end - iv.start) / 3600.0;
    if (iv.state == "asleep") {
      r.activity.hours_asleep += hours;
    } else if (iv.state == "waking" || iv.state == "awake" || iv.state == "suspending") {
      r.activity.hours_awake += hours;
    } else if (iv.state == "failed") {
      r.hours_failed += hours;
    }
    // Any other state (a newer pgnap's ledger) is shown on the timeline but not counted.
  }
  std::vector<double> mine;
  for (const WakeRow& w : r.wake_rows) {
    ++r.wakes;
    if (w.outcome == "ok") {
      mine.push_back(w.duration_s);
    } else {
      ++r.wakes_failed;
    }
    r.clients_waited += w.clients_waited;
    // A wake that found the server already up ran no start: it cost nothing extra.
    if (w.started) {
      ++r.activity.starts;
      r.activity.start_seconds += w.duration_s;
    }
  }
  ok_durations.insert(ok_durations.end(), mine.begin(), mine.end());
  summarise_causes(r);
  for (const MaintenanceRow& m : r.maintenance_rows) {
    ++r.maintenance_runs;
    if (m.outcome != "ok") ++r.maintenance_failed;
    r.last_maintenance = m;  // rows are by started_at
  }
  set_percentiles(std::move(mine), r.wake_p50_s, r.wake_p95_s);
  r.share_asleep = share(r.activity.hours_asleep, r.activity.hours_awake);
  r.savings = savings(r.accounting, r.activity);
}

}  // namespace

std::string address_without_port(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  const auto colon = address.find(':');
  // One colon: IPv4 and its port. None ("unix"), or several (a bare IPv6): as it is.
  if (colon != std::string::npos && address.find(':', colon + 1) == std::string::npos) {
    return address.substr(0, colon);
  }
  return address;
}

Report build_report(const LedgerData& data, UnixTime since, UnixTime until,
                    const std::vector<std::pair<std::string, Accounting>>& instances,
                    const std::map<std::string, std::string>& not_measurable) {
  Report report;
  report.since = since;
  report.until = std::max(since, until);

  // Configured instances first, in their order; then those only the ledger knows, by name.
  std::set<std::string> configured;
  for (const auto& [name, accounting] : instances) {
    if (!configured.insert(name).second) continue;  // a name listed twice is reported once
    InstanceReport r;
    r.name = name;
    r.accounting = accounting;
    report.instances.push_back(std::move(r));
  }
  std::set<std::string> unknown;
  for (const IntervalRow& iv : data.intervals) {
    if (!configured.contains(iv.instance)) unknown.insert(iv.instance);
  }
  for (const WakeRow& w : data.wakes) {
    if (!configured.contains(w.instance)) unknown.insert(w.instance);
  }
  for (const MaintenanceRow& m : data.maintenance) {
    if (!configured.contains(m.instance)) unknown.insert(m.instance);
  }
  std::map<std::string, std::vector<const UsageRow*>> usage;
  for (const UsageRow& u : data.usage) usage[u.instance].push_back(&u);
  for (const std::string& name : unknown) {
    InstanceReport r;
    r.name = name;  // default coefficients: the instance is no longer configured
    report.instances.push_back(std::move(r));
  }

  auto find = [&report](const std::string& name) -> InstanceReport& {
    return *std::find_if(report.instances.begin(), report.instances.end(),
                         [&name](const InstanceReport& r) { return r.name == name; });
  };

  // Clip every interval to [since, until): a sleep that began before the window counts
  // only from `since`, an open one only up to its last heartbeat (its stored end).
  for (const IntervalRow& iv : data.intervals) {
    IntervalRow clipped = iv;
    clipped.start = std::max(iv.start, report.since);
    clipped.end = std::min(iv.end, report.until);
    if (!(clipped.end > clipped.start)) continue;
    find(iv.instance).intervals.push_back(std::move(clipped));
  }
  for (const WakeRow& w : data.wakes) {
    if (in_window(w.requested_at, report.since, report.until)) {
      find(w.instance).wake_rows.push_back(w);
    }
  }
  for (const MaintenanceRow& m : data.maintenance) {
    if (in_window(m.started_at, report.since, report.until)) {
      find(m.instance).maintenance_rows.push_back(m);
    }
  }
  const double days = (report.until - report.since) / 86400.0;
  auto per_day = [days](std::uint64_t n) { return days > 0 ? static_cast<double>(n) / days : 0.0; };

  std::vector<double> ok_durations;
  for (InstanceReport& r : report.instances) {
    std::stable_sort(r.intervals.begin(), r.intervals.end(),
                     [](const IntervalRow& a, const IntervalRow& b) { return a.start < b.start; });
    std::stable_sort(r.wake_rows.begin(), r.wake_rows.end(),
                     [](const WakeRow& a, const WakeRow& b) { return a.requested_at < b.requested_at; });
    std::stable_sort(r.maintenance_rows.begin(), r.maintenance_rows.end(),
                     [](const MaintenanceRow& a, const MaintenanceRow& b) { return a.started_at < b.started_at; });
    summarise(r, ok_durations);
    r.wakes_per_day = per_day(r.wakes);
    const auto why = not_measurable.find(r.name);
    add_measured(r, usage[r.name], why == not_measurable.end() ? std::string() : why->second);
    if (r.measured.available) {
      ++report.instances_measured;
      report.measured_cpu_seconds += r.measured.savings.cpu_seconds;
      report.measured_memory_gb_hours += r.measured.savings.memory_gb_hours;
      report.measured_energy_kwh += r.measured.savings.energy_kwh;
      report.measured_carbon_g += r.measured.savings.carbon_g;
    }
    report.saved_energy_kwh += r.saved_energy_kwh;
    report.saved_carbon_g += r.saved_carbon_g;

    report.hours_asleep += r.activity.hours_asleep;
    report.hours_awake += r.activity.hours_awake;
    report.hours_failed += r.hours_failed;
    report.wakes += r.wakes;
    report.wakes_failed += r.wakes_failed;
    report.clients_waited += r.clients_waited;
    report.wakes_client += r.wakes_client;
    report.wakes_manual += r.wakes_manual;
    report.wakes_window += r.wakes_window;
    report.wakes_maintenance += r.wakes_maintenance;
    report.maintenance_runs += r.maintenance_runs;
    report.maintenance_failed += r.maintenance_failed;
    report.starts += r.activity.starts;
    report.start_seconds += r.activity.start_seconds;
    report.energy_kwh += r.savings.energy_kwh;
    report.carbon_g += r.savings.carbon_g;
    report.embodied_g += r.savings.embodied_g;
    report.cost_by_currency[r.accounting.currency] += r.savings.cost;
  }
  report.basis = report.instances_measured == 0                        ? "model"
                 : report.instances_measured == report.instances.size() ? "measured"
                                                                        : "mixed";
  report.share_asleep = share(report.hours_asleep, report.hours_awake);
  report.wakes_per_day = per_day(report.wakes);
  set_percentiles(std::move(ok_durations), report.wake_p50_s, report.wake_p95_s);
  return report;
}

// ---- parse_report_time ----

namespace {

// Reads exactly `digits` decimal digits at `pos`; advances it.
std::optional<int> fixed_digits(std::string_view s, std::size_t& pos, std::size_t digits) {
  if (pos + digits > s.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += digits;
  return value;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : kDays[m - 1];
}

std::optional<UnixTime> parse_date_time(std::string_view s) {
  std::size_t pos = 0;
  const auto year = fixed_digits(s, pos, 4);
  if (!year || !expect(s, pos, '-')) return std::nullopt;
  const auto month = fixed_digits(s, pos, 2);
  if (!month || !expect(s, pos, '-')) return std::nullopt;
  const auto day = fixed_digits(s, pos, 2);
  if (!day) return std::nullopt;
  if (*year < 1970 || *month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month)) {
    return std::nullopt;
  }

  int hour = 0, minute = 0, second = 0;
  if (pos < s.size()) {
    if (!expect(s, pos, 'T') && !expect(s, pos, ' ')) return std::nullopt;
    const auto h = fixed_digits(s, pos, 2);
    if (!h || !expect(s, pos, ':')) return std::nullopt;
    const auto m = fixed_digits(s, pos, 2);
    if (!m) return std::nullopt;
    hour = *h;
    minute = *m;
    if (expect(s, pos, ':')) {
      const auto sec = fixed_digits(s, pos, 2);
      if (!sec) return std::nullopt;
      second = *sec;
    }
    expect(s, pos, 'Z');  // UTC either way; "Z" only says so
    if (pos != s.size() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  }

  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t t = timegm(&tm);  // UTC, independent of TZ and locale
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return static_cast<UnixTime>(t);
}

std::optional<UnixTime> parse_duration_back(std::string_view s, UnixTime now) {
  if (s.size() < 2) return std::nullopt;
  const std::string_view digits = s.substr(0, s.size() - 1);
  // Ten digits of weeks is already far beyond any ledger; it also keeps the product exact.
  if (digits.size() > 10) return std::nullopt;
  double amount = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    amount = amount * 10 + (c - '0');
  }
  double unit = 0;
  switch (s.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return std::nullopt;
  }
  const UnixTime t = now - amount * unit;
  if (t < 0) return std::nullopt;  // before the epoch: no ledger goes back that far
  return t;
}

}  // namespace

std::optional<UnixTime> parse_report_time(const std::string& text, UnixTime now) {
  std::string_view s = text;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  // A date always has a '-' in the fifth place; a duration never has one.
  if (s.size() >= 5 && s[4] == '-') return parse_date_time(s);
  return parse_duration_back(s, now);
}

}  // namespace pgnap::accounting
