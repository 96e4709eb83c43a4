// What pgnap counts, per instance and for the whole gateway, for the Prometheus endpoint
// (metrics/exposition.h renders it; docs/metrics.md lists every metric).
//
// Everything here lives on the event loop thread: the relay, the lifecycle and the /metrics
// endpoint all run there, so the counters are plain integers (no atomics on the relay's hot
// path), and values that advance continuously (seconds asleep, energy saved) are computed at
// scrape time from the current state and when it began.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "accounting/ledger.h"
#include "accounting/savings.h"

namespace pgnap::metrics {

// The savings model and the ledger's lifetime figures, which the counters build on.
using accounting::Accounting;
using accounting::Activity;
using accounting::LifetimeTotals;
using accounting::MeasuredRates;
using accounting::MeasuredSavings;
using accounting::UsageTotals;
using accounting::Power;
using accounting::power_of;
using accounting::ReportedCounters;
using accounting::Savings;
using accounting::savings;

// The lifecycle states, in the order pgnap_instance_state lists them.
inline constexpr std::array<std::string_view, 5> kStates{"asleep", "waking", "awake", "suspending", "failed"};
inline constexpr std::array<std::string_view, 3> kWakeOutcomes{"ok", "failed", "timeout"};
inline constexpr std::array<std::string_view, 2> kSuspendReasons{"idle", "exit"};
// SQLSTATEs pgnap itself sends to a routed client: their series exist from the start.
inline constexpr std::array<std::string_view, 4> kInstanceErrorCodes{"53300", "57P03", "57P01", "08P01"};
// SQLSTATEs for errors before a client reaches an instance.
inline constexpr std::array<std::string_view, 4> kGatewayErrorCodes{"08P01", "28000", "3D000", "53300"};

// Upper bounds of the wake-time and client-wait histograms: 10 ms to 10 min.
inline constexpr std::array<double, 15> kDurationBuckets{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                         5,    10,    30,   60,  120,  300, 600};

struct DurationHistogram {
  std::array<std::uint64_t, kDurationBuckets.size()> buckets{};  // not cumulative
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double seconds);
};

// Lifetime totals come from the ledger at start-up, so counters survive restarts.
using Lifetime = LifetimeTotals;

struct Accrued {
  double asleep_seconds = 0;
  double awake_seconds = 0;
  std::uint64_t starts = 0;
  double start_seconds = 0;
};

class InstanceMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  InstanceMetrics(std::string name, Accounting accounting);

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const Accounting& accounting() const { return accounting_; }
  // New coefficients (a reload): the lifetime figures are recomputed with them; the held
  // values still never go down.
  void set_accounting(const Accounting& accounting) { accounting_ = accounting; }

  void set_lifetime(const Lifetime& lifetime);

  // ---- events ----
  void set_state(std::string_view state, Clock::time_point now = Clock::now());
  void wake_finished(std::string_view outcome, double seconds, bool started);
  void suspended(std::string_view reason);
  void unexpected_stop() { ++unexpected_stops_; }
  void wake_ignored() { ++wakes_ignored_; }
  void idle_sessions_closed(std::uint64_t n) { idle_sessions_closed_ += n; }
  void session_opened() {
    ++sessions_;
    ++sessions_total_;
  }
  void session_closed() {
    if (sessions_ > 0) --sessions_;
  }
  void set_waiting(std::size_t n) { waiting_ = n; }
  void client_waited(double seconds) { client_wait_.observe(seconds); }
  void client_error(std::string_view sqlstate);
  // The relay adds to these directly, per read.
  std::uint64_t bytes_client_to_server = 0;
  std::uint64_t bytes_server_to_client = 0;
  // The authenticating mode: logins pgnap answered itself, by method ("scram-sha-256",
  // "scram-sha-256-plus", "md5", "trust"; "-" before one was chosen) and outcome ("ok",
  // "wrong_password", "protocol_error", "gone", "timeout").
  void authenticated(std::string_view method, std::string_view outcome);
  // What the wakes were for: "connect", "query", "login", "adoption".
  void wake_caused(std::string_view cause);
  // Messages queued while the instance woke (counted as they arrive), the bytes queued now,
  // and queued queries answered with 57014 because a cancel came first.
  std::uint64_t queued_messages = 0;
  std::uint64_t queued_bytes = 0;
  std::uint64_t queued_cancelled = 0;
  // Session pooling (docs/pooling.md): server connections lent to sessions and idle in the
  // pool now; clients served by a kept connection (no login); clients that waited for room.
  std::uint64_t server_connections_active = 0;
  std::uint64_t server_connections_idle = 0;
  std::uint64_t server_logins_saved = 0;
  std::uint64_t pool_waits = 0;
  // Parking (docs/pooling.md): sessions parked now (client connected, no server), parks and
  // resumes so far, resumes whose restore failed, and parks refused by what the session held
  // ("temporary tables", ...; "capture failed" when its state could not be read).
  std::uint64_t parked_sessions = 0;
  std::uint64_t session_parks = 0;
  std::uint64_t session_resumes = 0;
  std::uint64_t session_restore_failures = 0;
  std::map<std::string, std::uint64_t, std::less<>> parks_refused;

  // ---- reading (scrape time) ----
  [[nodiscard]] std::string_view state() const { return state_; }
  [[nodiscard]] Accrued accrued(Clock::time_point now = Clock::now()) const;
  // The lifetime counters /metrics shows: seconds asleep and awake, and the net savings as
  // the model computes them, each held at the highest value shown so far. A counter must
  // never go down: a wake's own cost dips the net savings by a few joules that the next
  // seconds of sleep make good, and a crash can lose up to a heartbeat of the ledger's time.
  // (pgnap report shows the exact, signed figures.)
  [[nodiscard]] ReportedCounters counters(Clock::time_point now = Clock::now()) const;
  // What an earlier run last showed (from the ledger): the counters start no lower.
  void set_reported_floor(const ReportedCounters& floor) { held_ = floor; }

  // The measured basis (docs/accounting.md, "Measured"): what the instance's processes used
  // while awake, from the ledger's last 30 days at start-up (set_lifetime) plus what this run
  // measured (the sampler adds it as it flushes to the ledger).
  void add_usage(const UsageTotals& idle, const UsageTotals& busy) {
    lifetime_.idle_usage += idle;
    lifetime_.busy_usage += busy;
  }
  [[nodiscard]] const UsageTotals& idle_usage() const { return lifetime_.idle_usage; }
  // The idle rates, once an idle-awake stretch has been measured.
  [[nodiscard]] std::optional<MeasuredRates> measured_rates() const;

  [[nodiscard]] std::uint64_t wakes(std::string_view outcome) const;
  [[nodiscard]] std::uint64_t suspends(std::string_view reason) const;
  [[nodiscard]] std::uint64_t unexpected_stops() const { return unexpected_stops_; }
  [[nodiscard]] std::uint64_t wakes_ignored() const { return wakes_ignored_; }
  [[nodiscard]] std::uint64_t idle_sessions_closed() const { return idle_sessions_closed_; }
  [[nodiscard]] std::uint64_t sessions() const { return sessions_; }
  [[nodiscard]] std::uint64_t sessions_total() const { return sessions_total_; }
  [[nodiscard]] std::size_t waiting() const { return waiting_; }
  [[nodiscard]] const DurationHistogram& wake_duration() const { return wake_duration_; }
  [[nodiscard]] const DurationHistogram& client_wait() const { return client_wait_; }
  [[nodiscard]] const std::map<std::string, std::uint64_t, std::less<>>& client_errors() const {
    return client_errors_;
  }
  [[nodiscard]] const std::map<std::pair<std::string, std::string>, std::uint64_t>& authentications() const {
    return authentications_;
  }
  [[nodiscard]] const std::map<std::string, std::uint64_t, std::less<>>& wake_causes() const { return wake_causes_; }

 private:
  std::string name_;
  Accounting accounting_;
  Lifetime lifetime_;

  std::string state_;  // "" until the first set_state
  Clock::time_point state_since_{};
  double closed_asleep_ = 0;  // this run, closed intervals
  double closed_awake_ = 0;
  std::uint64_t starts_ = 0;  // this run
  double start_seconds_ = 0;

  std::array<std::uint64_t, kWakeOutcomes.size()> wakes_{};
  std::array<std::uint64_t, kSuspendReasons.size()> suspends_{};
  std::uint64_t unexpected_stops_ = 0;
  std::uint64_t wakes_ignored_ = 0;
  std::uint64_t idle_sessions_closed_ = 0;
  std::uint64_t sessions_ = 0;
  std::uint64_t sessions_total_ = 0;
  std::size_t waiting_ = 0;
  DurationHistogram wake_duration_;
  DurationHistogram client_wait_;
  std::map<std::string, std::uint64_t, std::less<>> client_errors_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> authentications_;
  std::map<std::string, std::uint64_t, std::less<>> wake_causes_;
  mutable ReportedCounters held_;  // the highest values shown so far
};

// Limits that turn clients away or end sessions ([gateway] and instance settings).
inline constexpr std::array<std::string_view, 9> kLimits{"max_clients",       "login_timeout", "max_message_size",
                                                         "connect_timeout",   "max_waiting",   "queue_limit",
                                                         "queue_limit_total", "pool_size",     "pool_wait_timeout"};

// The relay in use and, with the kernel relay, what it did (daemon/kernel_relay.h).
struct RelayCounters {
  std::string relay = "user";             // "kernel": plaintext TCP sessions go into the kernel when at rest
  std::uint64_t kernel_entries = 0;       // times a session's bytes went into the kernel
  std::uint64_t kernel_handbacks = 0;     // ... and came back to user space
  std::uint64_t kernel_sessions = 0;      // sessions whose bytes are in the kernel now
  std::uint64_t kernel_refused = 0;       // sockets the sockmap refused (those sessions stay in user space)
};

struct GatewayMetrics {
  std::uint64_t connections_total = 0;
  RelayCounters relay;
  std::map<std::string, std::uint64_t, std::less<>> limit_hits;  // by kLimits name
  std::uint64_t tls_handshake_failures = 0;
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
  void limit_hit(std::string_view limit);
  std::map<std::string, std::uint64_t, std::less<>> errors;  // by SQLSTATE, not tied to an instance
  std::uint64_t cancels_forwarded = 0;
  std::uint64_t cancels_unmatched = 0;
  std::uint64_t cancels_queued = 0;  // answered by pgnap: the query was still queued
  std::uint64_t ledger_write_errors = 0;
  std::uint64_t ledger_pending_writes = 0;  // kept in memory while the ledger's file refuses them

  GatewayMetrics();
  void error(std::string_view sqlstate);
};

}  // namespace pgnap::metrics
