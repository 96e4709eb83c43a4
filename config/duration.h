// Durations, written for two readers. The configuration's syntax ("250ms", "30s", "10m")
// is exact and parses back to the same value, so `pgnap check` can print what the file
// means. Logs and reports say how long something took or lasted ("12.3 s", "4.5 min"), to
// the precision a person reads. One home for both, so no file grows a formatter of its own.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgnap::config {

using Duration = std::chrono::milliseconds;

// Parses "250ms", "30s", "10m", "2h", "1d" (an integer followed by one unit). Returns nullopt
// on anything else (no unit, negative, fractional, overflow).
[[nodiscard]] std::optional<Duration> parse_duration(std::string_view text);
// Formats a duration with the largest unit that divides it exactly: "250ms", "30s", "10m".
[[nodiscard]] std::string format_duration(Duration d);

// How long something took or lasted, for people reading logs and reports: "250 ms" (below a
// second, rounded to the millisecond), "12.3 s" (below a minute), "4.5 min" (below an hour),
// "2.05 h" (below two days), else "2.5 days". A negative duration (a deadline already
// past) reads "0 ms". The one formatter for logs, the report and the client's messages.
[[nodiscard]] std::string format_elapsed(std::chrono::duration<double> d);

}  // namespace pgnap::config
