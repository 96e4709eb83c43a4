// The ledger's usage rows (schema version 6): what the database's own processes used while
// awake, written by the daemon's sampler (daemon/usage_sampler.cpp) and read back by the
// report and, at start-up, by the metrics.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "accounting/ledger.h"
#include "accounting/sqlite.h"

namespace pgnap::accounting {

using detail::Statement;

void Ledger::record_usage(const UsageRow& u) {
  enqueue(
      [u](sqlite3* db) {
        Statement s(db,
                    "INSERT INTO usage (instance, started_at, ended_at, kind, seconds, cpu_seconds, memory_seconds, "
                    "memory_byte_seconds, samples, cpu_source, memory_source) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
        s.bind(1, u.instance)
            .bind(2, u.started_at)
            .bind(3, u.ended_at)
            .bind(4, std::string(u.idle ? "idle" : "busy"))
            .bind(5, u.totals.seconds)
            .bind(6, u.totals.cpu_seconds)
            .bind(7, u.totals.memory_seconds)
            .bind(8, u.totals.memory_byte_seconds)
            .bind(9, static_cast<std::int64_t>(u.totals.samples))
            .bind(10, u.cpu_source)
            .bind(11, u.memory_source)
            .run();
      },
      u.instance.size() + u.cpu_source.size() + u.memory_source.size());
}

namespace detail {

void read_usage_rows(sqlite3* db, double after, double until, const std::string& instance, std::vector<UsageRow>& out) {
  if (schema_version(db) < 6) return;
  Statement s(db,
              "SELECT instance, started_at, ended_at, kind, seconds, cpu_seconds, memory_seconds, memory_byte_seconds, "
              "samples, cpu_source, memory_source FROM usage "
              "WHERE ended_at > ?1 AND started_at < ?2 AND (?3 = '' OR instance = ?3) ORDER BY instance, started_at, id");
  s.bind(1, after).bind(2, until).bind(3, instance);
  while (s.step()) {
    UsageRow u;
    u.instance = s.text(0);
    u.started_at = s.real(1);
    u.ended_at = s.real(2);
    u.idle = s.text(3) == "idle";
    u.totals.seconds = s.real(4);
    u.totals.cpu_seconds = s.real(5);
    u.totals.memory_seconds = s.real(6);
    u.totals.memory_byte_seconds = s.real(7);
    u.totals.samples = static_cast<std::uint64_t>(std::max<std::int64_t>(0, s.integer(8)));
    u.cpu_source = s.text(9);
    u.memory_source = s.text(10);
    out.push_back(std::move(u));
  }
}

void read_usage_totals(sqlite3* db, double after, std::map<std::string, LifetimeTotals>& out) {
  if (schema_version(db) < 6) return;
  Statement s(db,
              "SELECT instance, kind, SUM(seconds), SUM(cpu_seconds), SUM(memory_seconds), SUM(memory_byte_seconds), "
              "SUM(samples) FROM usage WHERE ended_at > ?1 GROUP BY instance, kind");
  s.bind(1, after);
  while (s.step()) {
    UsageTotals t;
    t.seconds = s.real(2);
    t.cpu_seconds = s.real(3);
    t.memory_seconds = s.real(4);
    t.memory_byte_seconds = s.real(5);
    t.samples = static_cast<std::uint64_t>(std::max<std::int64_t>(0, s.integer(6)));
    LifetimeTotals& totals = out[s.text(0)];
    (s.text(1) == "idle" ? totals.idle_usage : totals.busy_usage) += t;
  }
}

}  // namespace detail
}  // namespace pgnap::accounting
