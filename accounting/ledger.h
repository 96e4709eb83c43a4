// The ledger: pgnap's SQLite record of what each instance did and when, from which the
// savings are computed (`pgnap report`) and the lifetime counters restored (metrics).
//
// It records every state change (an interval per state, opened and closed), every wake
// with its cause (a client, by application_name and address; an operator; a keep-warm
// window; maintenance), every maintenance command's run, and a heartbeat of the open
// intervals. A clean stop closes the open intervals at the stop
// time; after a crash, the next open closes them at their last heartbeat, so at most one
// heartbeat of accounting is lost and intervals never overlap.
//
// It also keeps two caches for the authenticating mode (docs/security.md): the password
// verifiers learned by auth_query, and the parameters of each user's last real login.
//
// Writes never block the event loop: the daemon's calls only queue the write, and one
// writer thread owns the connection and commits (WAL mode, synchronous=NORMAL: a crash of
// pgnap loses nothing committed; a power cut, at most the last transactions). A write the
// file refuses (a full disk, an I/O error) is kept in memory, in order and bounded, and
// written when the file accepts writes again: nothing is lost while pgnap runs, unless the
// bound is reached (then the oldest heartbeats go first).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "accounting/usage.h"

struct sqlite3;

namespace pgnap::accounting {

// Wall-clock time as stored: seconds since the Unix epoch (UTC), millisecond precision.
using UnixTime = double;
[[nodiscard]] UnixTime unix_now();

inline constexpr int kLedgerSchemaVersion = 6;

// ---- rows, as read back ----

struct IntervalRow {
  std::string instance;
  std::string state;  // asleep | waking | awake | suspending | failed
  UnixTime start = 0;
  UnixTime end = 0;   // for an open interval: its last heartbeat
  bool open = false;  // still running (as far as the file knows)
  std::string start_reason;
  std::string end_reason;
};

struct WakeRow {
  std::string instance;
  UnixTime requested_at = 0;
  UnixTime finished_at = 0;
  std::string outcome;  // ok | failed | timeout
  double duration_s = 0;
  std::uint32_t clients_waited = 0;
  bool started = false;  // the start command ran (false: the server was already up)
  std::string detail;
  // What caused it (schema version 5; older rows read as "client" with the rest empty).
  std::string cause = "client";  // client | manual | window | maintenance
  std::string user{};            // cause "client": the client whose need started it
  std::string database{};
  std::string application_name{};
  std::string client_address{};  // "10.0.0.5:50312", "[::1]:50312", or "unix"
  std::string cause_detail{};    // manual: who asked; window: the window; maintenance: why
};

// A maintenance command's run (schema version 5).
struct MaintenanceRow {
  std::string instance;
  UnixTime started_at = 0;
  UnixTime finished_at = 0;
  std::string command;   // argv as a shell would read it (command_text)
  int exit_status = -1;  // -1: it did not exit (killed, timed out, not run)
  std::string outcome;   // ok | failed | timeout | not run
  std::string output_tail;
};

// argv joined with spaces, each argument single-quoted for a POSIX shell when it holds
// anything but letters, digits and -_./=:,+@% (an empty one as ''): what to paste to run it.
[[nodiscard]] std::string command_text(const std::vector<std::string>& argv);

// What the database's processes used over a stretch of awake time (schema version 6): one
// row per stretch and kind, written every few minutes while awake and when it suspends.
struct UsageRow {
  std::string instance;
  UnixTime started_at = 0;
  UnixTime ended_at = 0;
  bool idle = true;  // no session was in use during the intervals summed (kind "idle"), else "busy"
  UsageTotals totals;
  std::string cpu_source;     // proc | cgroup
  std::string memory_source;  // pss | rss | cgroup | "" (none)
};

// The report's measured rates come from the usage of the 30 days up to its end (or of its
// whole window, when longer): a window the database slept through still has them.
inline constexpr double kUsageLookbackSeconds = 30 * 86400.0;

struct TransitionRow {
  std::string instance;
  UnixTime at = 0;
  std::string from;  // "" for the first state after pgnap started
  std::string to;
  std::string reason;
};

struct LedgerData {
  std::vector<IntervalRow> intervals;       // overlapping the window, ordered by instance, start
  std::vector<WakeRow> wakes;               // requested within the window
  std::vector<TransitionRow> transitions;   // within the window
  std::vector<MaintenanceRow> maintenance;  // started within the window, by started_at
  std::vector<UsageRow> usage;              // ending after min(since, until − kUsageLookbackSeconds), starting before until
};

// Reads what overlaps [since, until) (instance "" = all), opening the file read-only: works
// while the daemon writes. Throws std::runtime_error with a readable message on failure.
[[nodiscard]] LedgerData read_ledger(const std::string& path, UnixTime since, UnixTime until,
                                     const std::string& instance = {});

// Per instance: seconds asleep and awake (waking + awake + suspending) over the whole file,
// open intervals counted to their last heartbeat, and the wakes that ran the start command.
// Read at start-up so the metrics' lifetime counters continue where they were.
struct LifetimeTotals {
  double asleep_seconds = 0;
  double awake_seconds = 0;
  std::uint64_t starts = 0;
  double start_seconds = 0;
  // When it was last seen running (the end of its last waking/awake/suspending interval; 0 =
  // never): an instance found asleep at start-up has slept since then (maintenance.every).
  UnixTime last_awake_at = 0;
  // What its processes used while awake, over the last kUsageLookbackSeconds: the measured rates.
  UsageTotals idle_usage;
  UsageTotals busy_usage;
};
[[nodiscard]] std::map<std::string, LifetimeTotals> read_lifetime_totals(const std::string& path);

// The lifetime counters as last shown on /metrics: a restart starts no lower than these.
struct ReportedCounters {
  double asleep_seconds = 0;
  double awake_seconds = 0;
  double energy_kwh = 0;
  double carbon_g = 0;
  double cost = 0;
  double embodied_g = 0;
  // The measured basis (accounting/savings.h MeasuredSavings), at the idle rates known then.
  double measured_cpu_seconds = 0;
  double measured_memory_gb_hours = 0;
  double measured_energy_kwh = 0;
  double measured_carbon_g = 0;
  [[nodiscard]] std::array<std::pair<std::string_view, double>, 10> named() const;
};
[[nodiscard]] std::map<std::string, ReportedCounters> read_reported_counters(const std::string& path);

// The configuration a gateway runs with `source` (absolute path): the text it started with,
// and the text of its last reload (empty if none).
struct RunningConfig {
  UnixTime started_at = 0;
  std::string started_text;
  UnixTime reloaded_at = 0;
  std::string reloaded_text;
};
[[nodiscard]] std::optional<RunningConfig> read_running_config(const std::string& path, const std::string& source);

// ---- the authenticating mode's caches (schema version 4; accounting/ledger_cache.cpp) ----

// A password verifier auth_query returned for `user`: what pg_authid.rolpassword holds
// ("SCRAM-SHA-256$...", "md5..."). Not the password, but a secret all the same: protected
// like pg_authid (docs/security.md).
struct CachedCredential {
  std::string instance;
  std::string user;
  std::string secret;
  UnixTime learned_at = 0;
};

// The ParameterStatus values PostgreSQL sent at the last real login of `user` to `database`
// (server_version, server_encoding, client_encoding, ...), in the order it sent them.
struct CachedParameters {
  std::string instance;
  std::string user;
  std::string database;
  std::vector<std::pair<std::string, std::string>> parameters;
  UnixTime learned_at = 0;
};

// Every cached verifier, ordered by instance and user; opened read-only like the readers
// above. Empty for a ledger older than schema version 4. Throws std::runtime_error naming the
// file when it cannot be read.
[[nodiscard]] std::vector<CachedCredential> read_credentials(const std::string& path);
// Every cached set of parameters, ordered by instance, user and database; the same. A row
// whose parameters do not decode (written by hand, or damaged) is left out: it is only a cache.
[[nodiscard]] std::vector<CachedParameters> read_session_parameters(const std::string& path);

// ---- the writer ----

class Ledger {
 public:
  // Opens (creating it, mode 0600, if missing), migrates the schema forward, and closes
  // intervals left open by a crash at their last heartbeat. Synchronous: start-up only.
  // Throws std::runtime_error naming the file and what went wrong.
  static std::unique_ptr<Ledger> open(const std::string& path);
  ~Ledger();  // writes everything queued, then closes
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Intervals closed by the crash recovery of open(), for the log.
  [[nodiscard]] std::size_t recovered_intervals() const { return recovered_; }
  [[nodiscard]] const std::string& path() const { return path_; }

  // ---- queued writes (return at once) ----
  // `instance` enters `to` at `at`: its open interval (if any) ends there, a new one starts.
  void record_transition(const std::string& instance, const std::string& from, const std::string& to, UnixTime at,
                         const std::string& reason);
  void record_wake(const WakeRow& wake);
  void record_maintenance(const MaintenanceRow& run);
  void record_usage(const UsageRow& usage);  // accounting/ledger_usage.cpp
  // What /metrics just showed for `instance` (kept as the highest value per counter).
  void record_reported(const std::string& instance, const ReportedCounters& counters);
  // The configuration text the gateway started with (`reload` false) or reloaded.
  void record_running_config(const std::string& source, const std::string& text, bool reload);
  // The authenticating mode's caches. A verifier learned by auth_query (insert or replace);
  // one that is no longer valid; all of an instance's (its cache switched to memory, or the
  // instance was removed).
  void record_credential(const std::string& instance, const std::string& user, const std::string& secret, UnixTime at);
  void forget_credential(const std::string& instance, const std::string& user);
  void forget_credentials(const std::string& instance);
  // The ParameterStatus values of a real login (insert or replace). Names and values may hold
  // any byte; they come back exactly.
  void record_session_parameters(const std::string& instance, const std::string& user, const std::string& database,
                                 const std::vector<std::pair<std::string, std::string>>& parameters, UnixTime at);
  // The open intervals are known to have lasted until `at`.
  void heartbeat(UnixTime at);
  // A clean stop: every open interval ends at `at`.
  void close_all(UnixTime at, const std::string& reason);
  // Blocks until everything queued so far has been tried once, ignoring the retry backoff:
  // committed, or kept in memory if the file refuses it (shutdown and tests only).
  void flush();

  // ---- failed writes ----
  // A write the file refuses for now (a full disk, an I/O error, a lock held too long) is
  // kept in memory, in order, and tried again before any newer write, at most once per
  // kRetryInterval (when something new is queued, or on flush). Heartbeats are
  // coalesced (only the latest matters). Beyond kMaxPendingJobs or
  // kMaxPendingBytes of strings, the oldest heartbeat or reported counters are dropped
  // first, then the oldest other writes: those are lost. A write SQLite refuses for what it
  // is (not for the file's state) is lost at once, since retrying cannot help.
  static constexpr std::size_t kMaxPendingJobs = 10000;
  static constexpr std::size_t kMaxPendingBytes = 16 << 20;
  static constexpr std::chrono::milliseconds kRetryInterval{1000};
  // Writes that failed at least once (each counted once), whether since written or not; the
  // caller logs them with last_error().
  [[nodiscard]] std::uint64_t failed_writes() const;
  // Writes kept in memory because the file refused them, waiting for a retry.
  [[nodiscard]] std::size_t pending_writes() const;
  // Writes that had failed and were then written.
  [[nodiscard]] std::uint64_t resumed_writes() const;
  // Writes given up: dropped for the bound, refused for what they are, or still kept when
  // the ledger closed.
  [[nodiscard]] std::uint64_t lost_writes() const;
  [[nodiscard]] std::string last_error() const;
  // Told (from the writer thread, when the ledger closes) how many kept writes could not be
  // written in a last attempt, with the error; the daemon logs it. Set before any write.
  void on_close_loss(std::function<void(std::size_t lost, const std::string& error)> report);
  // Tests only: runs `sql` on the writer's connection between two batches (e.g.
  // "PRAGMA max_page_count = 1" to make the file refuse to grow, as a full disk does).
  void exec_on_writer_for_test(const std::string& sql);

 private:
  struct Job {
    std::function<void(sqlite3*)> write;
    std::string coalesce_key;  // "" = never coalesced; else only the latest job of a key matters
    std::size_t bytes = 0;     // of the strings it holds, for the bound
    bool expendable = false;   // dropped first beyond the bound (the next one repairs its loss)
    bool failed = false;       // tried and refused at least once
  };
  using Clock = std::chrono::steady_clock;
  Ledger(std::string path, sqlite3* db);
  // `bytes`: the size of the strings `write` holds, for the bound; the rest: see Job.
  void enqueue(std::function<void(sqlite3*)> write, std::size_t bytes = 0, std::string coalesce_key = {},
               bool expendable = false);
  void run();
  // Writer thread: moves queue_ behind pending_, coalescing and bounding (mutex_ held).
  void absorb();
  // Writer thread: writes pending_ in one transaction (mutex_ held on entry and exit, released
  // while SQLite runs); what the file refuses stays in pending_.
  void attempt(std::unique_lock<std::mutex>& lock);
  // Writer thread, closing: one last attempt; what is still kept is lost, and reported.
  void finish(std::unique_lock<std::mutex>& lock);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::size_t recovered_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable wake_writer_;
  std::condition_variable idle_;
  std::deque<Job> queue_;    // shared: what the daemon queued, not yet taken by the writer
  std::deque<Job> pending_;  // the writer's own: taken, not yet committed
  std::size_t pending_bytes_ = 0;
  std::size_t held_ = 0;  // pending_.size() while the file refuses writes, else 0
  bool failing_ = false;
  bool writing_ = false;      // the writer runs SQLite (unlocked)
  bool attempt_due_ = false;  // pending_ holds jobs not tried since they were queued
  Clock::time_point retry_after_{};
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_done_ = 0;
  bool stopping_ = false;
  std::uint64_t failed_writes_ = 0;
  std::uint64_t resumed_writes_ = 0;
  std::uint64_t lost_writes_ = 0;
  std::string last_error_;
  std::function<void(std::size_t, const std::string&)> on_close_loss_;
  std::thread writer_;
};

}  // namespace pgnap::accounting
