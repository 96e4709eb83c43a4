// The ledger's read side: what `pgnap report` and `pgnap check` read, and what the metrics
// restore at start-up. Each opens the file read-only, so it works while the daemon writes.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "accounting/ledger.h"
#include "accounting/sqlite.h"

namespace pgnap::accounting {

using detail::exec;
using detail::open_db;
using detail::schema_version;
using detail::Statement;
using detail::with_read_only;

LedgerData read_ledger(const std::string& path, UnixTime since, UnixTime until, const std::string& instance) {
  if (::access(path.c_str(), R_OK) != 0) {
    throw std::runtime_error("cannot read ledger " + path + ": " + std::strerror(errno));
  }
  sqlite3* db = open_db(path, SQLITE_OPEN_READONLY);
  LedgerData data;
  try {
    const int version = schema_version(db);
    if (version == 0) throw std::runtime_error("not a pgnap ledger (no schema)");
    if (version > kLedgerSchemaVersion) {
      throw std::runtime_error("ledger schema version " + std::to_string(version) + " is newer than this pgnap's (" +
                               std::to_string(kLedgerSchemaVersion) + ")");
    }
    // One read transaction: a consistent snapshot while the daemon keeps writing.
    exec(db, "BEGIN");
    {
      Statement s(db,
                  "SELECT instance, state, started_at, COALESCE(ended_at, heartbeat_at), ended_at IS NULL, "
                  "start_reason, end_reason FROM intervals "
                  "WHERE started_at < ?2 AND COALESCE(ended_at, heartbeat_at) > ?1 AND (?3 = '' OR instance = ?3) "
                  "ORDER BY instance, started_at, id");
      s.bind(1, since).bind(2, until).bind(3, instance);
      while (s.step()) {
        data.intervals.push_back({s.text(0), s.text(1), s.real(2), s.real(3), s.integer(4) != 0, s.text(5), s.text(6)});
      }
    }
    {
      // Before version 5 (a file an older pgnap still writes) a wake has no cause: a client's.
      const bool causes = version >= 5;
      Statement s(db, causes ? "SELECT instance, requested_at, finished_at, outcome, duration_s, clients_waited, "
                               "started, detail, cause, \"user\", \"database\", application_name, client_address, "
                               "cause_detail FROM wakes "
                               "WHERE requested_at >= ?1 AND requested_at < ?2 AND (?3 = '' OR instance = ?3) "
                               "ORDER BY requested_at, id"
                             : "SELECT instance, requested_at, finished_at, outcome, duration_s, clients_waited, "
                               "started, detail FROM wakes "
                               "WHERE requested_at >= ?1 AND requested_at < ?2 AND (?3 = '' OR instance = ?3) "
                               "ORDER BY requested_at, id");
      s.bind(1, since).bind(2, until).bind(3, instance);
      while (s.step()) {
        WakeRow w;
        w.instance = s.text(0);
        w.requested_at = s.real(1);
        w.finished_at = s.real(2);
        w.outcome = s.text(3);
        w.duration_s = s.real(4);
        w.clients_waited = static_cast<std::uint32_t>(s.integer(5));
        w.started = s.integer(6) != 0;
        w.detail = s.text(7);
        if (causes) {
          w.cause = s.text(8);
          w.user = s.text(9);
          w.database = s.text(10);
          w.application_name = s.text(11);
          w.client_address = s.text(12);
          w.cause_detail = s.text(13);
        }
        data.wakes.push_back(std::move(w));
      }
    }
    if (version >= 5) {
      Statement s(db,
                  "SELECT instance, started_at, finished_at, command, COALESCE(exit_status, -1), outcome, "
                  "output_tail FROM maintenance "
                  "WHERE started_at >= ?1 AND started_at < ?2 AND (?3 = '' OR instance = ?3) "
                  "ORDER BY started_at, id");
      s.bind(1, since).bind(2, until).bind(3, instance);
      while (s.step()) {
        data.maintenance.push_back({s.text(0), s.real(1), s.real(2), s.text(3), static_cast<int>(s.integer(4)),
                                    s.text(5), s.text(6)});
      }
    }
    {
      Statement s(db,
                  "SELECT instance, at, from_state, to_state, reason FROM transitions "
                  "WHERE at >= ?1 AND at < ?2 AND (?3 = '' OR instance = ?3) ORDER BY at, id");
      s.bind(1, since).bind(2, until).bind(3, instance);
      while (s.step()) data.transitions.push_back({s.text(0), s.real(1), s.text(2), s.text(3), s.text(4)});
    }
    detail::read_usage_rows(db, std::min(since, until - kUsageLookbackSeconds), until, instance, data.usage);
    exec(db, "COMMIT");
  } catch (const std::exception& e) {
    sqlite3_close(db);
    throw std::runtime_error("ledger " + path + ": " + e.what());
  }
  sqlite3_close(db);
  return data;
}

std::optional<RunningConfig> read_running_config(const std::string& path, const std::string& source) {
  if (::access(path.c_str(), R_OK) != 0) return std::nullopt;
  sqlite3* db = open_db(path, SQLITE_OPEN_READONLY);
  std::optional<RunningConfig> out;
  try {
    if (schema_version(db) >= 3) {
      Statement s(db,
                  "SELECT started_at, started_text, COALESCE(reloaded_at, 0), COALESCE(reloaded_text, '') "
                  "FROM running_config WHERE source = ?1");
      s.bind(1, source);
      if (s.step()) out = RunningConfig{s.real(0), s.text(1), s.real(2), s.text(3)};
    }
  } catch (const std::exception&) {
    out.reset();
  }
  sqlite3_close(db);
  return out;
}

std::map<std::string, ReportedCounters> read_reported_counters(const std::string& path) {
  return with_read_only(path, [](sqlite3* db) {
    std::map<std::string, ReportedCounters> out;
    Statement s(db, "SELECT instance, name, value FROM reported_counters");
    while (s.step()) {
      auto& c = out[s.text(0)];
      const std::string name = s.text(1);
      const double v = s.real(2);
      if (name == "asleep_seconds") c.asleep_seconds = v;
      else if (name == "awake_seconds") c.awake_seconds = v;
      else if (name == "energy_kwh") c.energy_kwh = v;
      else if (name == "carbon_g") c.carbon_g = v;
      else if (name == "cost") c.cost = v;
      else if (name == "embodied_g") c.embodied_g = v;
      else if (name == "measured_cpu_seconds") c.measured_cpu_seconds = v;
      else if (name == "measured_memory_gb_hours") c.measured_memory_gb_hours = v;
      else if (name == "measured_energy_kwh") c.measured_energy_kwh = v;
      else if (name == "measured_carbon_g") c.measured_carbon_g = v;
    }
    return out;
  });
}

std::map<std::string, LifetimeTotals> read_lifetime_totals(const std::string& path) {
  return with_read_only(path, [](sqlite3* db) {
    std::map<std::string, LifetimeTotals> totals;
    exec(db, "BEGIN");
    {
      Statement s(db,
                  "SELECT instance, state, SUM(COALESCE(ended_at, heartbeat_at) - started_at) FROM intervals "
                  "GROUP BY instance, state");
      while (s.step()) {
        auto& t = totals[s.text(0)];
        const std::string state = s.text(1);
        if (state == "asleep") t.asleep_seconds += s.real(2);
        else if (state == "waking" || state == "awake" || state == "suspending") t.awake_seconds += s.real(2);
      }
    }
    {
      Statement s(db,
                  "SELECT instance, MAX(COALESCE(ended_at, heartbeat_at)) FROM intervals "
                  "WHERE state IN ('waking', 'awake', 'suspending') GROUP BY instance");
      while (s.step()) totals[s.text(0)].last_awake_at = s.real(1);
    }
    {
      Statement s(db, "SELECT instance, COUNT(*), SUM(duration_s) FROM wakes WHERE started = 1 GROUP BY instance");
      while (s.step()) {
        auto& t = totals[s.text(0)];
        t.starts = static_cast<std::uint64_t>(s.integer(1));
        t.start_seconds = s.real(2);
      }
    }
    detail::read_usage_totals(db, unix_now() - kUsageLookbackSeconds, totals);
    exec(db, "COMMIT");
    return totals;
  });
}

}  // namespace pgnap::accounting
