// One backing PostgreSQL instance: its lifecycle (daemon/instance_state.h), the clients
// waiting for it, and the sessions using it.
//
// Clients ask for admission with acquire(): an awake instance admits at once; otherwise the
// client joins a bounded queue (max_waiting) with a deadline (wake_timeout) and the first
// one starts the single wake all of them share. Admission is a Lease: while any lease is
// held the instance never suspends; the idle timer starts when the last one is released
// (instance_idle.cpp decides when sessions that are only open may be closed for it).
//
// Beside its state, an instance runs at most one operation at a time (a wake, a stop, a
// reachability probe, or closing idle sessions before a stop), held as a value; when it
// completes, after_operation() decides what comes next.
//
// Everything runs on the one io_context thread, so the state needs no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include "backends/backend.h"
#include "backends/wake.h"
#include "config/config.h"
#include "daemon/instance_state.h"
#include "daemon/refusal.h"
#include "daemon/session_activity.h"
#include "metrics/instance_metrics.h"

namespace pgnap::daemon {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class Instance;
struct InstanceSchedule;  // instance_schedule.h

// A session's claim on an awake instance. Move-only; releasing it (or destroying it) tells
// the instance the session is over.
class Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept : instance_(std::exchange(other.instance_, nullptr)) {}
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { release(); }

  void release();
  [[nodiscard]] explicit operator bool() const { return instance_ != nullptr; }
  [[nodiscard]] Instance* instance() const { return instance_; }

 private:
  friend class Instance;
  explicit Lease(Instance* instance);
  Instance* instance_ = nullptr;
};

using Admission = std::variant<Lease, Refusal>;

// What caused a wake, as the ledger records it.
enum class WakeCause { kClient, kManual, kWindow, kMaintenance };
[[nodiscard]] std::string_view to_string(WakeCause cause);

// One session of the instance as `pgnap status` shows it.
struct SessionStatus {
  std::uint64_t id = 0;
  ClientIdentity client;
  std::string state;  // connected | waiting | active | idle in transaction | idle | parked | listening
  std::chrono::milliseconds idle_for{0};
  std::chrono::milliseconds connected_for{0};
  bool keeps_awake = false;
  std::string why;  // why it keeps the instance awake, or why not
};

// An instance as `pgnap status` shows it.
struct InstanceStatus {
  struct LastWake {
    std::chrono::system_clock::time_point at{};
    WakeCause cause = WakeCause::kClient;
    ClientIdentity client;  // kClient: the client whose need started it
    std::string detail;     // kManual: who asked; kWindow: the window; kMaintenance: why
    std::string outcome;    // "" while it runs, then ok | failed | timeout
  };
  struct Planned {
    std::string what;  // suspend | stay awake until | keep-warm window starts | keep-warm window ends | maintenance
    std::chrono::system_clock::time_point at{};
    std::string detail;
  };
  std::string name;
  std::string state;
  std::chrono::system_clock::time_point since{};
  std::string mode;  // passthrough | gateway
  std::optional<LastWake> last_wake;
  std::vector<Planned> next;  // soonest first
  std::size_t waiting = 0;
  std::vector<SessionStatus> sessions;
};

// The outcome of `pgnap wake` / `pgnap sleep`.
struct ControlOutcome {
  bool ok = false;
  std::string message;                  // what happened, for the operator
  std::vector<std::uint64_t> blocking;  // sleep refused: the sessions in use (ids of InstanceStatus::sessions)
};

// What an instance tells the outside world (the ledger; the authenticating mode's caches and
// connections). Called on the event loop thread at the moment of the event: implementations
// must not block.
class InstanceObserver {
 public:
  struct Wake {
    std::chrono::system_clock::time_point requested;
    std::chrono::system_clock::time_point finished;
    std::chrono::milliseconds duration{0};  // measured on the monotonic clock
    std::string outcome;                    // ok | failed | timeout
    bool started = false;                   // the start command ran (false: found running)
    std::uint32_t clients_waited = 0;
    std::string detail;
    WakeCause cause = WakeCause::kClient;
    ClientIdentity client;     // kClient: the client whose need started it
    std::string cause_detail;  // kManual: who asked ("uid 1000"); kWindow: the window; kMaintenance: why
  };
  // A maintenance wake's command ended (or could not run).
  struct Maintenance {
    std::chrono::system_clock::time_point started;
    std::chrono::system_clock::time_point finished;
    std::vector<std::string> command;
    int exit_status = -1;     // the command's exit status; -1 when it did not exit (killed, timed out, not run)
    std::string outcome;      // ok | failed | timeout | not run
    std::string output_tail;  // the last lines of its stdout and stderr together (bounded)
  };
  virtual ~InstanceObserver() = default;
  virtual void on_state_change(const Instance& instance, InstanceState from, InstanceState to,
                               const std::string& reason) = 0;
  virtual void on_wake(const Instance& instance, const Wake& wake) = 0;
  virtual void on_maintenance(const Instance& /*instance*/, const Maintenance& /*run*/) {}
};

// Timing knobs that are not in the config (tests shorten them).
struct InstanceTuning {
  std::chrono::milliseconds backoff_initial{1000};                 // after the first failed wake
  std::chrono::milliseconds backoff_max{30000};                    // doubling per consecutive failure, up to this
  std::chrono::milliseconds stop_timeout{std::chrono::hours(24)};  // caps the driver's own stop timeout
  std::chrono::milliseconds adopt_probe_timeout{1000};
};

class Instance {
 public:
  // Sessions whose bytes are in the kernel relay: their use read from it (SessionActivity::refresh).
  void refresh_activities() const;
  Instance(asio::any_io_executor executor, config::InstanceConfig config, std::unique_ptr<backends::Backend> backend,
           InstanceTuning tuning = {});
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  [[nodiscard]] const std::string& name() const { return config_.name; }
  [[nodiscard]] const config::InstanceConfig& config() const { return config_; }
  [[nodiscard]] InstanceState state() const { return state_; }
  [[nodiscard]] std::size_t sessions() const { return sessions_; }
  [[nodiscard]] std::size_t waiting() const { return waiters_.size(); }
  [[nodiscard]] metrics::InstanceMetrics& metrics() { return metrics_; }
  [[nodiscard]] const metrics::InstanceMetrics& metrics() const { return metrics_; }
  [[nodiscard]] backends::Backend& backend() { return *backend_; }
  [[nodiscard]] const asio::any_io_executor& executor() const { return executor_; }
  // Told of every state change and wake, in the order added (the ledger first). Added before
  // adopt(); not owned.
  void add_observer(InstanceObserver* observer) { observers_.push_back(observer); }

  // At start-up: probes and asks the backend, and starts awake or asleep accordingly. Never
  // stops a running server; a server found starting is waited for like a wake.
  asio::awaitable<void> adopt();

  // Admits a client: at once when awake, else after the (shared) wake. `database` and
  // `client` only label the log line of the wake they trigger; `cause` says what in the
  // client needs the server — "connect" (a relayed connection), "query" (a first query in
  // the authenticating mode), "login" (a user to look up, or a first-ever login) — and is
  // counted for the wake it triggers. Cancelling the awaiting coroutine (the client went
  // away) leaves the queue; the wake carries on.
  // A client that a wake rule ignores (`ignored()`) is refused with 57P03 while the instance
  // sleeps or is stopping, and admitted while it wakes or is awake.
  [[nodiscard]] asio::awaitable<Admission> acquire(ClientIdentity client, std::string cause = "connect");

  // A session could not connect although the instance was believed awake: it stopped
  // without pgnap. The next client wakes it again.
  void report_unreachable(const std::string& why);
  // A session's server closed its connection without a reason that shows it alive (no
  // FATAL, or one of class 57: a shutdown, a crash): probes the instance now, and reports it
  // unreachable if nothing answers, rather than leaving that to the next client. At most
  // one such probe at a time.
  void check_reachable(std::string why);

  // A session's traffic, watched while it is relayed: with idle_session_timeout, sessions
  // that are only open (at rest, no traffic) do not keep the instance awake; when the idle
  // timer expires and all of them are so, they are closed and the instance suspends.
  // `activity` must stay valid until unwatch_session().
  void watch_session(SessionActivity* activity);
  void unwatch_session(SessionActivity* activity);
  // Whether a session was in use at any moment since `since` (the measured basis splits idle
  // from busy by it, daemon/usage_sampler.h): one in flight or with traffic since then, one
  // still connecting, a client waiting, a session that ended since, or a maintenance command
  // running. Ignored clients never count.
  [[nodiscard]] bool in_use_since(Clock::time_point since) const;

  // When the ledger last saw it running (start-up): found asleep, it has slept since then, as
  // maintenance.every counts.
  void set_last_awake(std::chrono::system_clock::time_point at) { last_awake_ = at; }

  // Every session of the instance, connected (the authenticating mode, from its login) or
  // relayed (the transparent mode, from its admission) until it ends, for `pgnap status`.
  // `entry` must stay valid until unregister_session().
  void register_session(SessionEntry* entry);
  void unregister_session(SessionEntry* entry);

  // ---- the operator's view and hand (the control socket; daemon/instance_control.cpp) ----
  [[nodiscard]] InstanceStatus status() const;
  // Wakes it now (cause: manual; `who` is logged and recorded) and keeps it awake at least
  // `hold` from now (0: only the usual rules). Completes once it is awake or the wake failed.
  asio::awaitable<ControlOutcome> wake_manually(config::Duration hold, std::string who);
  // Suspends now unless a session is in use: idle sessions are parked or closed first, as for
  // idle_timeout; a session in use refuses it and is named. Ends a `wake --for` hold.
  ControlOutcome sleep_manually(const std::string& who);
  // Whether a wake rule says this client never wakes the instance: the rule, or nullptr.
  [[nodiscard]] const config::WakeIgnoreRule* ignored(const ClientIdentity& client) const;

  // A reload: takes the settings of `next` that apply live (config::merge_live: the schema
  // marks which keys need a restart; those keep their running values).
  void reconfigure(const config::InstanceConfig& next);

  // Refuses new clients (57P01), releases waiters with 57P01, stops timers and any wake.
  void begin_shutdown();
  // On exit, when suspend_on_exit is set and it is awake: a clean stop.
  asio::awaitable<void> suspend_for_exit();

 private:
  friend class Lease;
  struct Waiter;
  // What runs besides the state; at most one at a time.
  enum class Operation {
    kNone,
    kWake,               // run_wake(): the start command and the readiness probe
    kSuspend,            // run_suspend(): the stop command
    kCheckReachable,     // run_reachability_check(): did a server that dropped a session die?
    kCloseIdleSessions,  // idle sessions were told to close: suspend once the last is gone
  };

  // The one place the state changes: refuses (and logs) a transition the lifecycle does not
  // have, leaving the state as it was. Tells the metrics and the observer.
  bool change_state(InstanceState next, const std::string& reason);
  void on_lease_acquired();
  void on_lease_released();
  // Awake, nobody waiting, nothing running, not shutting down: the idle timer may stop it.
  [[nodiscard]] bool may_suspend() const;
  // `cause` labels the metric (connect, query, login, adoption, manual, window,
  // maintenance); `why` is what the ledger and `pgnap status` record.
  void start_wake(std::string reason, std::string_view cause, WakeCause why, ClientIdentity client = {},
                  std::string detail = {});
  // instance_schedule.cpp: holds (wake --for, keep-warm windows, maintenance) and the schedule.
  // The moment until which something keeps it awake regardless of its sessions, if later than `now`.
  [[nodiscard]] std::optional<Clock::time_point> held_until(Clock::time_point now) const;
  [[nodiscard]] std::string hold_reason(Clock::time_point now) const;
  // Looks at the keep-warm windows and maintenance: wakes it when one is due, and arms the
  // schedule timer for the next event.
  void reschedule();
  void on_schedule_timer();
  void load_schedule();
  [[nodiscard]] std::optional<std::chrono::system_clock::time_point> maintenance_due() const;
  asio::awaitable<void> run_maintenance_command();
  void after_wake_ok();
  // Runs `body` as the instance's operation, isolated from whoever triggered it.
  void launch(Operation operation, asio::awaitable<void> body);
  void on_operation_done(std::exception_ptr error);
  void after_operation();
  asio::awaitable<void> run_wake(std::string reason);
  void record_wake(const backends::WakeReport& report, std::string_view outcome);
  asio::awaitable<void> stop_unready_server();
  void finish_waiters(const std::function<Admission()>& outcome);
  asio::awaitable<void> run_suspend(std::string reason);
  void suspend_now(const std::string& reason);
  asio::awaitable<void> run_reachability_check(std::string why);
  // awake → asleep: the server is gone. False when it was not awake.
  bool mark_stopped_without_pgnap(const std::string& why);
  // instance_idle.cpp
  void arm_idle_timer();
  void check_idle_at(Clock::time_point at);
  void on_idle_timer();
  // When the sessions left have all been idle long enough, the moment the instance may
  // suspend; nullopt while one of them is in use (or cannot be closed).
  [[nodiscard]] std::optional<Clock::time_point> idle_sessions_deadline() const;
  // Asks every parkable session idle for idle_session_timeout to park; returns when the next
  // one could be due (nullopt: none is waiting for that).
  std::optional<Clock::time_point> park_idle_sessions(Clock::time_point now);
  void close_idle_sessions();
  // Every session left is a client a wake rule ignores (none is connecting).
  [[nodiscard]] bool only_ignored_sessions() const;

  [[nodiscard]] Refusal refusal(Refusal::Kind kind, std::string detail, std::string hint = {}) const;
  [[nodiscard]] std::chrono::milliseconds backoff() const;
  [[nodiscard]] std::chrono::milliseconds stop_budget() const;
  [[nodiscard]] backends::ProbeTarget probe_target() const;
  [[nodiscard]] std::string context() const { return "instance=" + config_.name; }

  asio::any_io_executor executor_;
  config::InstanceConfig config_;
  std::unique_ptr<backends::Backend> backend_;
  InstanceTuning tuning_;
  metrics::InstanceMetrics metrics_;

  InstanceState state_ = InstanceState::kAdopting;
  Clock::time_point state_since_{};
  std::chrono::system_clock::time_point state_since_wall_{};
  Operation operation_ = Operation::kNone;
  asio::cancellation_signal operation_cancel_;  // the running operation
  bool shutting_down_ = false;
  std::size_t sessions_ = 0;
  std::list<Waiter*> waiters_;
  std::list<SessionEntry*> entries_;     // every session, for status()
  std::list<SessionActivity*> watched_;  // sessions being relayed (sessions_ counts connecting ones too)
  Clock::time_point last_release_{};     // when the last session ended
  asio::steady_timer idle_timer_;
  Clock::time_point awake_since_{};
  // The wake in progress: its deadline, when it was asked for, how many clients joined it.
  Clock::time_point wake_deadline_{};
  std::chrono::system_clock::time_point wake_requested_{};
  std::uint32_t wake_clients_ = 0;
  std::vector<InstanceObserver*> observers_;
  // The wake being started or running: what caused it (for the ledger and status).
  WakeCause wake_cause_ = WakeCause::kClient;
  ClientIdentity wake_client_;
  std::string wake_detail_;
  std::optional<InstanceStatus::LastWake> last_wake_;
  // Holds: awake at least until then (wake --for, maintenance.stay_awake), and why.
  Clock::time_point hold_until_{};
  std::string hold_why_;
  bool maintenance_running_ = false;
  bool manual_wake_pending_ = false;  // asked while it was stopping: woken once the stop is done
  std::string manual_wake_who_;
  std::string close_reason_;  // why the idle sessions are being closed (a manual sleep says who asked)
  // A manual sleep inside a keep-warm window: that window does not wake it again.
  std::chrono::system_clock::time_point window_skipped_until_{};
  // The schedule: keep-warm windows and maintenance, read in the instance's time zone.
  asio::steady_timer schedule_timer_;
  std::shared_ptr<const InstanceSchedule> schedule_;                 // null: no windows, no maintenance
  std::chrono::system_clock::time_point asleep_since_{};             // wall clock, for maintenance.every
  std::optional<std::chrono::system_clock::time_point> last_awake_;  // from the ledger, at start-up
  // Failed wakes in a row, the last reason, and when the next client may retry.
  std::uint32_t consecutive_failures_ = 0;
  std::string last_failure_;
  Clock::time_point retry_at_{};
  // Set while alive; lets detached completions tell that the instance is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pgnap::daemon
