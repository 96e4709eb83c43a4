// The two ways pgnap writes a duration (config/duration.h): the configuration's exact syntax,
// and the rounded figure a person reads in a log line or a report.
#include "config/duration.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <system_error>

namespace pgnap::config {
namespace {

struct DurationUnit {
  std::string_view suffix;
  std::int64_t millis;
};
// Largest first: format_duration picks the first that divides exactly.
constexpr DurationUnit kDurationUnits[] = {
    {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1},
};

// `value` with `decimals` digits after the point, as std::to_chars rounds it.
std::string fixed(double value, int decimals) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, decimals);
  // Only a value of more than 60 digits fails: no duration a person reads.
  if (ec != std::errc{}) return std::to_string(value);
  return std::string(buffer, end);
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::int64_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, count);
  if (ec != std::errc{}) return std::nullopt;  // out of range
  std::string_view suffix = text.substr(digits);
  for (const DurationUnit& unit : kDurationUnits) {
    if (suffix != unit.suffix) continue;
    if (count > std::numeric_limits<Duration::rep>::max() / unit.millis) return std::nullopt;
    return Duration(count * unit.millis);
  }
  return std::nullopt;
}

std::string format_duration(Duration d) {
  std::int64_t millis = d.count();
  if (millis == 0) return "0s";
  std::string sign = millis < 0 ? "-" : "";
  // Magnitude as unsigned, so the most negative value does not overflow.
  std::uint64_t magnitude = millis < 0 ? 0 - static_cast<std::uint64_t>(millis) : static_cast<std::uint64_t>(millis);
  for (const DurationUnit& unit : kDurationUnits) {
    auto size = static_cast<std::uint64_t>(unit.millis);
    if (magnitude % size == 0) return sign + std::to_string(magnitude / size) + std::string(unit.suffix);
  }
  return sign + std::to_string(magnitude) + "ms";  // unreachable: ms divides everything
}

std::string format_elapsed(std::chrono::duration<double> d) {
  const double seconds = d.count();
  // A deadline already past is no time left; NaN, which compares false, reads the same.
  if (!(seconds > 0)) return "0 ms";
  // The unit follows the exact value, the figure is rounded: 59.97 s reads "60.0 s".
  if (seconds < 1) return std::to_string(std::llround(seconds * 1000)) + " ms";
  if (seconds < 60) return fixed(seconds, 1) + " s";
  if (seconds < 3600) return fixed(seconds / 60, 1) + " min";
  if (seconds < 2 * 86400) return fixed(seconds / 3600, 2) + " h";
  return fixed(seconds / 86400, 1) + " days";
}

}  // namespace pgnap::config
