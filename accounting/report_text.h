// Internal to the report formats: numbers, times and escaping, defined in report_text.cpp and
// used by report_format.cpp, report_table.cpp, report_html.cpp and report_measured.cpp. All
// locale-independent (std::to_chars, gmtime_r), so a report reads the same on every machine
// and the JSON/CSV parse everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "accounting/ledger.h"
#include "accounting/report.h"
#include "accounting/savings.h"

namespace pgnap::accounting::report_text {

// `v` with exactly `decimals` decimals ("0.210"); a value that rounds to zero prints without
// a sign. Non-finite values print as "n/a".
[[nodiscard]] std::string fixed(double v, int decimals);
// A number for JSON and CSV: 15 significant digits, no trailing zeros ("0.1", "2",
// "1.872", "8.285e-05"); "null" if not finite.
[[nodiscard]] std::string number(double v);
// "2026-11-01T08:00:00Z" (whole seconds, rounded down).
[[nodiscard]] std::string iso_utc(UnixTime t);
// "2026-11-01 08:00" (minutes, UTC), for people.
[[nodiscard]] std::string human_utc(UnixTime t);
// "473 gCO2e/kWh, Ember, Global Electricity Review 2025 (world average) (2024)"
[[nodiscard]] std::string grid_text(const Accounting& a);
// "12.34 USD"
[[nodiscard]] std::string money(double amount, std::string_view currency);

// Valid UTF-8 with no C0 control characters other than tab, LF and CR: invalid bytes and
// controls become U+FFFD. Ledger strings come from a file anyone with access could edit;
// XML forbids those characters outright and JSON parsers reject invalid UTF-8.
[[nodiscard]] std::string clean_utf8(std::string_view s);
// Text for XML/HTML content and quoted attributes (& < > " ' escaped), cleaned as above.
[[nodiscard]] std::string escape_xml(std::string_view s);
// A JSON string literal, quotes included, cleaned as above.
[[nodiscard]] std::string json_string(std::string_view s);
// Cleaned as above, on one line for a terminal: tab, LF and CR become spaces, C1 controls
// U+FFFD (an application_name is whatever a client sent).
[[nodiscard]] std::string one_line(std::string_view s);

// "96 wakes, 48.0/day"
[[nodiscard]] std::string wakes_per_day_text(std::uint64_t wakes, double per_day);
// A WakeSource's name for people: an empty application_name is "(none)", an empty address
// (a wake recorded before pgnap knew it) "(unknown)".
[[nodiscard]] std::string source_name(const std::string& name, bool application);
// "uptime-monitor 88, (none) 2, others 3"; "-" for none. One line.
[[nodiscard]] std::string sources_text(const std::vector<WakeSource>& sources, std::uint64_t others, bool application);
// "3 runs, 1 failed; last 2026-11-01 03:00 UTC, exit status 0 (ok)"
[[nodiscard]] std::string maintenance_text(const InstanceReport& r);

}  // namespace pgnap::accounting::report_text
