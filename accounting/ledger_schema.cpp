// The ledger's schema: its forward migrations, one per version, and the crash recovery
// Ledger::open runs after them (ledger.cpp).
#include <sqlite3.h>

#include <stdexcept>
#include <string>

#include "accounting/ledger.h"
#include "accounting/sqlite.h"

namespace pgnap::accounting::detail {

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
    // 4 -> 5 (issue 16): what caused each wake, and who (so that the report can say "the
    // uptime monitor woke it 96 times a day"); the maintenance commands' runs. Wakes recorded
    // before were all a client's, of unknown identity.
    R"sql(
    ALTER TABLE wakes ADD COLUMN cause TEXT NOT NULL DEFAULT 'client';  -- client | manual | window | maintenance
    ALTER TABLE wakes ADD COLUMN "user" TEXT NOT NULL DEFAULT '';
    ALTER TABLE wakes ADD COLUMN "database" TEXT NOT NULL DEFAULT '';
    ALTER TABLE wakes ADD COLUMN application_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE wakes ADD COLUMN client_address TEXT NOT NULL DEFAULT '';  -- ip:port, [ip6]:port or unix
    ALTER TABLE wakes ADD COLUMN cause_detail TEXT NOT NULL DEFAULT '';
    CREATE TABLE maintenance (
      id           INTEGER PRIMARY KEY,
      instance     TEXT NOT NULL,
      started_at   REAL NOT NULL,
      finished_at  REAL NOT NULL,
      command      TEXT NOT NULL,      -- argv, shell-quoted where needed
      exit_status  INTEGER,            -- NULL when it did not exit (killed, timed out, not run)
      outcome      TEXT NOT NULL,      -- ok | failed | timeout | not run
      output_tail  TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX maintenance_by_time ON maintenance (started_at);
    )sql",
    // 5 → 6: what the database's own processes used while awake (accounting/usage.h), per
    // stretch of awake time and kind: the report's measured basis.
    R"sql(
    CREATE TABLE usage (
      id                   INTEGER PRIMARY KEY,
      instance             TEXT NOT NULL,
      started_at           REAL NOT NULL,  -- the first reading of the stretch
      ended_at             REAL NOT NULL,  -- the last
      kind                 TEXT NOT NULL,  -- idle (no session in use) | busy
      seconds              REAL NOT NULL,  -- time measured
      cpu_seconds          REAL NOT NULL,  -- CPU used meanwhile
      memory_seconds       REAL NOT NULL,  -- time with a memory reading
      memory_byte_seconds  REAL NOT NULL,  -- memory integrated over it
      samples              INTEGER NOT NULL,
      cpu_source           TEXT NOT NULL,  -- proc | cgroup
      memory_source        TEXT NOT NULL   -- pss | rss | cgroup | '' (none)
    );
    CREATE INDEX usage_by_time ON usage (ended_at);
    )sql",
};
constexpr int kMigrationCount = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
static_assert(kMigrationCount == kLedgerSchemaVersion);

}  // namespace

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

}  // namespace pgnap::accounting::detail
