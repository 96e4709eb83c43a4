// Keep-warm windows and times of day in a time zone (config/schedule.h), on Abseil's civil time:
// a window's occurrence is a pair of local civil times, turned into absolute time by the zone's
// rules for that very day, so DST changes move it as a wall clock would.
#include "config/schedule.h"

#include <absl/time/civil_time.h>
#include <absl/time/time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/keys.h"

namespace pgnap::config {

struct TimeZone::Impl {
  std::string name;
  absl::TimeZone zone;
};

struct TimeZoneAccess {
  static const absl::TimeZone& zone(const TimeZone& tz) { return tz.impl_->zone; }
  static TimeZone make(std::string name, absl::TimeZone zone) {
    return TimeZone(std::make_shared<const TimeZone::Impl>(TimeZone::Impl{std::move(name), zone}));
  }
};

namespace {

constexpr int kMinutesPerDay = 24 * 60;
constexpr std::array<std::string_view, 7> kDayNames{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr std::string_view kWindowForm = R"(expected a window "DAYS HH:MM-HH:MM" (e.g. "Mon-Fri 08:00-18:00", )"
                                         R"("Sat,Sun 10:00-14:00", "daily 07:00-09:00"), got )";

void set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

// "HH:MM" with two digits each; 24:00 only when `allow_24`.
std::optional<int> read_hhmm(std::string_view s, bool allow_24) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (std::size_t i : {0u, 1u, 3u, 4u}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  const int hours = (s[0] - '0') * 10 + (s[1] - '0');
  const int minutes = (s[3] - '0') * 10 + (s[4] - '0');
  if (minutes > 59) return std::nullopt;
  if (hours == 24 && minutes == 0 && allow_24) return kMinutesPerDay;
  if (hours > 23) return std::nullopt;
  return hours * 60 + minutes;
}

// 0 = Monday ... 6 = Sunday; nullopt for anything but a three-letter day name.
std::optional<int> read_day(std::string_view s) {
  if (s.size() != 3) return std::nullopt;
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::size_t i = 0; i < kDayNames.size(); ++i) {
    if (kDayNames[i] == lower) return static_cast<int>(i);
  }
  return std::nullopt;
}

// "daily", or days and day ranges separated by commas, as a bit set (bit 0 = Monday).
std::optional<std::uint8_t> read_days(std::string_view s, std::string_view whole, std::string* error) {
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "daily") return std::uint8_t{0x7f};
  std::uint8_t days = 0;
  while (true) {
    const std::size_t comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    const std::size_t dash = item.find('-');
    const std::optional<int> from = read_day(item.substr(0, dash));
    const std::optional<int> to = dash == std::string_view::npos ? from : read_day(item.substr(dash + 1));
    if (!from || !to) {
      set_error(error, "unknown day or day range " + detail::quote(item) + " in " + detail::quote(whole) +
                           ": days are Mon, Tue, Wed, Thu, Fri, Sat, Sun (\"Mon-Fri\", \"Sat,Sun\"), or \"daily\"");
      return std::nullopt;
    }
    // A range runs forward through the week and may wrap: "Fri-Mon" is Fri, Sat, Sun, Mon.
    for (int day = *from;; day = (day + 1) % 7) {
      days |= static_cast<std::uint8_t>(1u << day);
      if (day == *to) break;
    }
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return days;
}

absl::Time to_absl(std::chrono::system_clock::time_point t) { return absl::FromChrono(t); }
std::chrono::system_clock::time_point from_absl(absl::Time t) { return absl::ToChronoTime(t); }

}  // namespace

std::optional<WeeklyWindow> parse_window(std::string_view text, std::string* error) {
  const std::string_view body = trim(text);
  const std::size_t space = body.find_first_of(" \t");
  if (space == std::string_view::npos) {
    set_error(error, std::string(kWindowForm) + detail::quote(text));
    return std::nullopt;
  }
  const std::string_view days_text = body.substr(0, space);
  const std::string_view times = trim(body.substr(space));
  const std::size_t dash = times.find('-');
  if (dash == std::string_view::npos || times.find_first_of(" \t") != std::string_view::npos) {
    set_error(error, std::string(kWindowForm) + detail::quote(text));
    return std::nullopt;
  }
  std::optional<std::uint8_t> days = read_days(days_text, text, error);
  if (!days) return std::nullopt;
  const std::string_view start_text = times.substr(0, dash);
  const std::string_view end_text = times.substr(dash + 1);
  const std::optional<int> start = read_hhmm(start_text, false);
  const std::optional<int> end = read_hhmm(end_text, true);
  if (!start || !end) {
    set_error(error, "expected times HH:MM (00:00 to 23:59; 24:00 as an end), got " +
                         detail::quote(!start ? start_text : end_text) + " in " + detail::quote(text));
    return std::nullopt;
  }
  if (*start == *end) {
    set_error(error, "the window " + detail::quote(text) + " ends when it starts; a whole day is \"00:00-24:00\"");
    return std::nullopt;
  }
  return WeeklyWindow{*days, *start, *end, std::string(text)};
}

std::vector<WeeklyWindow> parse_windows(const std::vector<std::string>& texts) {
  std::vector<WeeklyWindow> windows;
  for (const std::string& text : texts) {
    if (std::optional<WeeklyWindow> window = parse_window(text, nullptr)) windows.push_back(std::move(*window));
  }
  return windows;
}

std::optional<int> parse_time_of_day(std::string_view hhmm, std::string* error) {
  std::optional<int> minutes = read_hhmm(hhmm, false);
  if (!minutes) set_error(error, "expected a time of day \"HH:MM\" (00:00 to 23:59), got " + detail::quote(hhmm));
  return minutes;
}

std::string format_time_of_day(int minute_of_day) {
  const int hours = minute_of_day / 60;
  const int minutes = minute_of_day % 60;
  std::string out;
  out += static_cast<char>('0' + hours / 10);
  out += static_cast<char>('0' + hours % 10);
  out += ':';
  out += static_cast<char>('0' + minutes / 10);
  out += static_cast<char>('0' + minutes % 10);
  return out;
}

std::optional<TimeZone> TimeZone::load(const std::string& name, std::string* error) {
  // Abseil would also read an absolute path, "../x" relative to the zone directory, and
  // "localtime" (this host's zone): none of them means the same on every host.
  const bool iana_form = !name.empty() && name.front() != '/' && name != "localtime" &&
                         std::all_of(name.begin(), name.end(), [](char c) {
                           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '/' || c == '_' ||
                                  c == '-' || c == '+';
                         });
  absl::TimeZone zone;
  if (!iana_form || !absl::LoadTimeZone(name, &zone)) {
    set_error(error, "unknown time zone " + detail::quote(name) + " (IANA names, from /usr/share/zoneinfo)");
    return std::nullopt;
  }
  return TimeZoneAccess::make(name, zone);
}

TimeZone TimeZone::utc() { return TimeZoneAccess::make("UTC", absl::UTCTimeZone()); }

const std::string& TimeZone::name() const { return impl_->name; }

std::optional<Span> current_or_next_window(const std::vector<WeeklyWindow>& windows, const TimeZone& zone,
                                           std::chrono::system_clock::time_point now) {
  const absl::TimeZone& tz = TimeZoneAccess::zone(zone);
  const absl::Time at = to_absl(now);
  const absl::CivilDay today = absl::ToCivilDay(at, tz);

  struct Occurrence {
    absl::Time start;
    absl::Time end;
    const WeeklyWindow* window;
  };
  std::vector<Occurrence> occurrences;
  // A week back finds what contains `now` and what it touches; eight days ahead always holds
  // the next start of every window.
  for (absl::CivilDay day = today - 7; day <= today + 8; ++day) {
    const int bit = static_cast<int>(absl::GetWeekday(day));  // Abseil: monday = 0 ... sunday = 6
    for (const WeeklyWindow& window : windows) {
      if ((window.days & (1u << bit)) == 0) continue;
      const absl::CivilDay end_day = window.end_minute <= window.start_minute ? day + 1 : day;
      const absl::Time start = absl::FromCivil(absl::CivilSecond(day) + window.start_minute * 60, tz);
      const absl::Time end = absl::FromCivil(absl::CivilSecond(end_day) + window.end_minute * 60, tz);
      // A window inside the hour a DST change skips has no occurrence that day.
      if (end > start) occurrences.push_back({start, end, &window});
    }
  }
  std::sort(occurrences.begin(), occurrences.end(),
            [](const Occurrence& a, const Occurrence& b) { return a.start < b.start; });

  std::vector<Occurrence> merged;
  for (const Occurrence& o : occurrences) {
    if (!merged.empty() && o.start <= merged.back().end) {
      if (o.end > merged.back().end) {
        merged.back().end = o.end;
        merged.back().window = o.window;
      }
    } else {
      merged.push_back(o);
    }
  }
  for (const Occurrence& m : merged) {
    if (at < m.end) return Span{from_absl(m.start), from_absl(m.end), m.window};
  }
  return std::nullopt;
}

std::chrono::system_clock::time_point next_time_of_day(int minute_of_day, const TimeZone& zone,
                                                       std::chrono::system_clock::time_point after) {
  const absl::TimeZone& tz = TimeZoneAccess::zone(zone);
  const absl::Time at = to_absl(after);
  const absl::CivilDay today = absl::ToCivilDay(at, tz);
  // From the day before: near a DST change, yesterday's local time may still be ahead.
  for (absl::CivilDay day = today - 1;; ++day) {
    const absl::Time t = absl::FromCivil(absl::CivilSecond(day) + minute_of_day * 60, tz);
    if (t >= at) return from_absl(t);
  }
}

std::string format_local(std::chrono::system_clock::time_point when, const TimeZone& zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", to_absl(when), TimeZoneAccess::zone(zone));
}

}  // namespace pgnap::config
