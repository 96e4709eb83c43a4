// What wakes an instance besides its clients, and what holds it awake (docs/operations.md,
// "Who keeps it awake"): keep-warm windows ([wake] awake_during, in its time zone) and
// maintenance wakes ([maintenance]), each a wake with its cause and a hold; the maintenance
// command. A hold keeps it awake until a moment whatever its sessions do (instance_idle.cpp
// looks at held_until()); the usual rules apply from then on.
#include <unistd.h>
#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "daemon/instance.h"
#include "daemon/instance_schedule.h"
#include "daemon/log.h"

namespace pgnap::daemon {

using config::Duration;
using config::format_duration;
using SystemClock = std::chrono::system_clock;

namespace {

// The next planned moment is looked at again at least this often: the wall clock may jump
// (NTP, a suspended VM), the steady clock the timers run on does not follow it.
constexpr auto kScheduleRecheck = std::chrono::minutes(5);
// The output of a maintenance command kept for the log and the ledger.
constexpr std::size_t kOutputTailBytes = 2000;

Clock::time_point to_steady(SystemClock::time_point at, SystemClock::time_point now_wall, Clock::time_point now) {
  return now + std::chrono::duration_cast<Clock::duration>(at - now_wall);
}

std::string tail_of(const std::string& output) {
  if (output.size() <= kOutputTailBytes) return output;
  std::string tail = output.substr(output.size() - kOutputTailBytes);
  if (const auto newline = tail.find('\n'); newline != std::string::npos && newline + 1 < tail.size()) {
    tail.erase(0, newline + 1);  // from a line's start
  }
  return tail;
}

}  // namespace

// ---- holds ----

std::optional<Clock::time_point> Instance::held_until(Clock::time_point now) const {
  std::optional<Clock::time_point> until;
  auto extend = [&](Clock::time_point t) {
    if (t > now) until = until ? std::max(*until, t) : t;
  };
  extend(hold_until_);
  if (maintenance_running_) extend(now + kScheduleRecheck);  // until the command ends (it re-arms the timer)
  const auto now_wall = SystemClock::now();
  if (auto span = window_at(schedule_.get(), now_wall); span && span->end > window_skipped_until_) {
    extend(to_steady(span->end, now_wall, now));
  }
  return until;
}

std::string Instance::hold_reason(Clock::time_point now) const {
  if (maintenance_running_) return "the maintenance command runs";
  if (auto span = window_at(schedule_.get(), SystemClock::now()); span && span->end > window_skipped_until_) {
    return "keep-warm window \"" + span->window->text + "\" (" + schedule_->zone.name() + ")";
  }
  if (hold_until_ > now) return hold_why_;
  return {};
}

// ---- the schedule ----

void Instance::load_schedule() {
  const bool maintenance = config_.maintenance.every > Duration(0);
  if (config_.wake.awake_during.empty() && !maintenance) {
    schedule_.reset();
    return;
  }
  auto schedule = std::make_shared<InstanceSchedule>();
  std::string error;
  if (auto zone = config::TimeZone::load(config_.wake.time_zone, &error)) {
    schedule->zone = *zone;
  } else {
    // The loader checked it; the tzdata may have changed since.
    PGNAP_LOG(kError, context(), error << "; reading the schedule in UTC");
  }
  schedule->windows = config::parse_windows(config_.wake.awake_during);
  if (!config_.maintenance.at.empty())
    schedule->maintenance_at = config::parse_time_of_day(config_.maintenance.at, nullptr);
  if (maintenance && !config_.maintenance.command.empty() && !config_.maintenance.os_user.empty() && ::geteuid() == 0) {
    if (auto user = backends::lookup_user(config_.maintenance.os_user, error)) {
      schedule->maintenance_user = std::move(*user);
    } else {
      PGNAP_LOG(kError, context(), "maintenance.os_user: " << error << "; the command will not run");
    }
  }
  schedule_ = std::move(schedule);
}

std::optional<SystemClock::time_point> Instance::maintenance_due() const {
  if (!schedule_ || config_.maintenance.every <= Duration(0) || state_ != InstanceState::kAsleep) return std::nullopt;
  const auto base = asleep_since_ + std::chrono::duration_cast<SystemClock::duration>(config_.maintenance.every);
  if (!schedule_->maintenance_at) return base;
  return config::next_time_of_day(*schedule_->maintenance_at, schedule_->zone, base);
}

void Instance::reschedule() {
  // Deferred: called from state changes, whose callers finish their own work first.
  asio::post(executor_, [this, alive = alive_] {
    if (*alive) on_schedule_timer();
  });
}

void Instance::on_schedule_timer() {
  if (shutting_down_) return;
  schedule_timer_.cancel();
  if (!schedule_) return;
  const auto now = Clock::now();
  const auto now_wall = SystemClock::now();
  auto next = now + kScheduleRecheck;
  const bool may_wake = waiters_.empty() && operation_ == Operation::kNone &&
                        (state_ == InstanceState::kAsleep || (state_ == InstanceState::kFailed && now >= retry_at_));
  if (state_ == InstanceState::kFailed && now < retry_at_) next = std::min(next, retry_at_);

  if (auto span = config::current_or_next_window(schedule_->windows, schedule_->zone, now_wall)) {
    if (span->start <= now_wall) {
      if (span->end > window_skipped_until_ && may_wake) {
        start_wake("keep-warm window \"" + span->window->text + "\" (" + schedule_->zone.name() + ")", "window",
                   WakeCause::kWindow, {}, span->window->text);
      }
      next = std::min(next, to_steady(span->end, now_wall, now));
    } else {
      next = std::min(next, to_steady(span->start, now_wall, now));
    }
  }
  if (auto due = maintenance_due()) {
    if (*due <= now_wall && may_wake && state_ == InstanceState::kAsleep) {
      const auto asleep_for = std::chrono::duration_cast<Duration>(now_wall - asleep_since_);
      start_wake("maintenance: asleep for " + format_duration(asleep_for) +
                     " (maintenance.every = " + format_duration(config_.maintenance.every) + ")",
                 "maintenance", WakeCause::kMaintenance, {}, "asleep for " + format_duration(asleep_for));
    } else if (*due > now_wall) {
      next = std::min(next, to_steady(*due, now_wall, now));
    }
  }
  // A window that ended lets the idle rules run again.
  if (state_ == InstanceState::kAwake && waiters_.empty()) arm_idle_timer();
  schedule_timer_.expires_at(std::max(next, now + std::chrono::milliseconds(10)));
  schedule_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) on_schedule_timer();
  });
}

void Instance::after_wake_ok() {
  if (wake_cause_ == WakeCause::kMaintenance) {
    hold_until_ = std::max(hold_until_, Clock::now() + config_.maintenance.stay_awake);
    hold_why_ = "maintenance.stay_awake = " + format_duration(config_.maintenance.stay_awake);
    if (!config_.maintenance.command.empty()) {
      maintenance_running_ = true;
      asio::co_spawn(executor_, run_maintenance_command(), asio::detached);
    }
  }
  reschedule();
}

asio::awaitable<void> Instance::run_maintenance_command() {
  const auto alive = alive_;
  const config::MaintenanceConfig maintenance = config_.maintenance;
  backends::CommandSpec spec;
  spec.argv = maintenance.command;
  spec.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(maintenance.command_timeout);
  spec.max_output = 64 * 1024;
  // The instance's address for libpq tools (vacuumdb, pg_dump); the configured env wins.
  const config::BackendAddress& a = config_.address;
  spec.env.emplace_back("PGHOST", a.kind == config::BackendAddress::Kind::kUnix ? a.socket_dir : a.host);
  spec.env.emplace_back("PGPORT", std::to_string(a.port));
  for (const auto& kv : maintenance.env) spec.env.push_back(kv);
  if (schedule_) spec.run_as = schedule_->maintenance_user;
  InstanceObserver::Maintenance run;
  run.command = maintenance.command;
  run.started = SystemClock::now();
  PGNAP_LOG(kInfo, context(), "maintenance: running " << backends::format_command(maintenance.command));
  backends::CommandResult result;
  if (!maintenance.os_user.empty() && ::geteuid() == 0 && !spec.run_as) {
    result.end = backends::CommandResult::End::kSpawnFailed;
    result.error = "maintenance.os_user \"" + maintenance.os_user + "\" is not a user here";
  } else {
    result = co_await backends::run_command(std::move(spec));
  }
  if (!*alive) co_return;
  run.finished = SystemClock::now();
  maintenance_running_ = false;
  using End = backends::CommandResult::End;
  run.exit_status = result.end == End::kExited ? result.exit_code : -1;
  run.outcome = result.ok()                       ? "ok"
                : result.end == End::kTimedOut    ? "timeout"
                : result.end == End::kSpawnFailed ? "not run"
                                                  : "failed";
  run.output_tail = tail_of(result.end == End::kSpawnFailed ? result.error : result.output);
  const auto took = std::chrono::duration_cast<Duration>(run.finished - run.started);
  if (result.ok()) {
    PGNAP_LOG(kInfo, context(),
              "maintenance: " << backends::format_command(run.command) << " " << result.describe() << " after "
                              << format_duration(took)
                              << (run.output_tail.empty() ? "" : "; output:\n" + run.output_tail));
  } else {
    PGNAP_LOG(kWarning, context(),
              "maintenance: " << backends::format_command(run.command) << " " << result.describe() << " after "
                              << format_duration(took)
                              << (run.output_tail.empty() ? "" : "; output:\n" + run.output_tail));
  }
  for (InstanceObserver* observer : observers_) observer->on_maintenance(*this, run);
  // Done: it sleeps once stay_awake has passed and nothing else keeps it awake.
  if (state_ == InstanceState::kAwake && waiters_.empty()) arm_idle_timer();
}

}  // namespace pgnap::daemon
