// The ledger: pgnap's SQLite record of what each instance did and when, from which the
// savings are computed (`pgnap report`) and the lifetime counters restored (metrics).
//
// It records every state change (an interval per state, opened and closed), every wake,
// and a heartbeat of the open intervals. A clean stop closes the open intervals at the stop
// time; after a crash, the next open closes them at their last heartbeat, so at most one
// heartbeat of accounting is lost and intervals never overlap.
//
// It also keeps two caches for the authenticating mode (docs/security.md): the password
// verifiers learned by auth_query, and the parameters of each user's last real login.
//
// Writes never block the event loop: the daemon's calls only queue the write, and one
// writer thread owns the connection and commits (WAL mode, synchronous=NORMAL: a crash of
// pgnap loses nothing committed; a power cut, at most the last transactions).
#pragma once

#include <array>
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

struct sqlite3;

namespace pgnap::accounting {

// Wall-clock time as stored: seconds since the Unix epoch (UTC), millisecond precision.
using UnixTime = double;
[[nodiscard]] UnixTime unix_now();

inline constexpr int kLedgerSchemaVersion = 4;

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
};

struct TransitionRow {
  std::string instance;
  UnixTime at = 0;
  std::string from;  // "" for the first state after pgnap started
  std::string to;
  std::string reason;
};

struct LedgerData {
  std::vector<IntervalRow> intervals;      // overlapping the window, ordered by instance, start
  std::vector<WakeRow> wakes;              // requested within the window
  std::vector<TransitionRow> transitions;  // within the window
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
  [[nodiscard]] std::array<std::pair<std::string_view, double>, 6> named() const;
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
  // Blocks until everything queued so far is committed (shutdown and tests only).
  void flush();
  // Writes that failed (logged by the caller through last_error()); the ledger keeps going.
  [[nodiscard]] std::uint64_t failed_writes() const;
  [[nodiscard]] std::string last_error() const;

 private:
  using Job = std::function<void(sqlite3*)>;
  Ledger(std::string path, sqlite3* db);
  void enqueue(Job job);
  void run();

  std::string path_;
  sqlite3* db_ = nullptr;
  std::size_t recovered_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable wake_writer_;
  std::condition_variable idle_;
  std::deque<Job> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::uint64_t failed_writes_ = 0;
  std::string last_error_;
  std::thread writer_;
};

}  // namespace pgnap::accounting
