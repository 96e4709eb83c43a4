// The operator's view of an instance and their hand on it (the control socket,
// docs/control.md); what wakes it besides its clients is instance_schedule.cpp:
//
//   status()          its state, the last wake and its cause, what is planned next, and each
//                     session with whether it keeps the instance awake and why
//   wake_manually()   `pgnap wake NAME [--for D]`: a wake with cause "manual", and a hold
//   sleep_manually()  `pgnap sleep NAME`: suspend now unless a session is in use
//   ignored()         [wake] ignore: clients that never wake it nor keep it awake
//   the schedule      keep-warm windows ([wake] awake_during, in its time zone) and
//                     maintenance wakes ([maintenance]), each a wake with its cause and a hold
//
// A hold keeps it awake until a moment, whatever its sessions do (instance_idle.cpp looks at
// held_until()); the usual rules apply from then on.
#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "backends/child_process.h"
#include "config/schedule.h"
#include "config/wake_rules.h"
#include "daemon/instance.h"
#include "daemon/instance_schedule.h"
#include "daemon/log.h"

namespace pgnap::daemon {

using config::Duration;
using config::format_duration;
using SystemClock = std::chrono::system_clock;

namespace {

// How often a manual wake looks whether the wake it asked for has finished.
constexpr auto kManualWakePoll = std::chrono::milliseconds(50);

SystemClock::time_point to_wall(Clock::time_point at, SystemClock::time_point now_wall, Clock::time_point now) {
  return now_wall + std::chrono::duration_cast<SystemClock::duration>(at - now);
}

std::string ago(Clock::duration d) {
  return format_duration(std::chrono::duration_cast<Duration>(std::max(d, Clock::duration::zero())));
}

}  // namespace

std::string_view to_string(WakeCause cause) {
  switch (cause) {
    case WakeCause::kClient: return "client";
    case WakeCause::kManual: return "manual";
    case WakeCause::kWindow: return "window";
    case WakeCause::kMaintenance: return "maintenance";
  }
  return "client";
}

std::string ClientIdentity::ip() const {
  if (address.empty() || address == "unix") return {};
  if (address.front() == '[') {
    const auto close = address.find(']');
    return close == std::string::npos ? address.substr(1) : address.substr(1, close - 1);
  }
  const auto colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

void Instance::register_session(SessionEntry* entry) { entries_.push_back(entry); }

void Instance::unregister_session(SessionEntry* entry) { entries_.remove(entry); }

const config::WakeIgnoreRule* Instance::ignored(const ClientIdentity& client) const {
  const std::string ip = client.ip();
  for (const auto& rule : config_.wake.ignore) {
    if (config::matches(rule, client.user, client.application_name, ip)) return &rule;
  }
  return nullptr;
}

// ---- status ----

InstanceStatus Instance::status() const {
  refresh_activities();
  const auto now = Clock::now();
  const auto now_wall = SystemClock::now();
  InstanceStatus s;
  s.name = config_.name;
  s.state = std::string(to_string(state_));
  s.since = state_since_wall_;
  s.mode = config_.auth.mode;
  s.last_wake = last_wake_;
  s.waiting = waiters_.size();

  const Duration rest = config_.effective_idle_session_timeout();
  std::size_t in_use = 0;
  for (const SessionEntry* e : entries_) {
    SessionStatus st;
    st.id = e->id;
    st.client = e->client;
    st.connected_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - e->connected_at);
    const SessionActivity* a = e->activity;
    const auto last = a != nullptr ? a->last_traffic : e->last_seen;
    st.idle_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - last);
    if (e->parked) {
      st.state = "parked";
      st.why = "parked: it holds no server connection";
    } else if (e->waiting) {
      st.state = "waiting";
      st.keeps_awake = !e->ignored;
      st.why = "its query waits for the instance";
    } else if (a == nullptr) {
      st.state = "connected";
      st.why = "no query yet: it holds no server connection";
    } else if (a->busy) {
      st.state = "active";
      st.keeps_awake = true;
      st.why = "a query is running";
    } else if (a->transaction_status == 'T' || a->transaction_status == 'E') {
      st.state = "idle in transaction";
      st.keeps_awake = true;
      st.why = "inside a transaction";
    } else if (a->listening) {
      st.state = "listening";
      st.keeps_awake = !config_.close_listeners;
      st.why = config_.close_listeners ? "LISTEN, and close_listeners = true: closed when idle"
                                       : "LISTEN (close_listeners = false keeps listeners open)";
    } else {
      st.state = "idle";
      if (rest <= Duration(0)) {
        st.keeps_awake = true;
        st.why = "idle_session_timeout = 0: open sessions keep it awake";
      } else if (now - last < rest) {
        st.keeps_awake = true;
        st.why = "used " + ago(now - last) + " ago (idle_session_timeout = " + format_duration(rest) + ")";
      } else {
        st.why = std::string("idle for longer than idle_session_timeout: ") + (a->park ? "parked" : "closed") +
                 " when it would otherwise keep it awake";
      }
    }
    if (e->ignored && st.keeps_awake) {
      st.keeps_awake = false;
      const config::WakeIgnoreRule* rule = ignored(e->client);
      st.why = "ignored by the wake rule " + (rule != nullptr ? rule->to_string() : std::string("(changed)")) + " (" +
               st.why + ")";
    }
    if (st.keeps_awake) ++in_use;
    s.sessions.push_back(std::move(st));
  }

  auto plan = [&](std::string what, SystemClock::time_point at, std::string detail) {
    s.next.push_back({std::move(what), at, std::move(detail)});
  };
  const auto held = held_until(now);
  if (held) plan("stay awake until", to_wall(*held, now_wall, now), hold_reason(now));
  if (state_ == InstanceState::kAwake && !shutting_down_) {
    if (operation_ == Operation::kCloseIdleSessions) {
      plan("suspend", now_wall, "once the idle sessions closed are gone");
    } else if (sessions_ == 0 || (in_use == 0 && idle_sessions_deadline())) {
      auto at = sessions_ == 0 ? std::max(last_release_ + config_.idle_timeout, awake_since_ + config_.min_awake)
                               : *idle_sessions_deadline();
      if (held) at = std::max(at, *held);
      plan("suspend", to_wall(std::max(at, now), now_wall, now),
           sessions_ == 0 ? "idle_timeout = " + format_duration(config_.idle_timeout)
                          : "its sessions are idle: parked or closed then");
    }
  }
  if (schedule_ && !schedule_->windows.empty()) {
    if (auto span = config::current_or_next_window(schedule_->windows, schedule_->zone, now_wall)) {
      const std::string where = span->window->text + " (" + schedule_->zone.name() + ")";
      if (span->start <= now_wall) {
        plan("keep-warm window ends", span->end, where);
      } else {
        plan("keep-warm window starts", span->start, where);
      }
    }
  }
  if (auto due = maintenance_due()) {
    plan("maintenance", std::max(*due, now_wall),
         "asleep for maintenance.every = " + format_duration(config_.maintenance.every) +
             (config_.maintenance.command.empty() ? ""
                                                  : ", then " + backends::format_command(config_.maintenance.command)));
  }
  std::sort(s.next.begin(), s.next.end(), [](const auto& x, const auto& y) { return x.at < y.at; });
  return s;
}

// ---- manual control ----

asio::awaitable<ControlOutcome> Instance::wake_manually(Duration hold, std::string who) {
  const auto alive = alive_;
  if (shutting_down_) co_return ControlOutcome{false, "the gateway is shutting down", {}};
  const auto now = Clock::now();
  if (hold > Duration(0)) {
    if (now + hold > hold_until_) {
      hold_until_ = now + hold;
      hold_why_ = "pgnap wake --for " + format_duration(hold) + " (" + who + ")";
    }
  }
  window_skipped_until_ = {};
  PGNAP_LOG(kInfo, context(),
            "manual wake asked by " << who
                                    << (hold > Duration(0) ? ", to stay awake for " + format_duration(hold) : ""));
  if (state_ == InstanceState::kAwake) {
    idle_timer_.cancel();
    arm_idle_timer();
    co_return ControlOutcome{true,
                             "instance \"" + config_.name + "\" is awake" +
                                 (hold > Duration(0) ? "; it stays awake at least " + format_duration(hold) : ""),
                             {}};
  }
  if (state_ == InstanceState::kAsleep || state_ == InstanceState::kFailed) {
    if (operation_ == Operation::kNone && waiters_.empty()) {
      retry_at_ = {};  // an operator's wake does not wait for the backoff
      start_wake("asked by " + who, "manual", WakeCause::kManual, {}, who);
    } else {
      manual_wake_pending_ = true;
      manual_wake_who_ = who;
    }
  } else if (state_ == InstanceState::kSuspending) {
    manual_wake_pending_ = true;
    manual_wake_who_ = who;
  }
  // Until the wake it joined or started has an outcome.
  const auto deadline = Clock::now() + config_.wake_timeout + config_.wake_timeout / 2;
  asio::steady_timer poll(executor_);
  bool saw_wake = state_ == InstanceState::kWaking;
  for (;;) {
    poll.expires_after(kManualWakePoll);
    co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return ControlOutcome{false, "the instance was removed", {}};
    if (shutting_down_) co_return ControlOutcome{false, "the gateway is shutting down", {}};
    if (state_ == InstanceState::kWaking) saw_wake = true;
    if (state_ == InstanceState::kAwake) {
      co_return ControlOutcome{true,
                               "instance \"" + config_.name + "\" is awake" +
                                   (hold > Duration(0) ? "; it stays awake at least " + format_duration(hold) : ""),
                               {}};
    }
    if (saw_wake && state_ == InstanceState::kFailed) {
      co_return ControlOutcome{false, "instance \"" + config_.name + "\" could not be started: " + last_failure_, {}};
    }
    if (Clock::now() > deadline) {
      co_return ControlOutcome{false,
                               "instance \"" + config_.name + "\" is still " + std::string(to_string(state_)) +
                                   "; see pgnap's log",
                               {}};
    }
  }
}

ControlOutcome Instance::sleep_manually(const std::string& who) {
  refresh_activities();
  PGNAP_LOG(kInfo, context(), "manual sleep asked by " << who);
  const std::string name = "instance \"" + config_.name + "\"";
  switch (state_) {
    case InstanceState::kAsleep: return {true, name + " is asleep", {}};
    case InstanceState::kFailed: return {true, name + " is not running (its last wake failed)", {}};
    case InstanceState::kSuspending: return {true, name + " is suspending", {}};
    case InstanceState::kWaking:
    case InstanceState::kAdopting:
      return {false, name + " is " + std::string(to_string(state_)) + "; try again once it is awake", {}};
    case InstanceState::kAwake: break;
  }
  if (shutting_down_) return {false, "the gateway is shutting down", {}};
  if (!waiters_.empty()) return {false, std::to_string(waiters_.size()) + " client(s) wait for " + name, {}};
  if (operation_ != Operation::kNone && operation_ != Operation::kCloseIdleSessions) {
    return {false, name + " is busy (a reachability check); try again in a moment", {}};
  }
  // In use: running something, in a transaction, waiting, listening (unless close_listeners).
  ControlOutcome refused{false, {}, {}};
  for (const SessionEntry* e : entries_) {
    if (e->ignored || e->parked) continue;
    const SessionActivity* a = e->activity;
    const bool in_use = e->waiting || (a != nullptr && (!a->at_rest || (a->listening && !config_.close_listeners)));
    if (in_use) refused.blocking.push_back(e->id);
  }
  if (watched_.size() < sessions_ && refused.blocking.empty()) {
    return {false, name + ": a session is connecting; try again in a moment", {}};
  }
  if (!refused.blocking.empty()) {
    refused.message = name + " stays awake: " + std::to_string(refused.blocking.size()) +
                      " session(s) in use (see pgnap status)";
    PGNAP_LOG(kInfo, context(), "manual sleep refused: " << refused.blocking.size() << " session(s) in use");
    return refused;
  }
  hold_until_ = {};
  maintenance_running_ = false;  // a running command goes on; it no longer holds the instance
  if (auto span = window_at(schedule_.get(), SystemClock::now())) {
    window_skipped_until_ = span->end;  // this window does not wake it again
  }
  const std::string reason = "asked by " + who;
  if (sessions_ == 0) {
    suspend_now(reason);
    return {true, name + " is suspending", {}};
  }
  // Idle sessions only: parked (the authenticating mode) or closed, then the suspend.
  operation_ = Operation::kCloseIdleSessions;
  close_reason_ = reason;
  std::size_t parked = 0;
  std::size_t closed = 0;
  for (SessionActivity* a : std::list<SessionActivity*>(watched_)) {
    if (a->at_rest && !a->parking && a->may_be_parked() && a->park()) {
      ++parked;
      check_idle_at(Clock::now() + std::chrono::seconds(2));  // closed then if its park is refused
    } else if (a->close) {
      a->close();
      ++closed;
    }
  }
  metrics_.idle_sessions_closed(closed);
  return {true,
          name + " suspends once its idle sessions are gone (" + std::to_string(parked) + " parked, " +
              std::to_string(closed) + " closed)",
          {}};
}

}  // namespace pgnap::daemon
