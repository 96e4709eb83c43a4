// When an awake instance may sleep: idle_timeout after its last session, min_awake after
// its wake, and — with idle_session_timeout — also while sessions are still open but only
// open (at rest, no traffic), as an application's connection pool keeps them all day
// (docs/pooled-apps.md). In the authenticating mode such a session is parked as soon as it
// has been idle that long (it keeps its client and gives back its server connection and
// lease); those that cannot be parked, and every one in the transparent mode, are closed
// once all are idle, and the instance suspends once they are gone.
//
// Sessions of clients a wake rule ignores (a monitor) never keep it awake: they count as idle
// whatever they do, and are parked or closed with the others. A hold (`pgnap wake --for`, a
// keep-warm window, a maintenance wake: instance_schedule.cpp) keeps it awake until it ends;
// the usual rules apply from then on.
#include <algorithm>

#include "daemon/instance.h"
#include "daemon/log.h"

namespace pgnap::daemon {

// A session asked to park while the instance goes to sleep has this long to detach before it is
// closed (its park may be refused: a temporary table, ...).
constexpr auto kParkSettle = std::chrono::seconds(2);

using config::Duration;
using config::format_duration;

void Instance::watch_session(SessionActivity* activity) {
  watched_.push_back(activity);
  // An ignored client's session may be all that is left: the timer that counted it as in use
  // (still connecting) looks again.
  if (activity->ignored) arm_idle_timer();
}

void Instance::unwatch_session(SessionActivity* activity) { watched_.remove(activity); }

bool Instance::in_use_since(Clock::time_point since) const {
  if (maintenance_running_ || !waiters_.empty() || last_release_ >= since) return true;
  if (watched_.size() < sessions_) return true;  // one is still connecting or authenticating
  refresh_activities();
  return std::any_of(watched_.begin(), watched_.end(), [since](const SessionActivity* a) {
    return !a->ignored && (!a->at_rest || a->parking || a->last_traffic >= since);
  });
}

void Instance::arm_idle_timer() {
  if (!may_suspend()) return;
  const auto now = Clock::now();
  Clock::time_point at = std::max(now + config_.idle_timeout, awake_since_ + config_.min_awake);
  if (sessions_ > 0) {
    // Open sessions keep it awake, unless idle_session_timeout lets idle ones be closed: look
    // again once the newest of them could have been idle that long (on_idle_timer() then
    // finds the exact moment, or looks again later). Ignored ones never keep it awake.
    const Duration rest = config_.effective_idle_session_timeout();
    if (only_ignored_sessions()) {
      // Only ignored clients left: idle_timeout after the last other session, as if none were open.
      at = std::max({now, std::max(last_release_, awake_since_) + config_.idle_timeout,
                     awake_since_ + config_.min_awake});
    } else if (rest <= Duration(0)) {
      idle_timer_.cancel();
      return;
    } else {
      at = now + rest;
    }
  }
  if (const auto held = held_until(now)) at = std::max(at, *held);
  check_idle_at(at);
}

bool Instance::only_ignored_sessions() const {
  if (watched_.size() < sessions_) return false;  // one is still connecting
  return std::all_of(watched_.begin(), watched_.end(), [](const SessionActivity* a) { return a->ignored; });
}

void Instance::check_idle_at(Clock::time_point at) {
  idle_timer_.expires_at(at);
  idle_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) on_idle_timer();
  });
}

std::optional<Clock::time_point> Instance::park_idle_sessions(Clock::time_point now) {
  const Duration rest = config_.effective_idle_session_timeout();
  if (rest <= Duration(0) || state_ != InstanceState::kAwake || shutting_down_) return std::nullopt;
  std::optional<Clock::time_point> next;
  std::size_t asked = 0;
  for (SessionActivity* a : std::list<SessionActivity*>(watched_)) {
    if (!a->may_be_parked() || a->parking || !a->at_rest) continue;
    // An ignored client's session at rest gives its server connection back at once.
    const auto due = a->ignored ? now : a->last_traffic + rest;
    if (due > now) {
      next = next ? std::min(*next, due) : due;
    } else if (a->park()) {
      ++asked;
    }
  }
  if (asked > 0) {
    PGNAP_LOG(kInfo, context(),
              "parking " << asked << " idle session(s) (no traffic for " << format_duration(rest) << ")");
  }
  return next;
}

std::optional<Clock::time_point> Instance::idle_sessions_deadline() const {
  const Duration rest = config_.effective_idle_session_timeout();
  // A session still connecting or authenticating is not watched yet: in use.
  if (watched_.size() < sessions_) return std::nullopt;
  if (rest <= Duration(0) && !only_ignored_sessions()) return std::nullopt;
  // Never before idle_timeout after the wake (a wake with no client, then only ignored ones).
  Clock::time_point idle_since = std::max(last_release_, awake_since_);
  for (const SessionActivity* a : watched_) {
    if (a->ignored) continue;  // never keeps it awake
    // One being parked gives its lease back in a moment (or, refused, is looked at again).
    if (a->parking || a->may_be_parked()) return std::nullopt;
    if (!a->at_rest || (a->listening && !config_.close_listeners)) return std::nullopt;
    idle_since = std::max(idle_since, a->last_traffic + rest);
  }
  return std::max(idle_since + config_.idle_timeout, awake_since_ + config_.min_awake);
}

void Instance::refresh_activities() const {
  for (const SessionActivity* a : watched_) {
    if (a->refresh) a->refresh();
  }
}

void Instance::on_idle_timer() {
  refresh_activities();
  const auto now = Clock::now();
  if (operation_ == Operation::kCloseIdleSessions) {
    // Sessions asked to park that refused (a temporary table, ...) after all: closed now.
    for (SessionActivity* a : std::list<SessionActivity*>(watched_)) {
      if (!a->parking && a->close) a->close();
    }
    return;
  }
  // Parking comes first: a parked session is no longer a session of the instance.
  const auto next_park = park_idle_sessions(now);
  if (!may_suspend()) {
    if (next_park) check_idle_at(*next_park);
    return;
  }
  if (const auto held = held_until(now)) {
    // Held awake (wake --for, a keep-warm window, maintenance): look again when the hold ends.
    check_idle_at(next_park ? std::min(*held, *next_park) : *held);
    return;
  }
  if (sessions_ == 0) {
    // After a hold the usual rule: idle_timeout after the last session left (a wake no client
    // asked for suspends as soon as its hold ends).
    const auto due = std::max(last_release_ + config_.idle_timeout, awake_since_ + config_.min_awake);
    if (due > now) {
      check_idle_at(due);
      return;
    }
    suspend_now("idle for " + format_duration(config_.idle_timeout));
    return;
  }
  const auto deadline = idle_sessions_deadline();
  if (!deadline || *deadline > now) {
    // In use, or not idle long enough yet: look again then (or after idle_session_timeout),
    // or when the next session may be parked.
    auto at = deadline ? *deadline : now + config_.effective_idle_session_timeout();
    if (next_park) at = std::min(at, *next_park);
    check_idle_at(at);
    return;
  }
  close_idle_sessions();
}

void Instance::close_idle_sessions() {
  // Every session left is only open: close them (each says why to its client), and suspend
  // as soon as the last one is gone (on_lease_released).
  operation_ = Operation::kCloseIdleSessions;
  close_reason_.clear();
  std::size_t closed = 0;
  for (SessionActivity* a : std::list<SessionActivity*>(watched_)) {
    // An ignored client's session at rest is parked rather than closed, when it can be.
    if (a->ignored && a->at_rest && !a->parking && a->may_be_parked() && a->park()) {
      check_idle_at(Clock::now() + kParkSettle);  // in case it refuses
      continue;
    }
    if (a->close) {
      a->close();
      ++closed;
    }
  }
  metrics_.idle_sessions_closed(closed);
  PGNAP_LOG(kInfo, context(),
            "closed " << closed << " idle session(s) so that it can sleep (no traffic for "
                      << format_duration(config_.effective_idle_session_timeout()) << ")");
}

}  // namespace pgnap::daemon
