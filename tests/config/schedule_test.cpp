// config/schedule.h: keep-warm windows and times of day, parsed and placed in time zones, DST
// changes included (Berlin 2026-03-29 and 2026-10-25, New York 2026-03-08), from the system's
// tzdata.
#include "config/schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pgnap::config {
namespace {

using namespace std::chrono;
using ::testing::HasSubstr;

// A UTC moment, written as a calendar date and a time of day.
system_clock::time_point utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return sys_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm} + seconds{ss};
}

TimeZone zone(const std::string& name) {
  std::string error;
  std::optional<TimeZone> tz = TimeZone::load(name, &error);
  EXPECT_TRUE(tz.has_value()) << error;
  return tz.value_or(TimeZone::utc());
}

WeeklyWindow window(std::string_view text) {
  std::string error;
  std::optional<WeeklyWindow> w = parse_window(text, &error);
  EXPECT_TRUE(w.has_value()) << text << ": " << error;
  return w.value_or(WeeklyWindow{});
}

std::string error_of_window(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_window(text, &error).has_value()) << text;
  return error;
}

constexpr std::uint8_t kMon = 1, kTue = 2, kWed = 4, kThu = 8, kFri = 16, kSat = 32, kSun = 64;

// ---- Parsing --------------------------------------------------------------------------------

TEST(ScheduleParseTest, WeekdayRangeWithTimes) {
  const WeeklyWindow w = window("Mon-Fri 08:00-18:00");
  EXPECT_EQ(w.days, kMon | kTue | kWed | kThu | kFri);
  EXPECT_EQ(w.start_minute, 8 * 60);
  EXPECT_EQ(w.end_minute, 18 * 60);
  EXPECT_EQ(w.text, "Mon-Fri 08:00-18:00");
}

TEST(ScheduleParseTest, DayListsDailyAndAnyCase) {
  EXPECT_EQ(window("Sat,Sun 10:00-14:00").days, kSat | kSun);
  EXPECT_EQ(window("Mon,Wed-Thu 10:00-14:00").days, kMon | kWed | kThu);
  EXPECT_EQ(window("daily 07:00-09:00").days, 0x7f);
  EXPECT_EQ(window("DAILY 07:00-09:00").days, 0x7f);
  EXPECT_EQ(window("mon-FRI 07:00-09:00").days, kMon | kTue | kWed | kThu | kFri);
  EXPECT_EQ(window("  Tue   07:00-09:00  ").days, kTue) << "blanks around and between the parts";
}

TEST(ScheduleParseTest, DayRangeWrapsOverTheWeekend) {
  EXPECT_EQ(window("Fri-Mon 09:00-17:00").days, kFri | kSat | kSun | kMon);
  EXPECT_EQ(window("Sun-Sun 09:00-17:00").days, kSun);
}

TEST(ScheduleParseTest, EndBeforeStartCrossesMidnightAnd2400IsAnEnd) {
  const WeeklyWindow night = window("Mon 22:00-02:00");
  EXPECT_EQ(night.days, kMon);
  EXPECT_EQ(night.start_minute, 22 * 60);
  EXPECT_EQ(night.end_minute, 2 * 60);
  const WeeklyWindow whole = window("Sat 00:00-24:00");
  EXPECT_EQ(whole.start_minute, 0);
  EXPECT_EQ(whole.end_minute, 24 * 60);
}

TEST(ScheduleParseTest, BadWindowsSayWhatWasExpected) {
  const std::string form =
      R"(expected a window "DAYS HH:MM-HH:MM" (e.g. "Mon-Fri 08:00-18:00", "Sat,Sun 10:00-14:00", )"
      R"("daily 07:00-09:00"), got )";
  EXPECT_EQ(error_of_window("Mon-Fri"), form + "\"Mon-Fri\"");
  EXPECT_EQ(error_of_window(""), form + "\"\"");
  EXPECT_EQ(error_of_window("Mon 08:00 - 10:00"), form + "\"Mon 08:00 - 10:00\"");
  EXPECT_EQ(error_of_window("Mon 08:00"), form + "\"Mon 08:00\"");
  EXPECT_EQ(error_of_window("Mnd 08:00-10:00"),
            "unknown day or day range \"Mnd\" in \"Mnd 08:00-10:00\": days are Mon, Tue, Wed, Thu, Fri, Sat, Sun "
            "(\"Mon-Fri\", \"Sat,Sun\"), or \"daily\"");
  EXPECT_THAT(error_of_window("Monday 08:00-10:00"), HasSubstr("unknown day or day range \"Monday\""));
  EXPECT_THAT(error_of_window("Mon,,Tue 08:00-10:00"), HasSubstr("unknown day or day range \"\""));
  EXPECT_THAT(error_of_window("Mon- 08:00-10:00"), HasSubstr("unknown day or day range \"Mon-\""));
  EXPECT_EQ(error_of_window("Mon 8:00-10:00"),
            "expected times HH:MM (00:00 to 23:59; 24:00 as an end), got \"8:00\" in \"Mon 8:00-10:00\"");
  EXPECT_THAT(error_of_window("Mon 08:00-18:60"), HasSubstr("got \"18:60\""));
  EXPECT_THAT(error_of_window("Mon 24:00-02:00"), HasSubstr("got \"24:00\"")) << "24:00 is only an end";
  EXPECT_THAT(error_of_window("Mon 08:00-24:01"), HasSubstr("got \"24:01\""));
  EXPECT_EQ(error_of_window("Mon 08:00-08:00"),
            "the window \"Mon 08:00-08:00\" ends when it starts; a whole day is \"00:00-24:00\"");
}

TEST(ScheduleParseTest, ParseWindowsKeepsWhatParses) {
  const std::vector<WeeklyWindow> windows = parse_windows({"Mon 08:00-09:00", "nonsense", "Tue 10:00-11:00"});
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(windows[0].days, kMon);
  EXPECT_EQ(windows[1].days, kTue);
}

TEST(ScheduleParseTest, TimeOfDay) {
  std::string error;
  EXPECT_EQ(parse_time_of_day("03:00", &error), 180);
  EXPECT_EQ(parse_time_of_day("00:00", &error), 0);
  EXPECT_EQ(parse_time_of_day("23:59", &error), 23 * 60 + 59);
  for (std::string_view bad : {"3:00", "24:00", "03:60", "", "03:00:00", "0300", "ab:cd"}) {
    EXPECT_FALSE(parse_time_of_day(bad, &error).has_value()) << bad;
  }
  (void)parse_time_of_day("3am", &error);
  EXPECT_EQ(error, "expected a time of day \"HH:MM\" (00:00 to 23:59), got \"3am\"");
  EXPECT_EQ(format_time_of_day(180), "03:00");
  EXPECT_EQ(format_time_of_day(23 * 60 + 5), "23:05");
  EXPECT_EQ(format_time_of_day(24 * 60), "24:00");
}

// ---- Time zones -----------------------------------------------------------------------------

TEST(TimeZoneTest, LoadsIanaNamesAndRefusesOthers) {
  EXPECT_EQ(zone("Europe/Berlin").name(), "Europe/Berlin");
  EXPECT_EQ(zone("UTC").name(), "UTC");
  EXPECT_EQ(TimeZone::utc().name(), "UTC");
  std::string error;
  EXPECT_FALSE(TimeZone::load("Europe/Berln", &error).has_value());
  EXPECT_EQ(error, "unknown time zone \"Europe/Berln\" (IANA names, from /usr/share/zoneinfo)");
  // Real files, but not IANA names: a configuration must mean the same on every host.
  for (const std::string name : {"/usr/share/zoneinfo/Europe/Berlin", "../zoneinfo/UTC", "localtime", "", "Europe"}) {
    EXPECT_FALSE(TimeZone::load(name, nullptr).has_value()) << name;
  }
}

TEST(TimeZoneTest, FormatLocalNamesTheAbbreviationOfThatDay) {
  EXPECT_EQ(format_local(utc(2026, 12, 5, 7), zone("Europe/Berlin")), "2026-12-05 08:00:00 CET");
  EXPECT_EQ(format_local(utc(2026, 7, 5, 7), zone("Europe/Berlin")), "2026-07-05 09:00:00 CEST");
  EXPECT_EQ(format_local(utc(2026, 1, 5, 13), zone("America/New_York")), "2026-01-05 08:00:00 EST");
  EXPECT_EQ(format_local(utc(2026, 7, 5, 12, 30, 15), zone("America/New_York")), "2026-07-05 08:30:15 EDT");
  EXPECT_EQ(format_local(utc(2026, 7, 5, 12), TimeZone::utc()), "2026-07-05 12:00:00 UTC");
}

// ---- current_or_next_window -----------------------------------------------------------------

// 2026-03-02 is a Monday.
TEST(CurrentOrNextWindowTest, BeforeAtStartInsideAndAtEnd) {
  const std::vector<WeeklyWindow> windows{window("Mon-Fri 08:00-18:00")};
  const TimeZone tz = TimeZone::utc();

  std::optional<Span> before = current_or_next_window(windows, tz, utc(2026, 3, 2, 7, 59, 59));
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->start, utc(2026, 3, 2, 8));
  EXPECT_EQ(before->end, utc(2026, 3, 2, 18));
  EXPECT_EQ(before->window, &windows[0]);

  std::optional<Span> at_start = current_or_next_window(windows, tz, utc(2026, 3, 2, 8));
  ASSERT_TRUE(at_start.has_value());
  EXPECT_EQ(at_start->start, utc(2026, 3, 2, 8)) << "start <= now: inside";
  EXPECT_EQ(at_start->end, utc(2026, 3, 2, 18));

  std::optional<Span> inside = current_or_next_window(windows, tz, utc(2026, 3, 2, 17, 59, 59));
  ASSERT_TRUE(inside.has_value());
  EXPECT_EQ(inside->start, utc(2026, 3, 2, 8));

  std::optional<Span> at_end = current_or_next_window(windows, tz, utc(2026, 3, 2, 18));
  ASSERT_TRUE(at_end.has_value());
  EXPECT_EQ(at_end->start, utc(2026, 3, 3, 8)) << "now < end: at the end, the next day's window";
  EXPECT_EQ(at_end->end, utc(2026, 3, 3, 18));

  std::optional<Span> friday_evening = current_or_next_window(windows, tz, utc(2026, 3, 6, 18));
  ASSERT_TRUE(friday_evening.has_value());
  EXPECT_EQ(friday_evening->start, utc(2026, 3, 9, 8)) << "after Friday, Monday";
}

TEST(CurrentOrNextWindowTest, NoWindowsIsNothing) {
  EXPECT_FALSE(current_or_next_window({}, TimeZone::utc(), utc(2026, 3, 2)).has_value());
}

TEST(CurrentOrNextWindowTest, WindowCrossingMidnightContainsTheEarlyHours) {
  const std::vector<WeeklyWindow> windows{window("Mon 22:00-02:00")};
  std::optional<Span> span = current_or_next_window(windows, TimeZone::utc(), utc(2026, 3, 3, 1));  // Tuesday
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 3, 2, 22));
  EXPECT_EQ(span->end, utc(2026, 3, 3, 2));
  // Tuesday 02:00: over, next Monday.
  span = current_or_next_window(windows, TimeZone::utc(), utc(2026, 3, 3, 2));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 3, 9, 22));
}

TEST(CurrentOrNextWindowTest, WrappingDayRange) {
  const std::vector<WeeklyWindow> windows{window("Fri-Mon 09:00-17:00")};
  std::optional<Span> from_wednesday = current_or_next_window(windows, TimeZone::utc(), utc(2026, 3, 4, 12));
  ASSERT_TRUE(from_wednesday.has_value());
  EXPECT_EQ(from_wednesday->start, utc(2026, 3, 6, 9)) << "Friday";
  std::optional<Span> sunday = current_or_next_window(windows, TimeZone::utc(), utc(2026, 3, 8, 10));
  ASSERT_TRUE(sunday.has_value());
  EXPECT_EQ(sunday->start, utc(2026, 3, 8, 9));
  std::optional<Span> monday_evening = current_or_next_window(windows, TimeZone::utc(), utc(2026, 3, 9, 17));
  ASSERT_TRUE(monday_evening.has_value());
  EXPECT_EQ(monday_evening->start, utc(2026, 3, 13, 9)) << "Tuesday to Thursday are not in Fri-Mon";
}

TEST(CurrentOrNextWindowTest, TouchingAndOverlappingWindowsMergeIntoOneSpan) {
  const std::vector<WeeklyWindow> touching{window("Mon-Fri 08:00-12:00"), window("Mon-Fri 12:00-18:00")};
  std::optional<Span> span = current_or_next_window(touching, TimeZone::utc(), utc(2026, 3, 2, 11));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 3, 2, 8));
  EXPECT_EQ(span->end, utc(2026, 3, 2, 18));
  EXPECT_EQ(span->window, &touching[1]) << "the window that ends last";
  // Exactly where they touch: still inside.
  span = current_or_next_window(touching, TimeZone::utc(), utc(2026, 3, 2, 12));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->end, utc(2026, 3, 2, 18));

  const std::vector<WeeklyWindow> overlapping{window("daily 01:00-06:00"), window("daily 22:00-02:00")};
  span = current_or_next_window(overlapping, TimeZone::utc(), utc(2026, 3, 2, 23));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 3, 2, 22));
  EXPECT_EQ(span->end, utc(2026, 3, 3, 6));
  EXPECT_EQ(span->window, &overlapping[0]);

  // A window inside another changes nothing.
  const std::vector<WeeklyWindow> nested{window("Mon 08:00-18:00"), window("Mon 09:00-10:00")};
  span = current_or_next_window(nested, TimeZone::utc(), utc(2026, 3, 2, 9, 30));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->end, utc(2026, 3, 2, 18));
  EXPECT_EQ(span->window, &nested[0]);
}

TEST(CurrentOrNextWindowTest, ReadInTheInstancesTimeZone) {
  // 08:00 in New York is 13:00 UTC in winter (EST, UTC-5).
  const std::vector<WeeklyWindow> windows{window("Mon-Fri 08:00-18:00")};
  std::optional<Span> span = current_or_next_window(windows, zone("America/New_York"), utc(2026, 1, 5, 12));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 1, 5, 13));
  EXPECT_EQ(span->end, utc(2026, 1, 5, 23));
  // Berlin, 2026-01-05 07:30 UTC is 08:30 CET: inside.
  span = current_or_next_window(windows, zone("Europe/Berlin"), utc(2026, 1, 5, 7, 30));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 1, 5, 7));
  EXPECT_EQ(span->end, utc(2026, 1, 5, 17));
  // Sunday 23:30 UTC is already Monday 00:30 in Berlin: the window is Monday's, local time.
  const std::vector<WeeklyWindow> monday{window("Mon 00:00-01:00")};
  span = current_or_next_window(monday, zone("Europe/Berlin"), utc(2026, 1, 4, 23, 30));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 1, 4, 23));
}

TEST(CurrentOrNextWindowTest, DstChangesShortenAndLengthenAWindowInBerlin) {
  const std::vector<WeeklyWindow> windows{window("Sun 01:00-04:00")};
  const TimeZone berlin = zone("Europe/Berlin");
  // 2026-03-29: 02:00 CET becomes 03:00 CEST. 01:00 CET to 04:00 CEST is two hours.
  std::optional<Span> spring = current_or_next_window(windows, berlin, utc(2026, 3, 28, 12));
  ASSERT_TRUE(spring.has_value());
  EXPECT_EQ(spring->start, utc(2026, 3, 29, 0));
  EXPECT_EQ(spring->end, utc(2026, 3, 29, 2));
  EXPECT_EQ(spring->end - spring->start, hours(2));
  // 2026-10-25: 03:00 CEST becomes 02:00 CET. 01:00 CEST to 04:00 CET is four hours.
  std::optional<Span> autumn = current_or_next_window(windows, berlin, utc(2026, 10, 24, 12));
  ASSERT_TRUE(autumn.has_value());
  EXPECT_EQ(autumn->start, utc(2026, 10, 24, 23));
  EXPECT_EQ(autumn->end, utc(2026, 10, 25, 3));
  EXPECT_EQ(autumn->end - autumn->start, hours(4));
}

TEST(CurrentOrNextWindowTest, AWindowInsideTheSkippedHourHasNoOccurrenceThatDay) {
  // 02:30-02:45 does not exist in Berlin on 2026-03-29: the next one is a week later, in CEST.
  const std::vector<WeeklyWindow> windows{window("Sun 02:30-02:45")};
  std::optional<Span> span = current_or_next_window(windows, zone("Europe/Berlin"), utc(2026, 3, 28, 12));
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->start, utc(2026, 4, 5, 0, 30));
  EXPECT_EQ(span->end, utc(2026, 4, 5, 0, 45));
}

TEST(CurrentOrNextWindowTest, NewYorkSpringForward) {
  // 2026-03-08: 02:00 EST becomes 03:00 EDT; 08:00 is 13:00 UTC the day before and 12:00 UTC after.
  const std::vector<WeeklyWindow> windows{window("daily 08:00-09:00")};
  const TimeZone new_york = zone("America/New_York");
  std::optional<Span> saturday = current_or_next_window(windows, new_york, utc(2026, 3, 7, 12));
  ASSERT_TRUE(saturday.has_value());
  EXPECT_EQ(saturday->start, utc(2026, 3, 7, 13));
  std::optional<Span> sunday = current_or_next_window(windows, new_york, utc(2026, 3, 7, 14));
  ASSERT_TRUE(sunday.has_value());
  EXPECT_EQ(sunday->start, utc(2026, 3, 8, 12));
  EXPECT_EQ(sunday->end, utc(2026, 3, 8, 13));
  EXPECT_EQ(format_local(sunday->start, new_york), "2026-03-08 08:00:00 EDT");
  // A night window across the change: 22:00 EST to 06:00 EDT is seven hours.
  const std::vector<WeeklyWindow> night{window("Sat 22:00-06:00")};
  std::optional<Span> across = current_or_next_window(night, new_york, utc(2026, 3, 7, 12));
  ASSERT_TRUE(across.has_value());
  EXPECT_EQ(across->start, utc(2026, 3, 8, 3));
  EXPECT_EQ(across->end, utc(2026, 3, 8, 10));
}

// ---- next_time_of_day -----------------------------------------------------------------------

TEST(NextTimeOfDayTest, AtOrAfter) {
  const TimeZone tz = TimeZone::utc();
  EXPECT_EQ(next_time_of_day(180, tz, utc(2026, 3, 2, 2)), utc(2026, 3, 2, 3));
  EXPECT_EQ(next_time_of_day(180, tz, utc(2026, 3, 2, 3)), utc(2026, 3, 2, 3)) << "at: the same moment";
  EXPECT_EQ(next_time_of_day(180, tz, utc(2026, 3, 2, 3, 0, 1)), utc(2026, 3, 3, 3));
  EXPECT_EQ(next_time_of_day(0, tz, utc(2026, 12, 31, 23, 59)), utc(2027, 1, 1, 0));
}

TEST(NextTimeOfDayTest, LocalTimeInTheZoneAcrossDstChanges) {
  const TimeZone berlin = zone("Europe/Berlin");
  // 03:00 CET on 2026-03-28 is 02:00 UTC; 03:00 CEST on 2026-03-29 is 01:00 UTC.
  EXPECT_EQ(next_time_of_day(180, berlin, utc(2026, 3, 28, 1)), utc(2026, 3, 28, 2));
  EXPECT_EQ(next_time_of_day(180, berlin, utc(2026, 3, 28, 3)), utc(2026, 3, 29, 1));
  // 02:30 is skipped on 2026-03-29: the moment of the change, 03:00 CEST.
  EXPECT_EQ(next_time_of_day(150, berlin, utc(2026, 3, 28, 12)), utc(2026, 3, 29, 1));
  // 02:30 happens twice on 2026-10-25: the first, in CEST (00:30 UTC).
  EXPECT_EQ(next_time_of_day(150, berlin, utc(2026, 10, 24, 12)), utc(2026, 10, 25, 0, 30));
  // New York: 03:00 EDT on 2026-03-08 is 07:00 UTC.
  EXPECT_EQ(next_time_of_day(180, zone("America/New_York"), utc(2026, 3, 7, 12)), utc(2026, 3, 8, 7));
}

}  // namespace
}  // namespace pgnap::config
