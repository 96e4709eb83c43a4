// What an instance holds of its schedule (instance_schedule.cpp), shared with its status
// (instance_control.cpp). Internal to daemon/.
#pragma once

#include <optional>
#include <vector>

#include "backends/child_process.h"
#include "config/schedule.h"

namespace pgnap::daemon {

// The keep-warm windows and the maintenance time, parsed once per configuration.
struct InstanceSchedule {
  config::TimeZone zone = config::TimeZone::utc();
  std::vector<config::WeeklyWindow> windows;
  std::optional<int> maintenance_at;  // minutes since local midnight
  std::optional<backends::RunAs> maintenance_user;
};

// The keep-warm window `now` is inside (its span), if any.
[[nodiscard]] inline std::optional<config::Span> window_at(const InstanceSchedule* schedule,
                                                           std::chrono::system_clock::time_point now) {
  if (schedule == nullptr || schedule->windows.empty()) return std::nullopt;
  auto span = config::current_or_next_window(schedule->windows, schedule->zone, now);
  if (!span || span->start > now) return std::nullopt;
  return span;
}

}  // namespace pgnap::daemon
