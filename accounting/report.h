// `pgnap report`: the ledger's intervals, wakes and maintenance runs over a window, turned
// into hours, wakes (by cause, and who woke it), energy, carbon and money per instance and in
// total, and rendered as a terminal table,
// JSON (stable field names, docs/accounting.md), CSV, or one self-contained HTML page with a
// timeline per instance. Pure: no I/O here (the CLI reads the ledger and writes the text).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "accounting/ledger.h"
#include "accounting/savings.h"

namespace pgnap::accounting {

// How many client wakes one application_name (or one address) caused.
struct WakeSource {
  std::string name;  // application_name as sent ("" when none); an address without its port, or "unix"
  std::uint64_t wakes = 0;
};

// At most this many application_names and addresses per instance.
inline constexpr std::size_t kTopWakeSources = 5;

// The address a wake's client came from, without its port: "10.0.0.5:50312" → "10.0.0.5",
// "[::1]:50312" → "::1"; "unix" stays; "" (a wake recorded before schema version 5) too.
[[nodiscard]] std::string address_without_port(const std::string& address);

// The measured basis of one instance (docs/accounting.md, "Measured"): what its own processes
// used while awake over the 30 days up to the report's end (or its window, when longer),
// and what sleeping avoided at those rates over the window's hours asleep.
struct MeasuredReport {
  bool available = false;  // an idle-awake rate was measured: the measured figures hold
  // What they rest on ("measured over 2.1 h idle-awake, 754 readings, /proc, PSS"), or why
  // the model alone is reported ("nothing measured: ...", "never idle while awake: ...").
  std::string note;
  UsageTotals idle;  // summed over the usage rows
  UsageTotals busy;
  std::string cpu_source;     // of the latest row: proc | cgroup ("" when none)
  std::string memory_source;  // pss | rss | cgroup ("" when none)
  MeasuredRates rates;        // from `idle`
  MeasuredSavings savings;    // zero unless available
};

struct InstanceReport {
  std::string name;
  Accounting accounting;
  Activity activity;
  double hours_failed = 0;         // down after a failed wake: neither asleep nor awake
  double share_asleep = 0;         // hours_asleep / (hours_asleep + hours_awake), 0 if none
  std::uint64_t wakes = 0;         // wakes requested in the window (each row is a finished wake)
  std::uint64_t wakes_failed = 0;  // outcome other than ok (failed, timeout)
  double wake_p50_s = 0;           // of successful wakes, nearest rank; 0 if none
  double wake_p95_s = 0;
  std::uint64_t clients_waited = 0;
  double wakes_per_day = 0;  // wakes / the window's length in days
  // Wakes by cause; a cause this pgnap does not know (a newer one's ledger) is in none.
  std::uint64_t wakes_client = 0;
  std::uint64_t wakes_manual = 0;
  std::uint64_t wakes_window = 0;
  std::uint64_t wakes_maintenance = 0;
  // Who woke it: among ALL client-caused wakes (whether they ran the start command or found
  // the server up), the kTopWakeSources commonest application_names and addresses, by count
  // then name; the rest of the client wakes are counted in *_others.
  std::vector<WakeSource> top_applications;
  std::uint64_t other_applications_wakes = 0;
  std::vector<WakeSource> top_addresses;
  std::uint64_t other_addresses_wakes = 0;
  // Maintenance commands that started in the window.
  std::uint64_t maintenance_runs = 0;
  std::uint64_t maintenance_failed = 0;  // outcome other than ok
  std::optional<MaintenanceRow> last_maintenance;
  Savings savings;  // the model's figures (basis "model")
  MeasuredReport measured;
  // The basis of the headline figures below: "measured" when available, else "model".
  std::string basis = "model";
  double saved_energy_kwh = 0;
  double saved_carbon_g = 0;
  double saved_cost = 0;
  std::vector<IntervalRow> intervals;            // clipped to the window, by start (for the timeline)
  std::vector<WakeRow> wake_rows;                // requested in the window, by requested_at
  std::vector<MaintenanceRow> maintenance_rows;  // started in the window, by started_at
};

struct Report {
  UnixTime since = 0;
  UnixTime until = 0;
  std::vector<InstanceReport> instances;  // in configuration order
  // Totals: sums across instances. Energy and carbon sum; money is summed per currency
  // (every instance's currency appears, even at 0).
  double hours_asleep = 0;
  double hours_awake = 0;
  double hours_failed = 0;
  double share_asleep = 0;  // of the summed hours, as per instance
  std::uint64_t wakes = 0;
  std::uint64_t wakes_failed = 0;
  double wake_p50_s = 0;  // over every instance's successful wakes
  double wake_p95_s = 0;
  std::uint64_t clients_waited = 0;
  double wakes_per_day = 0;
  std::uint64_t wakes_client = 0;
  std::uint64_t wakes_manual = 0;
  std::uint64_t wakes_window = 0;
  std::uint64_t wakes_maintenance = 0;
  std::uint64_t maintenance_runs = 0;
  std::uint64_t maintenance_failed = 0;
  std::uint64_t starts = 0;
  double start_seconds = 0;
  double energy_kwh = 0;
  double carbon_g = 0;
  double embodied_g = 0;
  std::map<std::string, double> cost_by_currency;
  // The measured basis, over the instances that have it; the headline figures of every
  // instance summed, and their basis ("measured", "model", or "mixed").
  std::size_t instances_measured = 0;
  double measured_cpu_seconds = 0;
  double measured_memory_gb_hours = 0;
  double measured_energy_kwh = 0;
  double measured_carbon_g = 0;
  std::string basis = "model";
  double saved_energy_kwh = 0;
  double saved_carbon_g = 0;
};

// `instances`: name → coefficients, in configuration order; instances in the ledger but no
// longer configured are reported with default coefficients. `not_measurable`: instances
// whose processes pgnap cannot read (a remote or cloud database), with why, for the
// measured basis's note (config::measure_unavailable).
[[nodiscard]] Report build_report(const LedgerData& data, UnixTime since, UnixTime until,
                                  const std::vector<std::pair<std::string, Accounting>>& instances,
                                  const std::map<std::string, std::string>& not_measurable = {});

// The measured basis of `r` from the usage rows of its instance (accounting/report_measured.cpp).
void add_measured(InstanceReport& r, const std::vector<const UsageRow*>& rows, const std::string& not_measurable);

// "0.21% of a vCPU", "38.2 MB": the measured rates for people.
[[nodiscard]] std::string utilisation_text(double vcpus);
[[nodiscard]] std::string bytes_text(double bytes);

[[nodiscard]] std::string format_table(const Report& report);
[[nodiscard]] std::string format_json(const Report& report);
[[nodiscard]] std::string format_csv(const Report& report);
[[nodiscard]] std::string format_html(const Report& report);

// "--since/--until" values: an ISO date ("2026-11-01", midnight), date and time
// ("2026-11-01T08:00", "2026-11-01T08:00:00", either with a trailing "Z", and a space allowed
// instead of "T"), all UTC; or a whole number and one unit back from `now` ("90s", "30m",
// "12h", "7d", "2w"). nullopt when unparseable or out of range.
[[nodiscard]] std::optional<UnixTime> parse_report_time(const std::string& text, UnixTime now);

}  // namespace pgnap::accounting
