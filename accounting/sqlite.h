// Private to the ledger: the few SQLite calls its writer (ledger.cpp), its readers
// (ledger_read.cpp) and its caches (ledger_cache.cpp) share, each turning a failure into
// std::runtime_error with SQLite's own message, so that no call's result code goes unchecked.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <map>
#include <string>
#include <vector>

#include "accounting/ledger.h"

namespace pgnap::accounting::detail {

// A failed SQLite call: its message, and its (extended) result code, so that the writer can
// tell a full disk (worth keeping the write for) from a statement SQLite refuses outright.
class Error : public std::runtime_error {
 public:
  Error(const std::string& message, int code) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] int code() const { return code_; }

 private:
  int code_;
};

// SQLite's message for the last error on `db`.
[[nodiscard]] std::string errmsg(sqlite3* db);
// Runs SQL that returns no rows.
void exec(sqlite3* db, const char* sql);
// Opens `path` with `flags` (SQLITE_OPEN_*), waiting up to 5 s for a lock held by another
// connection.
[[nodiscard]] sqlite3* open_db(const std::string& path, int flags);
// The ledger's schema version (PRAGMA user_version): 0 for a file that has none.
[[nodiscard]] int schema_version(sqlite3* db);

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) throw Error(errmsg(db), rc);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  // SQLITE_ROW: true; SQLITE_DONE: false; anything else throws.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error(errmsg(db_), rc);
  }
  void run() {
    while (step()) {
    }
  }
  double real(int col) { return sqlite3_column_double(stmt_, col); }
  std::int64_t integer(int col) { return sqlite3_column_int64(stmt_, col); }
  bool is_null(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  sqlite3_stmt* handle() { return stmt_; }
  std::string text(int col) {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) throw Error(errmsg(db_), rc);
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Opens `path` read-only (it must exist), returns body(db) and closes it, whatever happens; a
// failure becomes std::runtime_error naming the ledger.
template <typename F>
auto with_read_only(const std::string& path, F body) -> decltype(body(static_cast<sqlite3*>(nullptr))) {
  sqlite3* db = open_db(path, SQLITE_OPEN_READONLY);
  try {
    auto result = body(db);
    sqlite3_close(db);
    return result;
  } catch (const std::exception& e) {
    sqlite3_close(db);
    throw std::runtime_error("ledger " + path + ": " + e.what());
  }
}

// The usage rows (schema version 6) ending after `after` and starting before `until`
// (instance "" = all), appended to `out` (accounting/ledger_usage.cpp).
void read_usage_rows(sqlite3* db, double after, double until, const std::string& instance, std::vector<UsageRow>& out);
// Per instance, the idle and busy usage of the rows ending after `after`, summed into `out`.
void read_usage_totals(sqlite3* db, double after, std::map<std::string, LifetimeTotals>& out);

// Brings the ledger's schema to kLedgerSchemaVersion, or throws for a newer one
// (accounting/ledger_schema.cpp).
void migrate(sqlite3* db, const std::string& path);
// Ends the intervals a crash left open at their last heartbeat; how many.
std::size_t close_crashed_intervals(sqlite3* db);

// BEGIN IMMEDIATE ... COMMIT, rolled back if the body throws.
template <typename F>
void transaction(sqlite3* db, F body) {
  exec(db, "BEGIN IMMEDIATE");
  try {
    body();
    exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace pgnap::accounting::detail
