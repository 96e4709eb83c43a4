// The ledger's write side: the schema and its forward migrations, the crash recovery of
// open(), and the one writer thread that commits the daemon's queued writes in batches, so
// that no SQLite call (and no fsync) ever runs on the event loop. The read side is
// ledger_read.cpp; the authenticating mode's caches are ledger_cache.cpp.
#include "accounting/ledger.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "accounting/sqlite.h"

namespace pgnap::accounting {

using detail::exec;
using detail::open_db;
using detail::schema_version;
using detail::Statement;
using detail::transaction;

UnixTime unix_now() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) / 1000.0;
}

namespace {

// Forward migrations: entry i brings the schema from version i to i + 1. Never edit a
// shipped entry; append.
const char* const kMigrations[] = {
    // 0 -> 1
    R"sql(
    CREATE TABLE intervals (
      id            INTEGER PRIMARY KEY,
      instance      TEXT NOT NULL,
      state         TEXT NOT NULL,
      started_at    REAL NOT NULL,
      ended_at      REAL,                -- NULL while open
      heartbeat_at  REAL NOT NULL,       -- the open interval lasted at least until here
      start_reason  TEXT NOT NULL DEFAULT '',
      end_reason    TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX intervals_by_instance ON intervals (instance, started_at);
    CREATE INDEX intervals_open ON intervals (ended_at) WHERE ended_at IS NULL;
    CREATE TABLE transitions (
      id          INTEGER PRIMARY KEY,
      instance    TEXT NOT NULL,
      at          REAL NOT NULL,
      from_state  TEXT NOT NULL,
      to_state    TEXT NOT NULL,
      reason      TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX transitions_by_time ON transitions (at);
    CREATE TABLE wakes (
      id              INTEGER PRIMARY KEY,
      instance        TEXT NOT NULL,
      requested_at    REAL NOT NULL,
      finished_at     REAL NOT NULL,
      outcome         TEXT NOT NULL,     -- ok | failed | timeout
      duration_s      REAL NOT NULL,
      clients_waited  INTEGER NOT NULL,
      started         INTEGER NOT NULL,  -- 1 when the start command ran
      detail          TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX wakes_by_time ON wakes (requested_at);
    )sql",
    // 1 -> 2: the lifetime counters last shown on /metrics, so that a restart (even after a
    // crash that lost a heartbeat) never shows them lower than before: Prometheus would
    // take any decrease for a reset and count the whole lifetime again.
    R"sql(
    CREATE TABLE reported_counters (
      instance  TEXT NOT NULL,
      name      TEXT NOT NULL,
      value     REAL NOT NULL,
      PRIMARY KEY (instance, name)
    );
    )sql",
    // 2 -> 3: the configuration the gateway runs, so that `pgnap check` can say which
    // changes to the file a reload would apply and which need a restart.
    R"sql(
    CREATE TABLE running_config (
      source         TEXT PRIMARY KEY,   -- the file, as an absolute path
      started_at     REAL NOT NULL,
      started_text   TEXT NOT NULL,
      reloaded_at    REAL,
      reloaded_text  TEXT
    );
    )sql",
    // 3 -> 4: the caches of the authenticating mode (accounting/ledger_cache.cpp): the
    // password verifiers auth_query returned, and the ParameterStatus values of each user's
    // and database's last real login, so that a restart can answer clients without waking
    // the database. A verifier is what pg_authid holds: the file stays 0600.
    R"sql(
    CREATE TABLE credentials (
      instance    TEXT NOT NULL,
      "user"      TEXT NOT NULL,
      secret      TEXT NOT NULL,       -- as pg_authid.rolpassword: SCRAM-SHA-256$... or md5...
      learned_at  REAL NOT NULL,
      PRIMARY KEY (instance, "user")
    );
    CREATE TABLE session_parameters (
      instance    TEXT NOT NULL,
      "user"      TEXT NOT NULL,
      "database"  TEXT NOT NULL,
      parameters  TEXT NOT NULL,       -- name=value lines, %XX-escaped (ledger_cache.cpp)
      learned_at  REAL NOT NULL,
      PRIMARY KEY (instance, "user", "database")
    );
    )sql",
};
constexpr int kMigrationCount = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
static_assert(kMigrationCount == kLedgerSchemaVersion);

void migrate(sqlite3* db, const std::string& path) {
  const int version = schema_version(db);
  if (version > kLedgerSchemaVersion) {
    throw std::runtime_error(path + " has ledger schema version " + std::to_string(version) +
                             ", newer than this pgnap understands (" + std::to_string(kLedgerSchemaVersion) +
                             "); use a newer pgnap or a new ledger file");
  }
  for (int v = version; v < kLedgerSchemaVersion; ++v) {
    transaction(db, [&] {
      exec(db, kMigrations[v]);
      exec(db, ("PRAGMA user_version = " + std::to_string(v + 1)).c_str());
    });
  }
}

// Intervals a crash left open end at their last heartbeat: what is known, nothing more.
std::size_t close_crashed_intervals(sqlite3* db) {
  std::size_t closed = 0;
  transaction(db, [&] {
    Statement s(db,
                "UPDATE intervals SET ended_at = heartbeat_at, "
                "end_reason = 'pgnap stopped without closing it; closed at its last heartbeat' "
                "WHERE ended_at IS NULL");
    s.run();
    closed = static_cast<std::size_t>(sqlite3_changes(db));
  });
  return closed;
}

}  // namespace

// ---- Ledger ----

std::unique_ptr<Ledger> Ledger::open(const std::string& path) {
  // Created 0600 before SQLite opens it: the ledger says when the databases were used.
  if (::access(path.c_str(), F_OK) != 0) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      throw std::runtime_error("cannot create ledger " + path + ": " + std::strerror(errno));
    }
    if (fd >= 0) ::close(fd);
  }
  sqlite3* db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX);
  try {
    exec(db, "PRAGMA journal_mode = WAL");
    exec(db, "PRAGMA synchronous = NORMAL");
    migrate(db, path);
    auto ledger = std::unique_ptr<Ledger>(new Ledger(path, db));
    ledger->recovered_ = close_crashed_intervals(db);
    ledger->writer_ = std::thread([l = ledger.get()] { l->run(); });
    return ledger;
  } catch (const std::exception& e) {
    sqlite3_close(db);
    throw std::runtime_error("ledger " + path + ": " + e.what());
  }
}

Ledger::Ledger(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

Ledger::~Ledger() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_writer_.notify_one();
  if (writer_.joinable()) writer_.join();
  sqlite3_close(db_);
}

void Ledger::enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_writer_.notify_one();
}

void Ledger::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_writer_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    // Everything queued so far goes into one transaction.
    std::deque<Job> batch;
    batch.swap(queue_);
    busy_ = true;
    lock.unlock();
    std::string error;
    try {
      transaction(db_, [&] {
        for (auto& job : batch) job(db_);
      });
    } catch (const std::exception& e) {
      error = e.what();
    }
    lock.lock();
    if (!error.empty()) {
      failed_writes_ += batch.size();
      last_error_ = std::move(error);
    }
    busy_ = false;
    idle_.notify_all();
  }
}

void Ledger::flush() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

std::uint64_t Ledger::failed_writes() const {
  std::lock_guard lock(mutex_);
  return failed_writes_;
}

std::string Ledger::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void Ledger::record_transition(const std::string& instance, const std::string& from, const std::string& to, UnixTime at,
                               const std::string& reason) {
  enqueue([=](sqlite3* db) {
    Statement close(db,
                    "UPDATE intervals SET ended_at = MAX(?2, started_at), heartbeat_at = MAX(?2, started_at), "
                    "end_reason = ?3 WHERE instance = ?1 AND ended_at IS NULL");
    close.bind(1, instance).bind(2, at).bind(3, reason).run();
    Statement open(db,
                   "INSERT INTO intervals (instance, state, started_at, heartbeat_at, start_reason) "
                   "VALUES (?1, ?2, ?3, ?3, ?4)");
    open.bind(1, instance).bind(2, to).bind(3, at).bind(4, reason).run();
    Statement log(db,
                  "INSERT INTO transitions (instance, at, from_state, to_state, reason) VALUES (?1, ?2, ?3, ?4, ?5)");
    log.bind(1, instance).bind(2, at).bind(3, from).bind(4, to).bind(5, reason).run();
  });
}

void Ledger::record_wake(const WakeRow& w) {
  enqueue([w](sqlite3* db) {
    Statement s(db,
                "INSERT INTO wakes (instance, requested_at, finished_at, outcome, duration_s, clients_waited, "
                "started, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    s.bind(1, w.instance)
        .bind(2, w.requested_at)
        .bind(3, w.finished_at)
        .bind(4, w.outcome)
        .bind(5, w.duration_s)
        .bind(6, static_cast<std::int64_t>(w.clients_waited))
        .bind(7, static_cast<std::int64_t>(w.started ? 1 : 0))
        .bind(8, w.detail)
        .run();
  });
}

void Ledger::record_reported(const std::string& instance, const ReportedCounters& counters) {
  enqueue([instance, counters](sqlite3* db) {
    Statement s(db,
                "INSERT INTO reported_counters (instance, name, value) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (instance, name) DO UPDATE SET value = MAX(value, excluded.value)");
    for (const auto& [name, value] : counters.named()) {
      s.bind(1, instance).bind(2, std::string(name)).bind(3, value).run();
      sqlite3_reset(s.handle());
    }
  });
}

void Ledger::record_running_config(const std::string& source, const std::string& text, bool reload) {
  const UnixTime at = unix_now();
  enqueue([source, text, reload, at](sqlite3* db) {
    if (reload) {
      Statement s(db, "UPDATE running_config SET reloaded_at = ?2, reloaded_text = ?3 WHERE source = ?1");
      s.bind(1, source).bind(2, at).bind(3, text).run();
    } else {
      Statement s(db,
                  "INSERT INTO running_config (source, started_at, started_text) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (source) DO UPDATE SET started_at = ?2, started_text = ?3, reloaded_at = NULL, "
                  "reloaded_text = NULL");
      s.bind(1, source).bind(2, at).bind(3, text).run();
    }
  });
}

void Ledger::heartbeat(UnixTime at) {
  enqueue([at](sqlite3* db) {
    Statement s(db, "UPDATE intervals SET heartbeat_at = MAX(heartbeat_at, ?1) WHERE ended_at IS NULL");
    s.bind(1, at).run();
  });
}

void Ledger::close_all(UnixTime at, const std::string& reason) {
  enqueue([at, reason](sqlite3* db) {
    Statement s(db,
                "UPDATE intervals SET ended_at = MAX(?1, started_at), heartbeat_at = MAX(?1, started_at), "
                "end_reason = ?2 WHERE ended_at IS NULL");
    s.bind(1, at).bind(2, reason).run();
  });
}

std::array<std::pair<std::string_view, double>, 6> ReportedCounters::named() const {
  return {{{"asleep_seconds", asleep_seconds},
           {"awake_seconds", awake_seconds},
           {"energy_kwh", energy_kwh},
           {"carbon_g", carbon_g},
           {"cost", cost},
           {"embodied_g", embodied_g}}};
}

}  // namespace pgnap::accounting
