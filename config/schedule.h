// Wall-clock schedules for [instances.NAME.wake] awake_during and [instances.NAME.maintenance]
// at: weekly keep-warm windows ("Mon-Fri 08:00-18:00") and times of day ("03:00"), read in an
// IANA time zone from the system's tzdata (/usr/share/zoneinfo, or $TZDIR).
//
// Everything here is local wall-clock time, as a person reads the schedule. A DST change inside
// a window moves its end, not its length in wall-clock terms: "Sun 01:00-04:00" on the spring-
// forward day in Berlin lasts two hours, on the fall-back day four. A local time the change skips
// (02:30 on 2026-03-29 in Berlin) means the moment of the change (03:00 CEST); a local time that
// occurs twice (02:30 on 2026-10-25) means its first occurrence. (These are Abseil's FromCivil
// rules, absl/time/time.h.)
//
// Pure functions of their arguments but for TimeZone::load, which reads a zone file once (Abseil
// caches zones for the life of the process). Abseil stays behind this header: users include
// nothing of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgnap::config {

// One entry of awake_during: the days it starts on and its local start and end time.
struct WeeklyWindow {
  std::uint8_t days = 0;  // bit 0 = Monday ... bit 6 = Sunday: the days the window starts on
  int start_minute = 0;   // minutes since local midnight, [0, 1440)
  int end_minute = 0;     // (0, 1440]; end <= start: the window ends the next day at end_minute
  std::string text;       // as written, for logs and `pgnap check`
  bool operator==(const WeeklyWindow&) const = default;
};

// Parses "DAYS HH:MM-HH:MM". DAYS is "daily", or a comma-separated list of days and day ranges
// ("Mon-Fri", "Sat,Sun", "Fri-Mon" wraps over the weekend); day names are the three-letter
// English ones, in any case. Times are "HH:MM" (00:00 to 23:59; "24:00" as an end). An end before
// the start crosses midnight ("Mon 22:00-02:00" ends on Tuesday); an end equal to the start is an
// error (a whole day is "00:00-24:00"). On error returns nullopt and, when `error` is not null,
// sets it to what was expected.
[[nodiscard]] std::optional<WeeklyWindow> parse_window(std::string_view text, std::string* error);

// Parses each of `texts` (awake_during, already checked by the loader); one that does not
// parse is left out.
[[nodiscard]] std::vector<WeeklyWindow> parse_windows(const std::vector<std::string>& texts);

// "HH:MM" (00:00 to 23:59) in minutes since midnight; nullopt (and `error`) otherwise.
[[nodiscard]] std::optional<int> parse_time_of_day(std::string_view hhmm, std::string* error);

// "03:00": minutes since midnight as HH:MM ("24:00" for 1440).
[[nodiscard]] std::string format_time_of_day(int minute_of_day);

// An IANA time zone ("Europe/Berlin", "UTC"). Cheap to copy.
class TimeZone {
 public:
  // Loads `name` from the system's tzdata. Only IANA names: no absolute paths, no "..", no
  // "localtime" (the configuration must mean the same on every host). On failure returns
  // nullopt and sets `error` (when not null) to
  // `unknown time zone "Europe/Berln" (IANA names, from /usr/share/zoneinfo)`.
  [[nodiscard]] static std::optional<TimeZone> load(const std::string& name, std::string* error);
  // UTC, which needs no file.
  [[nodiscard]] static TimeZone utc();

  [[nodiscard]] const std::string& name() const;

  struct Impl;  // Abseil's time zone (config/schedule.cpp)

 private:
  friend struct TimeZoneAccess;  // config/schedule.cpp reads impl_
  explicit TimeZone(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// A window's occurrence in absolute time: [start, end).
struct Span {
  std::chrono::system_clock::time_point start;
  std::chrono::system_clock::time_point end;
  // The window whose occurrence ends last (of those merged into this span); points into the
  // vector passed to current_or_next_window.
  const WeeklyWindow* window = nullptr;
};

// The span of keep-warm time containing `now` (start <= now < end), else the next one to start;
// nullopt when there are no windows. Occurrences that overlap or touch are merged into one span
// ("Mon-Fri 08:00-12:00" and "Mon-Fri 12:00-18:00" are one span, 08:00 to 18:00). Occurrences
// are looked at from a week before `now` to eight days after it: a merged span reaches no
// further back or forward than that (a set of windows that covers the whole week ends eight days
// ahead; ask again then). Exactly at a span's end, the span is over.
[[nodiscard]] std::optional<Span> current_or_next_window(const std::vector<WeeklyWindow>& windows, const TimeZone& zone,
                                                         std::chrono::system_clock::time_point now);

// The first moment at or after `after` whose local time in `zone` is `minute_of_day` (minutes
// since midnight, [0, 1440)). On a DST-change day a skipped time means the moment of the change
// and a repeated one its first occurrence (see the top of this file).
[[nodiscard]] std::chrono::system_clock::time_point next_time_of_day(int minute_of_day, const TimeZone& zone,
                                                                     std::chrono::system_clock::time_point after);

// "2026-12-05 08:00:00 CET": a moment in local time with the zone's abbreviation, for `pgnap
// check`, `pgnap status` and the log.
[[nodiscard]] std::string format_local(std::chrono::system_clock::time_point when, const TimeZone& zone);

}  // namespace pgnap::config
