// The SQLite ledger on its own: schema and file mode, intervals opened and closed by
// transitions, heartbeats, crash recovery, reading windows while the writer runs, migrations,
// and the authenticating mode's caches.
#include "accounting/ledger.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace pgnap::accounting {
namespace {

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgnap-ledger-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/ledger.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

TEST_F(LedgerTest, CreatesAPrivateFileWithTheCurrentSchema) {
  { auto ledger = Ledger::open(path_); }
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the ledger says when databases were used: owner only";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), kLedgerSchemaVersion);
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(LedgerTest, TransitionsMakeContiguousIntervalsAndACleanStopClosesThem) {
  {
    auto ledger = Ledger::open(path_);
    ledger->record_transition("main", "", "asleep", 1000.0, "adopted");
    ledger->record_transition("main", "asleep", "waking", 1100.0, "database \"app\"");
    ledger->record_transition("other", "", "awake", 1050.0, "adopted");
    ledger->record_transition("main", "waking", "awake", 1100.5, "ready");
    ledger->heartbeat(1200.0);
    ledger->close_all(1300.0, "pgnap stopped");
  }
  const auto data = read_ledger(path_, 0, 1e12);
  ASSERT_EQ(data.intervals.size(), 4u);
  // Ordered by instance, then start.
  EXPECT_EQ(data.intervals[0].instance, "main");
  EXPECT_EQ(data.intervals[0].state, "asleep");
  EXPECT_DOUBLE_EQ(data.intervals[0].start, 1000.0);
  EXPECT_DOUBLE_EQ(data.intervals[0].end, 1100.0);
  EXPECT_EQ(data.intervals[0].end_reason, "database \"app\"");
  EXPECT_DOUBLE_EQ(data.intervals[1].start, 1100.0);
  EXPECT_DOUBLE_EQ(data.intervals[1].end, 1100.5);
  EXPECT_EQ(data.intervals[2].state, "awake");
  EXPECT_DOUBLE_EQ(data.intervals[2].end, 1300.0);
  EXPECT_EQ(data.intervals[2].end_reason, "pgnap stopped");
  EXPECT_EQ(data.intervals[3].instance, "other");
  for (const auto& i : data.intervals) EXPECT_FALSE(i.open);
  ASSERT_EQ(data.transitions.size(), 4u);
  EXPECT_EQ(data.transitions[0].from, "");
  EXPECT_EQ(data.transitions[0].to, "asleep");
}

TEST_F(LedgerTest, ACrashLeavesIntervalsOpenUntilTheNextOpenClosesThemAtTheirHeartbeat) {
  {
    auto ledger = Ledger::open(path_);
    ledger->record_transition("main", "", "asleep", 1000.0, "adopted");
    ledger->heartbeat(1030.0);
    ledger->heartbeat(1060.0);
    ledger->flush();
    // Destroyed without close_all: what a kill -9 leaves (everything committed so far).
  }
  {
    const auto open = read_ledger(path_, 0, 1e12);
    ASSERT_EQ(open.intervals.size(), 1u);
    EXPECT_TRUE(open.intervals[0].open);
    EXPECT_DOUBLE_EQ(open.intervals[0].end, 1060.0) << "an open interval counts up to its last heartbeat";
  }
  {
    auto ledger = Ledger::open(path_);
    EXPECT_EQ(ledger->recovered_intervals(), 1u);
    ledger->record_transition("main", "", "asleep", 1100.0, "adopted");
    ledger->close_all(1200.0, "pgnap stopped");
  }
  const auto data = read_ledger(path_, 0, 1e12);
  ASSERT_EQ(data.intervals.size(), 2u);
  EXPECT_FALSE(data.intervals[0].open);
  EXPECT_DOUBLE_EQ(data.intervals[0].end, 1060.0);
  EXPECT_NE(data.intervals[0].end_reason.find("last heartbeat"), std::string::npos);
  EXPECT_DOUBLE_EQ(data.intervals[1].start, 1100.0);
  EXPECT_DOUBLE_EQ(data.intervals[1].end, 1200.0);
}

TEST_F(LedgerTest, WakesAndWindows) {
  {
    auto ledger = Ledger::open(path_);
    ledger->record_wake({"main", 100.0, 100.4, "ok", 0.4, 3, true, ""});
    ledger->record_wake({"main", 200.0, 230.0, "timeout", 30.0, 1, true, "not ready within 30 s"});
    ledger->record_wake({"blog", 300.0, 300.2, "ok", 0.2, 1, false, ""});
    ledger->record_transition("main", "", "asleep", 50.0, "adopted");
    ledger->record_transition("main", "asleep", "awake", 150.0, "ready");
  }
  const auto window = read_ledger(path_, 120.0, 250.0);
  ASSERT_EQ(window.wakes.size(), 1u);
  EXPECT_EQ(window.wakes[0].outcome, "timeout");
  EXPECT_EQ(window.wakes[0].detail, "not ready within 30 s");
  EXPECT_EQ(window.wakes[0].clients_waited, 1u);
  // Intervals overlapping the window, unclipped (the report clips).
  ASSERT_EQ(window.intervals.size(), 2u);
  const auto blog = read_ledger(path_, 0, 1e12, "blog");
  ASSERT_EQ(blog.wakes.size(), 1u);
  EXPECT_FALSE(blog.wakes[0].started);
  EXPECT_TRUE(blog.intervals.empty());
}

TEST_F(LedgerTest, ReadsWhileTheWriterHoldsTheFile) {
  auto ledger = Ledger::open(path_);
  ledger->record_transition("main", "", "awake", 10.0, "adopted");
  ledger->heartbeat(20.0);
  ledger->flush();
  const auto data = read_ledger(path_, 0, 1e12);
  ASSERT_EQ(data.intervals.size(), 1u);
  EXPECT_TRUE(data.intervals[0].open);
  EXPECT_DOUBLE_EQ(data.intervals[0].end, 20.0);
  EXPECT_EQ(ledger->failed_writes(), 0u);
}

TEST_F(LedgerTest, RefusesANewerSchemaAndAFileThatIsNotALedger) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  try {
    auto ledger = Ledger::open(path_);
    FAIL() << "opened a ledger from the future";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
  const std::string other = dir_ + "/empty.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  EXPECT_THROW((void)read_ledger(other, 0, 1), std::runtime_error);
  EXPECT_THROW((void)read_ledger(dir_ + "/missing.db", 0, 1), std::runtime_error);
}

TEST_F(LedgerTest, AnUnwritableDirectoryIsAClearError) {
  try {
    auto ledger = Ledger::open("/nonexistent-dir/ledger.db");
    FAIL() << "opened a ledger where no file can be created";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/ledger.db"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pgnap::accounting

namespace pgnap::accounting {
namespace {

TEST_F(LedgerTest, MigratesAVersionOneFileForward) {
  {
    // A ledger as version 1 left it: its tables, user_version 1, a closed interval.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const char* v1 =
        "CREATE TABLE intervals (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, state TEXT NOT NULL, "
        "started_at REAL NOT NULL, ended_at REAL, heartbeat_at REAL NOT NULL, start_reason TEXT NOT NULL DEFAULT '', "
        "end_reason TEXT NOT NULL DEFAULT '');"
        "CREATE TABLE transitions (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, at REAL NOT NULL, from_state TEXT "
        "NOT NULL, to_state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');"
        "CREATE TABLE wakes (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, requested_at REAL NOT NULL, finished_at "
        "REAL NOT NULL, outcome TEXT NOT NULL, duration_s REAL NOT NULL, clients_waited INTEGER NOT NULL, started "
        "INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '');"
        "INSERT INTO intervals (instance, state, started_at, ended_at, heartbeat_at) VALUES ('main', 'asleep', 0, 60, "
        "60);"
        "PRAGMA user_version = 1;";
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto ledger = Ledger::open(path_);
    ledger->record_reported("main", {60, 0, 1e-3, 0.4, 0.01, 0});
    ledger->record_reported("main", {59, 0, 2e-3, 0.3, 0.01, 0});  // each counter keeps its highest
  }
  const auto totals = read_lifetime_totals(path_);
  EXPECT_DOUBLE_EQ(totals.at("main").asleep_seconds, 60);
  const auto reported = read_reported_counters(path_);
  EXPECT_DOUBLE_EQ(reported.at("main").asleep_seconds, 60);
  EXPECT_DOUBLE_EQ(reported.at("main").energy_kwh, 2e-3);
  EXPECT_DOUBLE_EQ(reported.at("main").carbon_g, 0.4);
}

}  // namespace
}  // namespace pgnap::accounting

// ---- The authenticating mode's caches (schema version 4) ---------------------------------------

namespace pgnap::accounting {
namespace {

using Parameters = std::vector<std::pair<std::string, std::string>>;

// Runs SQL on the file directly, as an older pgnap or a damaged file would have left it.
void exec_sql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// Every byte but NUL, in one string.
std::string every_byte_but_nul() {
  std::string bytes;
  for (int c = 1; c < 256; ++c) bytes += static_cast<char>(c);
  return bytes;
}

TEST_F(LedgerTest, MigratesAVersionThreeFileForwardKeepingWhatItHeld) {
  // A ledger as version 3 left it: its five tables, a closed interval and a running config.
  exec_sql(
      path_,
      "CREATE TABLE intervals (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, state TEXT NOT NULL, "
      "started_at REAL NOT NULL, ended_at REAL, heartbeat_at REAL NOT NULL, start_reason TEXT NOT NULL DEFAULT '', "
      "end_reason TEXT NOT NULL DEFAULT '');"
      "CREATE INDEX intervals_by_instance ON intervals (instance, started_at);"
      "CREATE INDEX intervals_open ON intervals (ended_at) WHERE ended_at IS NULL;"
      "CREATE TABLE transitions (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, at REAL NOT NULL, from_state "
      "TEXT NOT NULL, to_state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');"
      "CREATE INDEX transitions_by_time ON transitions (at);"
      "CREATE TABLE wakes (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, requested_at REAL NOT NULL, "
      "finished_at REAL NOT NULL, outcome TEXT NOT NULL, duration_s REAL NOT NULL, clients_waited INTEGER NOT "
      "NULL, started INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '');"
      "CREATE INDEX wakes_by_time ON wakes (requested_at);"
      "CREATE TABLE reported_counters (instance TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, "
      "PRIMARY KEY (instance, name));"
      "CREATE TABLE running_config (source TEXT PRIMARY KEY, started_at REAL NOT NULL, started_text TEXT NOT "
      "NULL, reloaded_at REAL, reloaded_text TEXT);"
      "INSERT INTO intervals (instance, state, started_at, ended_at, heartbeat_at) VALUES ('main', 'asleep', 0, "
      "60, 60);"
      "INSERT INTO running_config (source, started_at, started_text) VALUES ('/etc/pgnap/pgnap.toml', 5, 'x');"
      "PRAGMA user_version = 3;");
  // Before the migration the caches read as empty, not as an error.
  EXPECT_TRUE(read_credentials(path_).empty());
  EXPECT_TRUE(read_session_parameters(path_).empty());
  {
    auto ledger = Ledger::open(path_);
    ledger->record_credential("main", "app", "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy", 100.0);
    ledger->record_session_parameters("main", "app", "shop", {{"server_version", "16.4"}}, 100.0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), kLedgerSchemaVersion);
  sqlite3_finalize(s);
  sqlite3_close(db);

  EXPECT_DOUBLE_EQ(read_lifetime_totals(path_).at("main").asleep_seconds, 60);
  ASSERT_TRUE(read_running_config(path_, "/etc/pgnap/pgnap.toml").has_value());
  const auto credentials = read_credentials(path_);
  ASSERT_EQ(credentials.size(), 1u);
  EXPECT_EQ(credentials[0].secret, "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy");
  const auto parameters = read_session_parameters(path_);
  ASSERT_EQ(parameters.size(), 1u);
  EXPECT_EQ(parameters[0].parameters, (Parameters{{"server_version", "16.4"}}));
}

TEST_F(LedgerTest, CredentialsRoundTripAndTheSameUserIsReplaced) {
  {
    auto ledger = Ledger::open(path_);
    ledger->record_credential("main", "app", "md5c0ffee", 10.0);
    ledger->record_credential("main", "report\"er", "SCRAM-SHA-256$4096:a==$b:c", 11.5);
    ledger->record_credential("blog", "app", "md5beef", 12.0);
    ledger->record_credential("main", "app", "SCRAM-SHA-256$4096:new==$s:k", 20.25);  // rotated
  }
  const auto credentials = read_credentials(path_);
  ASSERT_EQ(credentials.size(), 3u);
  // Ordered by instance, then user.
  EXPECT_EQ(credentials[0].instance, "blog");
  EXPECT_EQ(credentials[0].secret, "md5beef");
  EXPECT_EQ(credentials[1].instance, "main");
  EXPECT_EQ(credentials[1].user, "app");
  EXPECT_EQ(credentials[1].secret, "SCRAM-SHA-256$4096:new==$s:k");
  EXPECT_DOUBLE_EQ(credentials[1].learned_at, 20.25);
  EXPECT_EQ(credentials[2].user, "report\"er");
  EXPECT_DOUBLE_EQ(credentials[2].learned_at, 11.5);
}

TEST_F(LedgerTest, ForgetsOneCredentialOrAllOfAnInstance) {
  auto ledger = Ledger::open(path_);
  ledger->record_credential("main", "app", "md5a", 1.0);
  ledger->record_credential("main", "admin", "md5b", 1.0);
  ledger->record_credential("main", "batch", "md5c", 1.0);
  ledger->record_credential("blog", "app", "md5d", 1.0);
  ledger->forget_credential("main", "admin");
  ledger->forget_credential("main", "nobody");  // not there: nothing happens
  ledger->flush();
  auto credentials = read_credentials(path_);
  ASSERT_EQ(credentials.size(), 3u);
  EXPECT_EQ(credentials[1].user, "app");
  EXPECT_EQ(credentials[2].user, "batch");

  ledger->record_session_parameters("main", "app", "shop", {{"server_version", "16.4"}}, 2.0);
  ledger->forget_credentials("main");
  ledger->flush();
  credentials = read_credentials(path_);
  ASSERT_EQ(credentials.size(), 1u);
  EXPECT_EQ(credentials[0].instance, "blog");
  // Parameters are no secret: they stay.
  EXPECT_EQ(read_session_parameters(path_).size(), 1u);
  EXPECT_EQ(ledger->failed_writes(), 0u);
}

TEST_F(LedgerTest, SessionParametersComeBackExactlyWhateverTheirBytes) {
  const Parameters odd = {
      {"server_version", "16.4 (Debian 16.4-1.pgdg120+1)"},
      {"application_name", "caf\xc3\xa9 = 100% \"bar\"\n\r\tend"},
      {"name=with=equals", "a=b=c"},
      {"%41", "%%"},
      {"", ""},
      {"invalid utf-8", "\xff\xfe\x80"},
      {every_byte_but_nul(), every_byte_but_nul()},
      {"trailing newline", "x\n"},
  };
  {
    auto ledger = Ledger::open(path_);
    ledger->record_session_parameters("main", "app", "shop", odd, 50.0);
    ledger->record_session_parameters("main", "app\nuser", "d\xc3\xa9mo", {}, 51.0);
    ledger->record_session_parameters("main", "app", "blog", {{"TimeZone", "Europe/Paris"}}, 52.0);
  }
  const auto rows = read_session_parameters(path_);
  ASSERT_EQ(rows.size(), 3u);
  // Ordered by instance, user, database.
  EXPECT_EQ(rows[0].database, "blog");
  EXPECT_EQ(rows[1].database, "shop");
  EXPECT_EQ(rows[1].parameters, odd);
  EXPECT_DOUBLE_EQ(rows[1].learned_at, 50.0);
  EXPECT_EQ(rows[2].user, "app\nuser");
  EXPECT_EQ(rows[2].database, "d\xc3\xa9mo");
  EXPECT_TRUE(rows[2].parameters.empty());
}

TEST_F(LedgerTest, SessionParametersOfTheSameUserAndDatabaseAreReplaced) {
  {
    auto ledger = Ledger::open(path_);
    ledger->record_session_parameters("main", "app", "shop", {{"server_version", "15.8"}, {"DateStyle", "ISO"}}, 1.0);
    ledger->record_session_parameters("main", "app", "shop", {{"server_version", "16.4"}}, 2.0);
  }
  const auto rows = read_session_parameters(path_);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].parameters, (Parameters{{"server_version", "16.4"}}));
  EXPECT_DOUBLE_EQ(rows[0].learned_at, 2.0);
}

TEST_F(LedgerTest, TheCachesAreStoredReadablyAndADamagedRowIsLeftOut) {
  { auto ledger = Ledger::open(path_); }
  exec_sql(path_,
           "INSERT INTO session_parameters VALUES ('main', 'u1', 'db', 'no equals sign\n', 1);"
           "INSERT INTO session_parameters VALUES ('main', 'u2', 'db', 'a=b', 1);"  // no final newline
           "INSERT INTO session_parameters VALUES ('main', 'u3', 'db', 'a=%4', 1);"
           "INSERT INTO session_parameters VALUES ('main', 'u4', 'db', 'a=%zz\n', 1);"
           "INSERT INTO session_parameters VALUES ('main', 'u5', 'db', 'a=b=c\n', 1);"  // a raw '='
           "INSERT INTO session_parameters VALUES ('main', 'u6', 'db', 'a=%3D%25%0A\n', 1);");
  {
    auto ledger = Ledger::open(path_);
    ledger->record_session_parameters("main", "u7", "db", {{"a=b", "50%\n"}}, 2.0);
  }
  const auto rows = read_session_parameters(path_);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].user, "u6");
  EXPECT_EQ(rows[0].parameters, (Parameters{{"a", "=%\n"}}));
  EXPECT_EQ(rows[1].parameters, (Parameters{{"a=b", "50%\n"}}));
  // What the sqlite3 shell shows: one name=value line per parameter.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT parameters FROM session_parameters WHERE \"user\" = 'u7'", -1, &s, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "a%3Db=50%25%0A\n");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(LedgerTest, CachesAreReadWhileTheWriterHoldsTheFileAndTheFileStaysPrivate) {
  auto ledger = Ledger::open(path_);
  ledger->record_credential("main", "app", "md5c0ffee", 1.0);
  ledger->record_session_parameters("main", "app", "shop", {{"client_encoding", "UTF8"}}, 1.0);
  ledger->record_transition("main", "", "awake", 1.0, "adopted");
  ledger->flush();
  ASSERT_EQ(read_credentials(path_).size(), 1u);
  ASSERT_EQ(read_session_parameters(path_).size(), 1u);
  // A verifier is enough to log in as its user: the ledger and its WAL stay owner-only.
  for (const std::string& file : {path_, path_ + "-wal"}) {
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
  // The report reads its own tables only.
  const auto data = read_ledger(path_, 0, 1e12);
  EXPECT_EQ(data.intervals.size(), 1u);
  EXPECT_EQ(data.transitions.size(), 1u);
  EXPECT_TRUE(data.wakes.empty());
  EXPECT_EQ(ledger->failed_writes(), 0u);
}

TEST_F(LedgerTest, ReadingTheCachesOfAMissingFileIsAClearError) {
  try {
    (void)read_credentials(dir_ + "/missing.db");
    FAIL() << "read a ledger that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir_ + "/missing.db"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)read_session_parameters(dir_ + "/missing.db"), std::runtime_error);
}

}  // namespace
}  // namespace pgnap::accounting

// ---- Wake causes and maintenance runs (schema version 5) ----------------------------------------

namespace pgnap::accounting {
namespace {

WakeRow client_wake(UnixTime at, std::string application, std::string address, std::string detail = {}) {
  WakeRow w;
  w.instance = "main";
  w.requested_at = at;
  w.finished_at = at + 0.5;
  w.outcome = "ok";
  w.duration_s = 0.5;
  w.clients_waited = 1;
  w.started = true;
  w.detail = std::move(detail);
  w.cause = "client";
  w.user = "app";
  w.database = "shop";
  w.application_name = std::move(application);
  w.client_address = std::move(address);
  return w;
}

TEST_F(LedgerTest, MigratesAVersionFourFileForwardAndItsWakesReadAsAClients) {
  // A ledger as version 4 left it: the tables of version 3, the caches, and one wake.
  exec_sql(
      path_,
      "CREATE TABLE intervals (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, state TEXT NOT NULL, "
      "started_at REAL NOT NULL, ended_at REAL, heartbeat_at REAL NOT NULL, start_reason TEXT NOT NULL DEFAULT '', "
      "end_reason TEXT NOT NULL DEFAULT '');"
      "CREATE INDEX intervals_by_instance ON intervals (instance, started_at);"
      "CREATE INDEX intervals_open ON intervals (ended_at) WHERE ended_at IS NULL;"
      "CREATE TABLE transitions (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, at REAL NOT NULL, from_state "
      "TEXT NOT NULL, to_state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');"
      "CREATE INDEX transitions_by_time ON transitions (at);"
      "CREATE TABLE wakes (id INTEGER PRIMARY KEY, instance TEXT NOT NULL, requested_at REAL NOT NULL, "
      "finished_at REAL NOT NULL, outcome TEXT NOT NULL, duration_s REAL NOT NULL, clients_waited INTEGER NOT "
      "NULL, started INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '');"
      "CREATE INDEX wakes_by_time ON wakes (requested_at);"
      "CREATE TABLE reported_counters (instance TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, "
      "PRIMARY KEY (instance, name));"
      "CREATE TABLE running_config (source TEXT PRIMARY KEY, started_at REAL NOT NULL, started_text TEXT NOT "
      "NULL, reloaded_at REAL, reloaded_text TEXT);"
      "CREATE TABLE credentials (instance TEXT NOT NULL, \"user\" TEXT NOT NULL, secret TEXT NOT NULL, "
      "learned_at REAL NOT NULL, PRIMARY KEY (instance, \"user\"));"
      "CREATE TABLE session_parameters (instance TEXT NOT NULL, \"user\" TEXT NOT NULL, \"database\" TEXT NOT "
      "NULL, parameters TEXT NOT NULL, learned_at REAL NOT NULL, PRIMARY KEY (instance, \"user\", \"database\"));"
      "INSERT INTO wakes (instance, requested_at, finished_at, outcome, duration_s, clients_waited, started, "
      "detail) VALUES ('main', 100, 100.5, 'ok', 0.5, 2, 1, 'database \"shop\"');"
      "INSERT INTO credentials VALUES ('main', 'app', 'md5c0ffee', 1);"
      "PRAGMA user_version = 4;");
  // An older pgnap may still write it: the report reads it unmigrated, wakes as a client's.
  {
    const auto before = read_ledger(path_, 0, 1e12);
    ASSERT_EQ(before.wakes.size(), 1u);
    EXPECT_EQ(before.wakes[0].cause, "client");
    EXPECT_TRUE(before.maintenance.empty());
  }
  {
    auto ledger = Ledger::open(path_);
    ledger->record_wake(client_wake(200, "uptime-monitor", "10.0.0.5:41000"));
    ledger->record_maintenance({"main", 300, 312.5, "vacuumdb --all", 0, "ok", "vacuumdb: vacuuming database"});
  }
  const auto data = read_ledger(path_, 0, 1e12);
  ASSERT_EQ(data.wakes.size(), 2u);
  EXPECT_EQ(data.wakes[0].cause, "client");
  EXPECT_EQ(data.wakes[0].application_name, "");
  EXPECT_EQ(data.wakes[0].client_address, "");
  EXPECT_EQ(data.wakes[0].detail, "database \"shop\"");
  EXPECT_EQ(data.wakes[0].clients_waited, 2u);
  EXPECT_EQ(data.wakes[1].application_name, "uptime-monitor");
  EXPECT_EQ(data.wakes[1].client_address, "10.0.0.5:41000");
  ASSERT_EQ(data.maintenance.size(), 1u);
  EXPECT_EQ(data.maintenance[0].command, "vacuumdb --all");
  EXPECT_EQ(read_credentials(path_).size(), 1u) << "the caches survive the migration";
}

TEST_F(LedgerTest, WakeCausesAndMaintenanceRunsRoundTrip) {
  {
    auto ledger = Ledger::open(path_);
    ledger->record_wake(client_wake(100, "caf\xc3\xa9", "[::1]:5000"));
    WakeRow manual;
    manual.instance = "main";
    manual.requested_at = 200;
    manual.finished_at = 201;
    manual.outcome = "failed";
    manual.cause = "manual";
    manual.cause_detail = "uid 1000";
    ledger->record_wake(manual);
    ledger->record_maintenance({"main", 50, 80, "pg_repack -d 'my db'", -1, "timeout", "line 1\nline 2\n"});
    ledger->record_maintenance({"blog", 500, 501, "true", 1, "failed", ""});
  }
  const auto data = read_ledger(path_, 0, 1e12);
  ASSERT_EQ(data.wakes.size(), 2u);
  EXPECT_EQ(data.wakes[0].user, "app");
  EXPECT_EQ(data.wakes[0].database, "shop");
  EXPECT_EQ(data.wakes[0].application_name, "caf\xc3\xa9");
  EXPECT_EQ(data.wakes[0].client_address, "[::1]:5000");
  EXPECT_EQ(data.wakes[1].cause, "manual");
  EXPECT_EQ(data.wakes[1].cause_detail, "uid 1000");
  EXPECT_EQ(data.wakes[1].application_name, "");
  ASSERT_EQ(data.maintenance.size(), 2u);
  EXPECT_EQ(data.maintenance[0].exit_status, -1) << "did not exit: stored as NULL, read as -1";
  EXPECT_EQ(data.maintenance[0].outcome, "timeout");
  EXPECT_EQ(data.maintenance[0].output_tail, "line 1\nline 2\n");
  EXPECT_DOUBLE_EQ(data.maintenance[0].finished_at, 80);
  EXPECT_EQ(data.maintenance[1].exit_status, 1);
  // The window and the instance filter apply to runs by their start.
  EXPECT_EQ(read_ledger(path_, 60, 1e12).maintenance.size(), 1u);
  EXPECT_EQ(read_ledger(path_, 0, 1e12, "main").maintenance.size(), 1u);
}

TEST_F(LedgerTest, UsageRowsRoundTripAndSumPerInstanceAndKind) {
  const UnixTime now = unix_now();
  auto row = [](std::string instance, UnixTime start, UnixTime end, bool idle, double seconds, double cpu) {
    UsageRow u;
    u.instance = std::move(instance);
    u.started_at = start;
    u.ended_at = end;
    u.idle = idle;
    u.totals = {seconds, cpu, seconds, seconds * 3e7, 10};
    u.cpu_source = "proc";
    u.memory_source = "pss";
    return u;
  };
  {
    auto ledger = Ledger::open(path_);
    ledger->record_usage(row("main", now - 600, now - 300, true, 300, 0.6));
    ledger->record_usage(row("main", now - 600, now - 300, false, 20, 1.5));
    ledger->record_usage(row("main", now - 300, now - 10, true, 290, 0.4));
    ledger->record_usage(row("blog", now - 100, now - 50, true, 50, 0.1));
    // Older than the 30 days the rates come from: read by a report whose window reaches it,
    // left out of the metrics' rates.
    ledger->record_usage(row("main", now - 40 * 86400.0, now - 40 * 86400.0 + 60, true, 60, 9));
  }
  const auto data = read_ledger(path_, now - 3600, now, "main");
  ASSERT_EQ(data.usage.size(), 3u);  // the 40-day-old row ends before until − 30 days
  EXPECT_TRUE(data.usage[0].idle);
  EXPECT_DOUBLE_EQ(data.usage[0].totals.cpu_seconds, 0.6);
  EXPECT_DOUBLE_EQ(data.usage[0].totals.memory_byte_seconds, 300 * 3e7);
  EXPECT_EQ(data.usage[0].totals.samples, 10u);
  EXPECT_EQ(data.usage[0].cpu_source, "proc");
  EXPECT_EQ(data.usage[0].memory_source, "pss");
  EXPECT_FALSE(data.usage[1].idle);
  EXPECT_EQ(read_ledger(path_, now - 50 * 86400.0, now).usage.size(), 5u) << "a longer window reads all of it";

  const auto totals = read_lifetime_totals(path_);
  const UsageTotals& idle = totals.at("main").idle_usage;
  EXPECT_DOUBLE_EQ(idle.seconds, 590);
  EXPECT_DOUBLE_EQ(idle.cpu_seconds, 1.0);
  EXPECT_EQ(idle.samples, 20u);
  EXPECT_DOUBLE_EQ(totals.at("main").busy_usage.cpu_seconds, 1.5);
  EXPECT_DOUBLE_EQ(totals.at("blog").idle_usage.seconds, 50);
}

TEST(CommandText, QuotesOnlyWhatAShellWouldReadDifferently) {
  EXPECT_EQ(command_text({"vacuumdb", "--all", "--analyze-in-stages"}), "vacuumdb --all --analyze-in-stages");
  EXPECT_EQ(command_text({"psql", "-c", "VACUUM (ANALYZE) t;", ""}), "psql -c 'VACUUM (ANALYZE) t;' ''");
  EXPECT_EQ(command_text({"sh", "-c", "echo it's $HOME"}), "sh -c 'echo it'\\''s $HOME'");
  EXPECT_EQ(command_text({"/usr/bin/pg_dump", "--file=/var/backups/db.sql", "user@host:5432"}),
            "/usr/bin/pg_dump --file=/var/backups/db.sql user@host:5432");
  EXPECT_EQ(command_text({}), "");
}

// ---- Writes the file refuses are kept and written later ------------------------------------------

// The writer's connection may not grow the file beyond its current pages: from then on every
// write that needs a new page fails with SQLITE_FULL, exactly as on a full disk.
void fill_the_disk(Ledger& ledger) { ledger.exec_on_writer_for_test("PRAGMA max_page_count = 1"); }
void free_the_disk(Ledger& ledger) { ledger.exec_on_writer_for_test("PRAGMA max_page_count = 1073741823"); }

// A wake too large for the pages the file has: it needs new ones.
WakeRow big_wake(UnixTime at) {
  return client_wake(at, "app-" + std::to_string(static_cast<int>(at)), "unix", std::string(20000, 'x'));
}

TEST_F(LedgerTest, WritesAFullDiskRefusesAreKeptInOrderAndWrittenWhenItAcceptsThemAgain) {
  auto ledger = Ledger::open(path_);
  ledger->record_transition("main", "", "asleep", 10.0, "adopted");
  ledger->flush();
  fill_the_disk(*ledger);
  for (int i = 1; i <= 4; ++i) ledger->record_wake(big_wake(100.0 * i));
  ledger->record_transition("main", "asleep", "waking", 400.0, "client");
  ledger->heartbeat(401.0);
  ledger->heartbeat(402.0);  // coalesced with the one before while kept
  ledger->flush();
  EXPECT_EQ(ledger->pending_writes(), 6u) << "4 wakes, a transition, one heartbeat";
  EXPECT_GE(ledger->failed_writes(), 6u);
  EXPECT_NE(ledger->last_error().find("full"), std::string::npos) << ledger->last_error();
  EXPECT_TRUE(read_ledger(path_, 0, 1e12).wakes.empty());

  // Still full: a retry (flush ignores the backoff) keeps them, and counts nothing twice.
  const auto failed = ledger->failed_writes();
  ledger->flush();
  EXPECT_EQ(ledger->pending_writes(), 6u);
  EXPECT_EQ(ledger->failed_writes(), failed);
  EXPECT_EQ(ledger->lost_writes(), 0u);

  free_the_disk(*ledger);              // runs a flush first: still full then; now free
  ledger->record_wake(big_wake(500));  // the next write, after the backoff, takes the kept ones first
  for (int i = 0; i < 100 && ledger->pending_writes() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ledger->flush();
  EXPECT_EQ(ledger->pending_writes(), 0u);
  EXPECT_EQ(ledger->resumed_writes(), 6u);
  EXPECT_EQ(ledger->lost_writes(), 0u);
  const auto data = read_ledger(path_, 0, 1e12);
  ASSERT_EQ(data.wakes.size(), 5u);
  for (std::size_t i = 0; i < data.wakes.size(); ++i) {
    EXPECT_DOUBLE_EQ(data.wakes[i].requested_at, 100.0 * static_cast<double>(i + 1));
    EXPECT_EQ(data.wakes[i].detail.size(), 20000u);
  }
  // The transition went in after the wakes, in order: contiguous intervals, the heartbeat kept.
  ASSERT_EQ(data.intervals.size(), 2u);
  EXPECT_DOUBLE_EQ(data.intervals[0].end, 400.0);
  EXPECT_TRUE(data.intervals[1].open);
  EXPECT_DOUBLE_EQ(data.intervals[1].end, 402.0);
}

TEST_F(LedgerTest, BeyondTheBoundTheOldestHeartbeatGoesFirstThenTheOldestWrite) {
  auto ledger = Ledger::open(path_);
  ledger->flush();
  fill_the_disk(*ledger);
  ledger->record_wake(big_wake(1));
  ledger->heartbeat(2);
  for (std::size_t i = 0; i < Ledger::kMaxPendingJobs; ++i) {
    ledger->record_wake(client_wake(10.0 + static_cast<double>(i), "small", "10.0.0.1:1"));
  }
  ledger->flush();
  EXPECT_EQ(ledger->pending_writes(), Ledger::kMaxPendingJobs);
  EXPECT_EQ(ledger->lost_writes(), 2u) << "the heartbeat, then the oldest wake";
  free_the_disk(*ledger);
  ledger->flush();
  EXPECT_EQ(ledger->pending_writes(), 0u);
  const auto data = read_ledger(path_, 0, 1e12);
  ASSERT_EQ(data.wakes.size(), Ledger::kMaxPendingJobs);
  EXPECT_DOUBLE_EQ(data.wakes.front().requested_at, 10.0);
  EXPECT_DOUBLE_EQ(data.wakes.back().requested_at, 10.0 + static_cast<double>(Ledger::kMaxPendingJobs - 1));
}

TEST_F(LedgerTest, WhatTheFileStillRefusesWhenTheLedgerClosesIsReportedLost) {
  std::size_t reported = 0;
  std::string error;
  {
    auto ledger = Ledger::open(path_);
    ledger->on_close_loss([&](std::size_t lost, const std::string& e) {
      reported = lost;
      error = e;
    });
    ledger->flush();
    fill_the_disk(*ledger);
    ledger->record_wake(big_wake(1));
    ledger->record_wake(big_wake(2));
    ledger->flush();
    EXPECT_EQ(ledger->pending_writes(), 2u);
  }
  EXPECT_EQ(reported, 2u);
  EXPECT_NE(error.find("full"), std::string::npos) << error;
  EXPECT_TRUE(read_ledger(path_, 0, 1e12).wakes.empty());
}

}  // namespace
}  // namespace pgnap::accounting
