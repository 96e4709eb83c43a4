#include "daemon/instance.h"

#include <algorithm>
#include <functional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "backends/exec_backend.h"
#include "backends/probe.h"
#include "backends/wake.h"
#include "daemon/log.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

namespace sqlstate = protocol::sqlstate;

std::string_view to_string(InstanceState state) {
  switch (state) {
    case InstanceState::kAsleep: return "asleep";
    case InstanceState::kWaking: return "waking";
    case InstanceState::kAwake: return "awake";
    case InstanceState::kSuspending: return "suspending";
    case InstanceState::kFailed: return "failed";
  }
  return "?";
}

namespace {

// How long past its deadline a failing wake gets to tell its waiters why.
constexpr auto kReasonGrace = std::chrono::milliseconds(250);

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

std::string human(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  if (ms < std::chrono::seconds(10)) return ms_text(d);
  return format_duration(std::chrono::duration_cast<std::chrono::seconds>(ms));
}

}  // namespace

// ---- Lease ----

Lease::Lease(Instance* instance) : instance_(instance) { instance_->on_lease_acquired(); }

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    instance_ = std::exchange(other.instance_, nullptr);
  }
  return *this;
}

void Lease::release() {
  if (instance_ != nullptr) std::exchange(instance_, nullptr)->on_lease_released();
}

// ---- Waiter ----

// A client queued for a wake. Lives in the acquire() coroutine's frame; the instance only
// points at it while it is queued.
struct Instance::Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : signal(executor) {}
  asio::steady_timer signal;  // expires at the client's deadline; cancelled when decided
  std::optional<Admission> outcome;
  std::list<Waiter*>::iterator position;
  bool queued = false;
};

// ---- Instance ----

Instance::Instance(asio::any_io_executor executor, InstanceConfig config, std::unique_ptr<backends::Backend> backend,
                   InstanceTuning tuning)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      backend_(std::move(backend)),
      tuning_(tuning),
      metrics_(config_.name, config_.accounting),
      idle_timer_(executor_),
      state_since_(Clock::now()) {}

Instance::~Instance() { *alive_ = false; }

void Instance::set_state(InstanceState next, const std::string& reason) {
  const InstanceState previous = state_;
  state_ = next;
  state_since_ = Clock::now();
  metrics_.set_state(to_string(next));
  if (observer_ != nullptr) observer_->on_state_change(*this, previous, next, reason);
}

Refusal Instance::refusal(std::string_view code, std::string detail, std::string hint) const {
  Refusal r{code, {}, std::move(detail), std::move(hint)};
  if (code == sqlstate::kAdminShutdown) {
    r.message = "the gateway is shutting down";
  } else if (code == sqlstate::kTooManyConnections) {
    r.message = "too many clients waiting for instance \"" + config_.name + "\" to start";
  } else {
    r.message = "instance \"" + config_.name + "\" could not be started";
  }
  return r;
}

backends::ProbeTarget Instance::probe_target() const {
  const BackendAddress& a = config_.address;
  if (a.kind == BackendAddress::Kind::kUnix) return {a.socket_dir, a.port};
  return {a.host, a.port};
}

std::chrono::milliseconds Instance::stop_budget() const {
  // The driver's own stop timeout, unless the tuning (tests) asks for less.
  return std::min(backend_->stop_budget(), tuning_.stop_timeout);
}

std::chrono::milliseconds Instance::backoff() const {
  if (consecutive_failures_ == 0) return std::chrono::milliseconds(0);
  auto d = tuning_.backoff_initial;
  for (std::uint32_t i = 1; i < consecutive_failures_ && d < tuning_.backoff_max; ++i) d *= 2;
  return std::min(d, tuning_.backoff_max);
}

void Instance::on_lease_acquired() {
  ++sessions_;
  metrics_.session_opened();
  suspend_when_closed_ = false;  // a new session is use
  arm_idle_timer();
}

void Instance::on_lease_released() {
  if (sessions_ > 0) --sessions_;
  metrics_.session_closed();
  last_release_ = Clock::now();
  if (sessions_ > 0) return;
  if (std::exchange(suspend_when_closed_, false) && state_ == InstanceState::kAwake && waiters_.empty() &&
      !shutting_down_ && !operation_running_) {
    suspend_now("idle for " + format_duration(config_.idle_timeout));
    return;
  }
  arm_idle_timer();
}

void Instance::watch_session(SessionActivity* activity) { watched_.push_back(activity); }

void Instance::unwatch_session(SessionActivity* activity) { watched_.remove(activity); }

asio::awaitable<void> Instance::adopt() {
  const auto probe = co_await backend_->probe(probe_target(), tuning_.adopt_probe_timeout);
  if (probe.ready) {
    set_state(InstanceState::kAwake, "adopted: accepting connections when pgnap started");
    awake_since_ = Clock::now();
    PGNAP_LOG(kInfo, context(), "adopted awake: " << config_.address.to_string() << " accepts connections");
    arm_idle_timer();
    co_return;
  }
  const auto status = co_await backend_->status();
  if (status.state == backends::RunState::kRunning) {
    PGNAP_LOG(kInfo, context(), "adopted starting: the server is running but not accepting connections yet");
    start_wake("found starting at start-up");
    co_return;
  }
  set_state(InstanceState::kAsleep, "adopted: not running when pgnap started");
  if (status.state == backends::RunState::kUnknown && status.detail == backends::kNoStatusCommand) {
    PGNAP_LOG(kInfo, context(), "adopted asleep (nothing answers on its address; no status command to ask)");
  } else if (status.state == backends::RunState::kUnknown) {
    PGNAP_LOG(kWarning, context(), "adopted asleep, but its state is unclear: " << status.detail);
  } else {
    PGNAP_LOG(kInfo, context(), "adopted asleep");
  }
}

asio::awaitable<Admission> Instance::acquire(std::string_view database, std::string_view client) {
  if (shutting_down_) co_return refusal(sqlstate::kAdminShutdown, "");
  if (state_ == InstanceState::kAwake) co_return Lease(this);

  if (state_ == InstanceState::kFailed && Clock::now() < retry_at_) {
    // Fail fast while backing off, as PgBouncer does after a failed server login: a broken
    // instance must not be hammered by every client, nor keep each of them waiting.
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - Clock::now());
    co_return refusal(sqlstate::kCannotConnectNow, last_failure_,
                      "The last start failed " + std::to_string(consecutive_failures_) +
                          " time(s) in a row; pgnap tries again for a client that connects after " +
                          ms_text(wait) + ". Fix the cause shown above, then reconnect.");
  }
  if (waiters_.size() >= config_.max_waiting) {
    co_return refusal(sqlstate::kTooManyConnections,
                      std::to_string(waiters_.size()) + " clients are already waiting (max_waiting = " +
                          std::to_string(config_.max_waiting) + ")",
                      "Retry in a moment, or raise max_waiting for this instance.");
  }

  Waiter waiter(executor_);
  waiter.position = waiters_.insert(waiters_.end(), &waiter);
  waiter.queued = true;
  metrics_.set_waiting(waiters_.size());
  // However the wait ends (served, refused, timed out, or the client left), it leaves the
  // queue and its duration is observed.
  struct Unqueue {
    Instance* self;
    Waiter* w;
    Clock::time_point since;
    ~Unqueue() {
      if (w->queued) {
        self->waiters_.erase(w->position);
        w->queued = false;
      }
      self->metrics_.set_waiting(self->waiters_.size());
      self->metrics_.client_waited(std::chrono::duration<double>(Clock::now() - since).count());
    }
  } unqueue{this, &waiter, Clock::now()};

  if (state_ == InstanceState::kAsleep || state_ == InstanceState::kFailed) {
    start_wake("database \"" + std::string(database) + "\", client " + std::string(client));
  } else if (state_ == InstanceState::kWaking) {
    ++wake_clients_;
  } else if (state_ == InstanceState::kSuspending) {
    PGNAP_LOG(kDebug, context(), "client " << client << " queued while suspending; it wakes the instance after the stop");
  }

  // Each client waits at most wake_timeout. When that ends with the wake's own deadline
  // (the client that triggered it), give the wake a moment to report why it failed: its
  // reason is more use to the client than "timed out".
  auto deadline = Clock::now() + config_.wake_timeout;
  if (state_ == InstanceState::kWaking && deadline <= wake_deadline_ + kReasonGrace) deadline = wake_deadline_ + kReasonGrace;
  waiter.signal.expires_at(deadline);
  co_await waiter.signal.async_wait(asio::as_tuple(asio::use_awaitable));
  if (waiter.outcome) co_return std::move(*waiter.outcome);
  // The deadline passed (a cancellation by our caller throws out of the co_await above).
  co_return refusal(sqlstate::kCannotConnectNow,
                    "it did not become ready within wake_timeout (" + format_duration(config_.wake_timeout) + ")",
                    "The start is still in progress or stuck; see pgnap's log. Raise wake_timeout if the "
                    "instance needs longer to start.");
}

void Instance::finish_waiters(const std::function<Admission()>& outcome) {
  std::list<Waiter*> decided;
  decided.swap(waiters_);
  metrics_.set_waiting(0);
  for (Waiter* w : decided) {
    w->queued = false;
    w->outcome = outcome();
    w->signal.cancel();
  }
}

void Instance::start_wake(std::string reason) {
  // While a stop is running, queued clients wait for it; its completion starts the wake.
  if (operation_running_) return;
  wake_deadline_ = Clock::now() + config_.wake_timeout;
  wake_requested_ = std::chrono::system_clock::now();
  wake_clients_ = static_cast<std::uint32_t>(waiters_.size());
  set_state(InstanceState::kWaking, reason);
  launch(run_wake(std::move(reason)));
}

void Instance::launch(asio::awaitable<void> operation) {
  operation_running_ = true;
  // Spawned from a fresh handler, not from inside the caller's coroutine: the operation must
  // not share anything with the client that happened to trigger it (its cancellation above
  // all: a client that gives up must not cancel the wake others wait for).
  asio::post(executor_, [this, alive = alive_, operation = std::move(operation)]() mutable {
  if (!*alive) return;
  asio::co_spawn(executor_, std::move(operation),
                 asio::bind_cancellation_slot(operation_cancel_.slot(), [this, alive = alive_](std::exception_ptr e) {
                   if (!*alive) return;
                   operation_running_ = false;
                   if (shutting_down_) return;
                   if (e) {
                     std::string what = "unknown error";
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       what = ex.what();
                     }
                     PGNAP_LOG(kError, context(), to_string(state_) << " aborted: " << what);
                     if (state_ == InstanceState::kWaking) {
                       set_state(InstanceState::kFailed, "wake aborted: " + what);
                       last_failure_ = "internal error: " + what;
                       finish_waiters([this] { return Admission(refusal(sqlstate::kCannotConnectNow, last_failure_)); });
                     } else if (state_ == InstanceState::kSuspending) {
                       set_state(InstanceState::kAwake, "suspend aborted: " + what);
                     }
                   }
                   after_operation();
                 }));
  });
}

void Instance::after_operation() {
  if (!waiters_.empty() && (state_ == InstanceState::kAsleep || state_ == InstanceState::kFailed)) {
    start_wake(std::to_string(waiters_.size()) + " client(s) arrived while it was stopping");
  } else if (state_ == InstanceState::kAwake) {
    finish_waiters([this] { return Admission(Lease(this)); });
    arm_idle_timer();
  }
}

asio::awaitable<void> Instance::run_wake(std::string reason) {
  PGNAP_LOG(kInfo, context(), "waking (" << reason << ")");
  const auto deadline = wake_deadline_;
  // The address is resolved by each probe, after the start command has run: a cloud
  // database's host name may not resolve while it is stopped.
  const backends::WakeReport report = co_await backends::wake(*backend_, probe_target(), deadline);
  if (shutting_down_) co_return;

  const auto wake_took = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - (wake_deadline_ - config_.wake_timeout));
  metrics_.wake_finished(report.ok ? "ok" : report.timed_out ? "timeout" : "failed",
                         static_cast<double>(wake_took.count()) / 1000.0, report.started);
  if (observer_ != nullptr) {
    const InstanceObserver::Wake record{wake_requested_,
                                        std::chrono::system_clock::now(),
                                        std::chrono::duration_cast<std::chrono::milliseconds>(
                                            Clock::now() - (wake_deadline_ - config_.wake_timeout)),
                                        report.ok ? "ok" : report.timed_out ? "timeout" : "failed",
                                        report.started,
                                        wake_clients_,
                                        report.ok ? report.detail : report.detail.substr(0, 2000)};
    observer_->on_wake(*this, record);
  }

  if (report.ok) {
    consecutive_failures_ = 0;
    last_failure_.clear();
    set_state(InstanceState::kAwake, "ready after " + std::to_string(report.duration.count()) + " ms");
    awake_since_ = Clock::now();
    const auto waiting = waiters_.size();
    PGNAP_LOG(kInfo, context(), "ready after " << report.duration.count() << " ms (" << report.detail << "), "
                                               << waiting << " client(s) waited");
    finish_waiters([this] { return Admission(Lease(this)); });
    co_return;  // after_operation() arms the idle timer
  }

  ++consecutive_failures_;
  last_failure_ = report.detail;
  retry_at_ = Clock::now() + backoff();
  set_state(InstanceState::kFailed, std::string(report.timed_out ? "wake timed out: " : "wake failed: ") +
                                        report.detail.substr(0, report.detail.find('\n')));
  PGNAP_LOG(kWarning, context(), "wake failed after " << report.duration.count() << " ms: " << report.detail
                                                      << "\nnext attempt for a client arriving after "
                                                      << ms_text(backoff()));
  const std::string hint = "pgnap tries again for the next client after " + ms_text(backoff()) +
                           ". Fix the cause shown above (pgnap's log has the full story).";
  finish_waiters([&] { return Admission(refusal(sqlstate::kCannotConnectNow, last_failure_, hint)); });

  if (report.timed_out && report.started) {
    // Leave nothing half-started behind: a server that comes up later would otherwise run
    // unaccounted and never be suspended.
    const auto status = co_await backend_->status();
    if (status.state == backends::RunState::kRunning && !shutting_down_) {
      set_state(InstanceState::kSuspending, "stopping the server that did not become ready in time");
      PGNAP_LOG(kInfo, context(), "stopping the server that did not become ready in time");
      const auto stopped = co_await backend_->stop(Clock::now() + stop_budget());
      if (!stopped.ok) PGNAP_LOG(kWarning, context(), "could not stop it: " << stopped.detail);
      if (shutting_down_) co_return;
      set_state(InstanceState::kFailed, stopped.ok ? "stopped after the failed wake" : "stop after the failed wake failed");
    }
  }
}

void Instance::arm_idle_timer() {
  if (state_ != InstanceState::kAwake || !waiters_.empty() || shutting_down_) return;
  const auto now = Clock::now();
  Clock::time_point at = std::max(now + config_.idle_timeout, awake_since_ + config_.min_awake);
  if (sessions_ > 0) {
    // Open sessions keep it awake, unless idle_session_timeout lets idle ones be closed: look
    // again once the newest of them could have been idle that long (on_idle_timer() then
    // finds the exact moment, or looks again later).
    const Duration rest = config_.effective_idle_session_timeout();
    if (rest <= Duration(0)) {
      idle_timer_.cancel();
      return;
    }
    at = now + rest;
  }
  idle_timer_.expires_at(at);
  idle_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    on_idle_timer();
  });
}

std::optional<Clock::time_point> Instance::idle_sessions_deadline() const {
  const Duration rest = config_.effective_idle_session_timeout();
  // A session still connecting or authenticating is not watched yet: in use.
  if (rest <= Duration(0) || watched_.size() < sessions_) return std::nullopt;
  Clock::time_point idle_since = last_release_;
  for (const SessionActivity* a : watched_) {
    if (!a->at_rest || (a->listening && !config_.close_listeners)) return std::nullopt;
    idle_since = std::max(idle_since, a->last_traffic + rest);
  }
  return std::max(idle_since + config_.idle_timeout, awake_since_ + config_.min_awake);
}

void Instance::on_idle_timer() {
  if (state_ != InstanceState::kAwake || !waiters_.empty() || shutting_down_ || operation_running_) return;
  const std::string reason = "idle for " + format_duration(config_.idle_timeout);
  if (sessions_ == 0) {
    suspend_now(reason);
    return;
  }
  const auto now = Clock::now();
  const auto deadline = idle_sessions_deadline();
  if (!deadline || *deadline > now) {
    // In use, or not idle long enough yet: look again then (or after idle_session_timeout).
    idle_timer_.expires_at(deadline ? *deadline : now + config_.effective_idle_session_timeout());
    idle_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
      if (ec || !*alive) return;
      on_idle_timer();
    });
    return;
  }
  // Every session left is only open: close them (each says why to its client), and suspend
  // as soon as the last one is gone.
  std::size_t closed = 0;
  for (SessionActivity* a : std::list<SessionActivity*>(watched_)) {
    if (a->close) {
      a->close();
      ++closed;
    }
  }
  metrics_.idle_sessions_closed(closed);
  PGNAP_LOG(kInfo, context(), "closed " << closed << " idle session(s) so that it can sleep (no traffic for "
                                        << format_duration(config_.effective_idle_session_timeout()) << ")");
  suspend_when_closed_ = true;
}

void Instance::suspend_now(const std::string& reason) {
  set_state(InstanceState::kSuspending, reason);
  launch(run_suspend(reason));
}

asio::awaitable<void> Instance::run_suspend(std::string reason) {
  const auto awake_for = Clock::now() - awake_since_;
  PGNAP_LOG(kInfo, context(), reason << " with no sessions, suspending");
  const auto stopped = co_await backend_->stop(Clock::now() + stop_budget());
  if (shutting_down_) co_return;
  if (stopped.ok) {
    metrics_.suspended("idle");
    set_state(InstanceState::kAsleep, "stopped after " + reason);
    PGNAP_LOG(kInfo, context(), "asleep (was awake for " << human(awake_for) << ")");
  } else {
    const auto status = co_await backend_->status();
    if (shutting_down_) co_return;
    if (status.state == backends::RunState::kStopped) {
      metrics_.suspended("idle");
      set_state(InstanceState::kAsleep, "stopped after " + reason + " (the stop command failed)");
      PGNAP_LOG(kWarning, context(), "asleep, although the stop command failed: " << stopped.detail);
    } else {
      // The idle timer tries again later (after_operation re-arms it).
      PGNAP_LOG(kError, context(), "suspend failed, staying awake: " << stopped.detail);
      set_state(InstanceState::kAwake, "suspend failed: " + stopped.detail.substr(0, stopped.detail.find('\n')));
    }
  }
}

void Instance::report_unreachable(const std::string& why) {
  if (state_ != InstanceState::kAwake) return;
  idle_timer_.cancel();
  metrics_.unexpected_stop();
  set_state(InstanceState::kAsleep, "stopped without pgnap (" + why + ")");
  PGNAP_LOG(kWarning, context(), "stopped without pgnap (" << why << "); the next client wakes it");
}

void Instance::check_reachable(std::string why) {
  if (state_ != InstanceState::kAwake || checking_reachable_ || shutting_down_) return;
  checking_reachable_ = true;
  // Posted, like launch(): the probe must not share the cancellation of the session that
  // asked for it, which is ending.
  asio::post(executor_, [this, alive = alive_, why = std::move(why)]() mutable {
    if (!*alive) return;
    auto check = [](Instance* self, std::shared_ptr<bool> alive, std::string why) -> asio::awaitable<void> {
      const auto since = self->state_since_;
      // A server that answers 57P03 is shutting down, starting or recovering from a crash:
      // follow it until it accepts connections again or nothing answers any more.
      constexpr int kAttempts = 60;
      constexpr auto kInterval = std::chrono::milliseconds(500);
      for (int attempt = 0; attempt < kAttempts; ++attempt) {
        if (attempt > 0) {
          asio::steady_timer pause(self->executor_, kInterval);
          co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
          if (!*alive) co_return;
        }
        // The state moved on (a suspend, a client that found out first): nothing to report.
        if (self->state_ != InstanceState::kAwake || self->state_since_ != since || self->shutting_down_) co_return;
        const auto probe = co_await self->backend_->probe(self->probe_target(), self->tuning_.adopt_probe_timeout);
        if (!*alive) co_return;
        if (probe.ready) co_return;
        if (probe.answered) continue;
        if (self->state_since_ != since) co_return;
        self->report_unreachable(why + ", and then " + probe.detail.substr(0, probe.detail.find('\n')));
        co_return;
      }
    };
    asio::co_spawn(executor_, check(this, alive, std::move(why)), [this, alive](std::exception_ptr) {
      if (*alive) checking_reachable_ = false;
    });
  });
}

void Instance::reconfigure(const InstanceConfig& next) {
  const BackendAddress address = config_.address;
  const std::string backend = config_.backend;
  const PgCtlConfig pg_ctl = config_.pg_ctl;
  const ExecConfig exec = config_.exec;
  const SystemdConfig systemd = config_.systemd;
  config_ = next;
  config_.address = address;
  config_.backend = backend;
  config_.pg_ctl = pg_ctl;
  config_.exec = exec;
  config_.systemd = systemd;
  metrics_.set_accounting(config_.accounting);
  // A new idle_timeout or min_awake counts from now for an idle instance.
  if (state_ == InstanceState::kAwake && waiters_.empty()) arm_idle_timer();
}

void Instance::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  idle_timer_.cancel();
  operation_cancel_.emit(asio::cancellation_type::terminal);
  finish_waiters([this] { return Admission(refusal(sqlstate::kAdminShutdown, "")); });
}

asio::awaitable<void> Instance::suspend_for_exit() {
  if (!config_.suspend_on_exit || state_ != InstanceState::kAwake || sessions_ > 0) co_return;
  PGNAP_LOG(kInfo, context(), "suspending on exit (suspend_on_exit = true)");
  const auto stopped = co_await backend_->stop(Clock::now() + stop_budget());
  if (stopped.ok) {
    metrics_.suspended("exit");
    set_state(InstanceState::kAsleep, "suspended on exit");
    PGNAP_LOG(kInfo, context(), "asleep");
  } else {
    PGNAP_LOG(kWarning, context(), "could not suspend on exit: " << stopped.detail);
  }
}

}  // namespace pgnap::daemon
