// The SQLite ledger on its own: schema and file mode, intervals opened and closed by
// transitions, heartbeats, crash recovery, reading windows while the writer runs.
#include "accounting/ledger.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

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
