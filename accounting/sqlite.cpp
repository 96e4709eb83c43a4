// The SQLite calls the ledger's writer and readers share (accounting/sqlite.h).
#include "accounting/sqlite.h"

namespace pgnap::accounting::detail {

std::string errmsg(sqlite3* db) { return db ? sqlite3_errmsg(db) : "out of memory"; }

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string message = err ? err : errmsg(db);
    sqlite3_free(err);
    throw Error(message, rc);
  }
}

sqlite3* open_db(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "cannot open ledger " + path + ": " + errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error(message);
  }
  // The daemon's writer and a report may meet; wait for each other briefly instead of failing.
  sqlite3_busy_timeout(db, 5000);
  return db;
}

int schema_version(sqlite3* db) {
  Statement s(db, "PRAGMA user_version");
  return s.step() ? static_cast<int>(s.integer(0)) : 0;
}

}  // namespace pgnap::accounting::detail
