// An instance's lifecycle: adoption, admission and the wait queue, the wake, the suspend and
// the reachability check. The idle decisions are in instance_idle.cpp.
#include "daemon/instance.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "backends/exec_backend.h"
#include "backends/probe.h"
#include "daemon/log.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

namespace sqlstate = protocol::sqlstate;
using config::format_duration;
using config::format_elapsed;

namespace {

// How long past its deadline a failing wake gets to tell its waiters why.
constexpr auto kReasonGrace = std::chrono::milliseconds(250);

// A server that answers 57P03 is shutting down, starting or recovering from a crash: the
// reachability check follows it this long, this often, until it accepts connections again
// or nothing answers any more.
constexpr int kReachabilityAttempts = 60;
constexpr auto kReachabilityInterval = std::chrono::milliseconds(500);

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

std::string_view to_string(InstanceState state) {
  switch (state) {
    case InstanceState::kAdopting: return "adopting";
    case InstanceState::kAsleep: return "asleep";
    case InstanceState::kWaking: return "waking";
    case InstanceState::kAwake: return "awake";
    case InstanceState::kSuspending: return "suspending";
    case InstanceState::kFailed: return "failed";
  }
  return "?";
}

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
  std::string cause;  // what the client needs the server for (a wake's cause)
  ClientIdentity client;
};

// ---- Instance ----

Instance::Instance(asio::any_io_executor executor, config::InstanceConfig config,
                   std::unique_ptr<backends::Backend> backend, InstanceTuning tuning)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      backend_(std::move(backend)),
      tuning_(tuning),
      metrics_(config_.name, config_.accounting),
      state_since_(Clock::now()),
      idle_timer_(executor_),
      schedule_timer_(executor_) {
  load_schedule();
}

Instance::~Instance() { *alive_ = false; }

bool Instance::change_state(InstanceState next, const std::string& reason) {
  const InstanceState previous = state_;
  if (!legal_transition(previous, next)) {
    PGNAP_LOG(kError, context(),
              "internal error: refused the state change " << to_string(previous) << " -> " << to_string(next) << " ("
                                                          << reason << ")");
    return false;
  }
  state_ = next;
  state_since_ = Clock::now();
  state_since_wall_ = std::chrono::system_clock::now();
  if (next == InstanceState::kAsleep) {
    asleep_since_ = state_since_wall_;
    // Found asleep at start-up: asleep since the ledger last saw it running.
    if (previous == InstanceState::kAdopting && last_awake_ && *last_awake_ < asleep_since_)
      asleep_since_ = *last_awake_;
  }
  // A stop that failed leaves it awake as it was: min_awake still counts from the wake.
  if (next == InstanceState::kAwake && previous != InstanceState::kSuspending) awake_since_ = state_since_;
  metrics_.set_state(to_string(next));
  for (InstanceObserver* observer : observers_) observer->on_state_change(*this, previous, next, reason);
  if (next == InstanceState::kAsleep || next == InstanceState::kFailed || previous == InstanceState::kAdopting) {
    reschedule();
  }
  return true;
}

Refusal Instance::refusal(Refusal::Kind kind, std::string detail, std::string hint) const {
  using Kind = Refusal::Kind;
  switch (kind) {
    case Kind::kShuttingDown:
      return Refusal::make(kind, sqlstate::kAdminShutdown, "the gateway is shutting down", std::move(detail),
                           std::move(hint));
    case Kind::kTooManyWaiting:
      return Refusal::make(kind, sqlstate::kTooManyConnections,
                           "too many clients waiting for instance \"" + config_.name + "\" to start", std::move(detail),
                           std::move(hint));
    case Kind::kNotWokenForClient:
      return Refusal::make(kind, sqlstate::kCannotConnectNow,
                           "instance \"" + config_.name + "\" is asleep and is not woken for this client",
                           std::move(detail), std::move(hint));
    case Kind::kBackingOff:
    case Kind::kWakeFailed:
    case Kind::kWakeTimedOut:
    case Kind::kConnectFailed:
    case Kind::kPoolFull: break;  // made where they happen, with what they know
  }
  return Refusal::make(kind, sqlstate::kCannotConnectNow, "instance \"" + config_.name + "\" could not be started",
                       std::move(detail), std::move(hint));
}

backends::ProbeTarget Instance::probe_target() const {
  const config::BackendAddress& a = config_.address;
  if (a.kind == config::BackendAddress::Kind::kUnix) return {a.socket_dir, a.port};
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

bool Instance::may_suspend() const {
  return state_ == InstanceState::kAwake && waiters_.empty() && !shutting_down_ && operation_ == Operation::kNone;
}

void Instance::on_lease_acquired() {
  ++sessions_;
  metrics_.session_opened();
  // A new session is use: the idle sessions being closed no longer lead to a stop.
  if (operation_ == Operation::kCloseIdleSessions) operation_ = Operation::kNone;
  arm_idle_timer();
}

void Instance::on_lease_released() {
  if (sessions_ > 0) --sessions_;
  metrics_.session_closed();
  last_release_ = Clock::now();
  if (sessions_ > 0) return;
  if (operation_ == Operation::kCloseIdleSessions) {
    operation_ = Operation::kNone;
    if (may_suspend() && !held_until(Clock::now())) {
      suspend_now(close_reason_.empty() ? "idle for " + format_duration(config_.idle_timeout) : close_reason_);
      return;
    }
  }
  arm_idle_timer();
}

asio::awaitable<void> Instance::adopt() {
  const auto probe = co_await backend_->probe(probe_target(), tuning_.adopt_probe_timeout);
  if (probe.ready) {
    change_state(InstanceState::kAwake, "adopted: accepting connections when pgnap started");
    PGNAP_LOG(kInfo, context(), "adopted awake: " << config_.address.to_string() << " accepts connections");
    arm_idle_timer();
    co_return;
  }
  const auto status = co_await backend_->status();
  if (status.state == backends::RunState::kRunning) {
    PGNAP_LOG(kInfo, context(), "adopted starting: the server is running but not accepting connections yet");
    start_wake("found starting at start-up", "adoption", WakeCause::kClient, {}, "found starting at start-up");
    co_return;
  }
  change_state(InstanceState::kAsleep, "adopted: not running when pgnap started");
  if (status.state == backends::RunState::kUnknown && status.detail == backends::kNoStatusCommand) {
    PGNAP_LOG(kInfo, context(), "adopted asleep (nothing answers on its address; no status command to ask)");
  } else if (status.state == backends::RunState::kUnknown) {
    PGNAP_LOG(kWarning, context(), "adopted asleep, but its state is unclear: " << status.detail);
  } else {
    PGNAP_LOG(kInfo, context(), "adopted asleep");
  }
}

asio::awaitable<Admission> Instance::acquire(ClientIdentity client, std::string cause) {
  if (shutting_down_) co_return refusal(Refusal::Kind::kShuttingDown, "");
  if (state_ == InstanceState::kAwake) co_return Lease(this);
  if (state_ != InstanceState::kWaking) {
    if (const config::WakeIgnoreRule* rule = ignored(client)) {
      metrics_.wake_ignored();
      co_return refusal(Refusal::Kind::kNotWokenForClient, "It matches the wake rule " + rule->to_string() + ".",
                        "Such clients are served while the instance is awake and never wake it ([instances." +
                            config_.name + ".wake] ignore).");
    }
  }

  if (state_ == InstanceState::kFailed && Clock::now() < retry_at_) {
    // Fail fast while backing off, as PgBouncer does after a failed server login: a broken
    // instance must not be hammered by every client, nor keep each of them waiting.
    co_return refusal(Refusal::Kind::kBackingOff, last_failure_,
                      "The last start failed " + std::to_string(consecutive_failures_) +
                          " time(s) in a row; pgnap tries again for a client that connects after " +
                          format_elapsed(retry_at_ - Clock::now()) + ". Fix the cause shown above, then reconnect.");
  }
  if (waiters_.size() >= config_.max_waiting) {
    co_return refusal(Refusal::Kind::kTooManyWaiting,
                      std::to_string(waiters_.size()) +
                          " clients are already waiting (max_waiting = " + std::to_string(config_.max_waiting) + ")",
                      "Retry in a moment, or raise max_waiting for this instance.");
  }

  Waiter waiter(executor_);
  waiter.position = waiters_.insert(waiters_.end(), &waiter);
  waiter.queued = true;
  waiter.cause = cause;
  waiter.client = client;
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
    start_wake("database \"" + client.database + "\", client " + client.address + ", cause: " + cause, cause,
               WakeCause::kClient, client);
  } else if (state_ == InstanceState::kWaking) {
    ++wake_clients_;
  } else if (state_ == InstanceState::kSuspending) {
    PGNAP_LOG(kDebug, context(),
              "client " << client.address << " queued while suspending; it wakes the instance after the stop");
  }

  // Each client waits at most wake_timeout. When that ends with the wake's own deadline
  // (the client that triggered it), give the wake a moment to report why it failed: its
  // reason is more use to the client than "timed out".
  auto deadline = Clock::now() + config_.wake_timeout;
  if (state_ == InstanceState::kWaking && deadline <= wake_deadline_ + kReasonGrace)
    deadline = wake_deadline_ + kReasonGrace;
  waiter.signal.expires_at(deadline);
  co_await waiter.signal.async_wait(asio::as_tuple(asio::use_awaitable));
  if (waiter.outcome) co_return std::move(*waiter.outcome);
  // The deadline passed (a cancellation by our caller throws out of the co_await above).
  co_return refusal(Refusal::Kind::kWakeTimedOut,
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

void Instance::start_wake(std::string reason, std::string_view cause, WakeCause why, ClientIdentity client,
                          std::string detail) {
  // While a stop (or a probe) is running, queued clients wait for it; its completion starts
  // the wake.
  if (operation_ != Operation::kNone && operation_ != Operation::kCloseIdleSessions) return;
  wake_deadline_ = Clock::now() + config_.wake_timeout;
  wake_requested_ = std::chrono::system_clock::now();
  wake_clients_ = static_cast<std::uint32_t>(waiters_.size());
  wake_cause_ = why;
  wake_client_ = std::move(client);
  wake_detail_ = std::move(detail);
  if (!change_state(InstanceState::kWaking, reason)) return;
  last_wake_ = InstanceStatus::LastWake{wake_requested_, wake_cause_, wake_client_, wake_detail_, ""};
  metrics_.wake_caused(cause);
  launch(Operation::kWake, run_wake(std::move(reason)));
}

void Instance::launch(Operation operation, asio::awaitable<void> body) {
  operation_ = operation;
  // Spawned from a fresh handler, not from inside the caller's coroutine: the operation must
  // not share anything with the client that happened to trigger it (its cancellation above
  // all: a client that gives up must not cancel the wake others wait for).
  asio::post(executor_, [this, alive = alive_, body = std::move(body)]() mutable {
    if (!*alive) return;
    asio::co_spawn(executor_, std::move(body),
                   asio::bind_cancellation_slot(operation_cancel_.slot(), [this, alive](std::exception_ptr error) {
                     if (*alive) on_operation_done(error);
                   }));
  });
}

void Instance::on_operation_done(std::exception_ptr error) {
  operation_ = Operation::kNone;
  if (shutting_down_) return;
  if (error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    }
    PGNAP_LOG(kError, context(), to_string(state_) << " aborted: " << what);
    if (state_ == InstanceState::kWaking) {
      change_state(InstanceState::kFailed, "wake aborted: " + what);
      last_failure_ = "internal error: " + what;
      finish_waiters([this] { return Admission(refusal(Refusal::Kind::kWakeFailed, last_failure_)); });
    } else if (state_ == InstanceState::kSuspending) {
      change_state(InstanceState::kAwake, "suspend aborted: " + what);
    }
  }
  after_operation();
}

void Instance::after_operation() {
  if (!waiters_.empty() && (state_ == InstanceState::kAsleep || state_ == InstanceState::kFailed)) {
    // Counted as caused by what the first of them needs.
    const Waiter& first = *waiters_.front();
    start_wake(std::to_string(waiters_.size()) + " client(s) arrived while it was stopping", first.cause,
               WakeCause::kClient, first.client);
  } else if (manual_wake_pending_ && (state_ == InstanceState::kAsleep || state_ == InstanceState::kFailed)) {
    start_wake("asked by " + manual_wake_who_ + " while it was stopping", "manual", WakeCause::kManual, {},
               manual_wake_who_);
  } else if (state_ == InstanceState::kAwake) {
    finish_waiters([this] { return Admission(Lease(this)); });
    arm_idle_timer();
  }
  manual_wake_pending_ = false;
  reschedule();
}

asio::awaitable<void> Instance::run_wake(std::string reason) {
  PGNAP_LOG(kInfo, context(), "waking (" << reason << ")");
  // The address is resolved by each probe, after the start command has run: a cloud
  // database's host name may not resolve while it is stopped.
  const backends::WakeReport report = co_await backends::wake(*backend_, probe_target(), wake_deadline_);
  if (shutting_down_) co_return;
  const std::string_view outcome = report.ok ? "ok" : report.timed_out ? "timeout" : "failed";
  record_wake(report, outcome);

  if (report.ok) {
    consecutive_failures_ = 0;
    last_failure_.clear();
    change_state(InstanceState::kAwake, "ready after " + std::to_string(report.duration.count()) + " ms");
    PGNAP_LOG(kInfo, context(),
              "ready after " << report.duration.count() << " ms (" << report.detail << "), " << waiters_.size()
                             << " client(s) waited");
    finish_waiters([this] { return Admission(Lease(this)); });
    after_wake_ok();
    co_return;  // after_operation() arms the idle timer
  }

  ++consecutive_failures_;
  last_failure_ = report.detail;
  retry_at_ = Clock::now() + backoff();
  change_state(InstanceState::kFailed,
               std::string(report.timed_out ? "wake timed out: " : "wake failed: ") + first_line(report.detail));
  PGNAP_LOG(kWarning, context(),
            "wake failed after " << report.duration.count() << " ms: " << report.detail
                                 << "\nnext attempt for a client arriving after " << format_elapsed(backoff()));
  const std::string hint = "pgnap tries again for the next client after " + format_elapsed(backoff()) +
                           ". Fix the cause shown above (pgnap's log has the full story).";
  const auto kind = report.timed_out ? Refusal::Kind::kWakeTimedOut : Refusal::Kind::kWakeFailed;
  finish_waiters([&] { return Admission(refusal(kind, last_failure_, hint)); });
  if (report.timed_out && report.started) co_await stop_unready_server();
}

void Instance::record_wake(const backends::WakeReport& report, std::string_view outcome) {
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                          (wake_deadline_ - config_.wake_timeout));
  metrics_.wake_finished(outcome, static_cast<double>(took.count()) / 1000.0, report.started);
  if (last_wake_) last_wake_->outcome = std::string(outcome);
  if (observers_.empty()) return;
  const InstanceObserver::Wake record{wake_requested_,
                                      std::chrono::system_clock::now(),
                                      took,
                                      std::string(outcome),
                                      report.started,
                                      wake_clients_,
                                      report.ok ? report.detail : report.detail.substr(0, 2000),
                                      wake_cause_,
                                      wake_client_,
                                      wake_detail_};
  for (InstanceObserver* observer : observers_) observer->on_wake(*this, record);
}

asio::awaitable<void> Instance::stop_unready_server() {
  // Leave nothing half-started behind: a server that comes up later would otherwise run
  // unaccounted and never be suspended.
  const auto status = co_await backend_->status();
  if (status.state != backends::RunState::kRunning || shutting_down_) co_return;
  change_state(InstanceState::kSuspending, "stopping the server that did not become ready in time");
  PGNAP_LOG(kInfo, context(), "stopping the server that did not become ready in time");
  const auto stopped = co_await backend_->stop(Clock::now() + stop_budget());
  if (!stopped.ok) PGNAP_LOG(kWarning, context(), "could not stop it: " << stopped.detail);
  if (shutting_down_) co_return;
  change_state(InstanceState::kFailed,
               stopped.ok ? "stopped after the failed wake" : "stop after the failed wake failed");
}

void Instance::suspend_now(const std::string& reason) {
  if (!change_state(InstanceState::kSuspending, reason)) return;
  launch(Operation::kSuspend, run_suspend(reason));
}

asio::awaitable<void> Instance::run_suspend(std::string reason) {
  const auto awake_for = Clock::now() - awake_since_;
  PGNAP_LOG(kInfo, context(), reason << " with no sessions, suspending");
  const auto stopped = co_await backend_->stop(Clock::now() + stop_budget());
  if (shutting_down_) co_return;
  if (stopped.ok) {
    metrics_.suspended("idle");
    change_state(InstanceState::kAsleep, "stopped after " + reason);
    PGNAP_LOG(kInfo, context(), "asleep (was awake for " << format_elapsed(awake_for) << ")");
    co_return;
  }
  const auto status = co_await backend_->status();
  if (shutting_down_) co_return;
  if (status.state == backends::RunState::kStopped) {
    metrics_.suspended("idle");
    change_state(InstanceState::kAsleep, "stopped after " + reason + " (the stop command failed)");
    PGNAP_LOG(kWarning, context(), "asleep, although the stop command failed: " << stopped.detail);
  } else {
    // The idle timer tries again later (after_operation re-arms it).
    PGNAP_LOG(kError, context(), "suspend failed, staying awake: " << stopped.detail);
    change_state(InstanceState::kAwake, "suspend failed: " + first_line(stopped.detail));
  }
}

void Instance::report_unreachable(const std::string& why) {
  if (!mark_stopped_without_pgnap(why)) return;
  // A running reachability check has its answer: end it, so a wake can start at once.
  if (operation_ == Operation::kCheckReachable) operation_cancel_.emit(asio::cancellation_type::terminal);
}

bool Instance::mark_stopped_without_pgnap(const std::string& why) {
  if (state_ != InstanceState::kAwake) return false;
  idle_timer_.cancel();
  metrics_.unexpected_stop();
  change_state(InstanceState::kAsleep, "stopped without pgnap (" + why + ")");
  PGNAP_LOG(kWarning, context(), "stopped without pgnap (" << why << "); the next client wakes it");
  return true;
}

void Instance::check_reachable(std::string why) {
  if (state_ != InstanceState::kAwake || operation_ != Operation::kNone || shutting_down_) return;
  launch(Operation::kCheckReachable, run_reachability_check(std::move(why)));
}

asio::awaitable<void> Instance::run_reachability_check(std::string why) {
  const auto alive = alive_;  // the instance may be removed (a reload) while this waits
  const auto since = state_since_;
  for (int attempt = 0; attempt < kReachabilityAttempts; ++attempt) {
    if (attempt > 0) {
      asio::steady_timer pause(executor_, kReachabilityInterval);
      const auto [ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || !*alive) co_return;  // ended by report_unreachable(), or the instance is gone
    }
    // The state moved on (a suspend, a client that found out first): nothing to report.
    if (state_ != InstanceState::kAwake || state_since_ != since || shutting_down_) co_return;
    const auto probe = co_await backend_->probe(probe_target(), tuning_.adopt_probe_timeout);
    if (!*alive || probe.ready || state_since_ != since) co_return;
    if (probe.answered) continue;
    mark_stopped_without_pgnap(why + ", and then " + first_line(probe.detail));
    co_return;
  }
}

void Instance::reconfigure(const config::InstanceConfig& next) {
  config_ = config::merge_live(config_, next);
  metrics_.set_accounting(config_.accounting);
  load_schedule();
  reschedule();
  // A new idle_timeout or min_awake counts from now for an idle instance.
  if (state_ == InstanceState::kAwake && waiters_.empty()) arm_idle_timer();
}

void Instance::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  idle_timer_.cancel();
  schedule_timer_.cancel();
  operation_cancel_.emit(asio::cancellation_type::terminal);
  finish_waiters([this] { return Admission(refusal(Refusal::Kind::kShuttingDown, "")); });
}

asio::awaitable<void> Instance::suspend_for_exit() {
  if (!config_.suspend_on_exit || state_ != InstanceState::kAwake || sessions_ > 0) co_return;
  PGNAP_LOG(kInfo, context(), "suspending on exit (suspend_on_exit = true)");
  const auto stopped = co_await backend_->stop(Clock::now() + stop_budget());
  if (!stopped.ok) {
    PGNAP_LOG(kWarning, context(), "could not suspend on exit: " << stopped.detail);
    co_return;
  }
  metrics_.suspended("exit");
  change_state(InstanceState::kAsleep, "suspended on exit");
  PGNAP_LOG(kInfo, context(), "asleep");
}

}  // namespace pgnap::daemon
