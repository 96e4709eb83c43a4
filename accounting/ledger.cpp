// The ledger's write side: open() (the schema's migrations and the crash recovery are
// ledger_schema.cpp), and the one writer thread that commits the daemon's queued writes in batches, so
// that no SQLite call (and no fsync) ever runs on the event loop. The read side is
// ledger_read.cpp; the authenticating mode's caches are ledger_cache.cpp.
#include "accounting/ledger.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <stdexcept>

#include "accounting/sqlite.h"

namespace pgnap::accounting {

using detail::close_crashed_intervals;
using detail::exec;
using detail::migrate;
using detail::open_db;
using detail::Statement;
using detail::transaction;

UnixTime unix_now() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) / 1000.0;
}

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

void Ledger::enqueue(std::function<void(sqlite3*)> write, std::size_t bytes, std::string coalesce_key,
                     bool expendable) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Job{std::move(write), std::move(coalesce_key), bytes, expendable, false});
  }
  wake_writer_.notify_one();
}

namespace {

// Whether a write refused with `code` may succeed later as it is: the file's state (full,
// unreadable, locked, read-only for now), not the statement, made it fail.
bool worth_retrying(int code) {
  switch (code & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM: return true;
    default: return false;
  }
}

std::size_t bytes_of(std::initializer_list<const std::string*> strings) {
  std::size_t n = 0;
  for (const std::string* s : strings) n += s->size();
  return n;
}

}  // namespace

void Ledger::absorb() {
  while (!queue_.empty()) {
    Job job = std::move(queue_.front());
    queue_.pop_front();
    if (!job.coalesce_key.empty()) {
      // Only the latest heartbeat matters: an earlier one still kept has nothing to add once
      // this one is written after it (an interval closed in between got its end then).
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->coalesce_key == job.coalesce_key) {
          job.failed = job.failed || it->failed;
          pending_bytes_ -= it->bytes;
          pending_.erase(it);
          break;  // there is never more than one per key
        }
      }
    }
    pending_bytes_ += job.bytes;
    pending_.push_back(std::move(job));
    attempt_due_ = true;
  }
  // The bound: the oldest expendable job first (a heartbeat, reported counters: the next
  // one repairs their loss), then the oldest of the others.
  while (pending_.size() > kMaxPendingJobs || pending_bytes_ > kMaxPendingBytes) {
    auto victim = std::find_if(pending_.begin(), pending_.end(), [](const Job& j) { return j.expendable; });
    if (victim == pending_.end()) victim = pending_.begin();
    pending_bytes_ -= victim->bytes;
    pending_.erase(victim);
    ++lost_writes_;
  }
  if (failing_) held_ = pending_.size();
}

void Ledger::attempt(std::unique_lock<std::mutex>& lock) {
  // pending_ is the writer's own: only this thread touches it, so SQLite runs unlocked.
  writing_ = true;
  lock.unlock();
  std::string error;
  int code = SQLITE_OK;
  std::size_t written = 0, resumed = 0, newly_failed = 0, refused = 0;
  try {
    transaction(db_, [&] {
      for (const Job& job : pending_) job.write(db_);
    });
    written = pending_.size();
  } catch (const detail::Error& e) {
    error = e.what();
    code = e.code();
  } catch (const std::exception& e) {
    error = e.what();
    code = SQLITE_ERROR;
  }
  if (written == 0 && !worth_retrying(code)) {
    // Something in the batch SQLite refuses as it is: write one job at a time, so that only
    // that one is lost, and stop at the first the file refuses for now.
    error.clear();
    code = SQLITE_OK;
    while (written < pending_.size()) {
      try {
        transaction(db_, [&] { pending_[written].write(db_); });
        ++written;
      } catch (const detail::Error& e) {
        error = e.what();
        code = e.code();
      } catch (const std::exception& e) {
        error = e.what();
        code = SQLITE_ERROR;
      }
      if (code == SQLITE_OK) continue;
      if (worth_retrying(code)) break;
      // Refused for what it is: counted as lost, and the rest goes on.
      pending_bytes_ -= pending_[written].bytes;
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(written));
      ++refused;
      code = SQLITE_OK;
    }
  }
  for (std::size_t i = 0; i < written; ++i) {
    if (pending_[i].failed) ++resumed;
    pending_bytes_ -= pending_[i].bytes;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(written));
  for (Job& job : pending_) {
    if (!job.failed) ++newly_failed;
    job.failed = true;
  }
  lock.lock();
  writing_ = false;
  failed_writes_ += newly_failed + refused;
  resumed_writes_ += resumed;
  lost_writes_ += refused;
  if (!error.empty()) last_error_ = std::move(error);
  failing_ = !pending_.empty();
  held_ = pending_.size();
  if (failing_) retry_after_ = Clock::now() + kRetryInterval;
  idle_.notify_all();
}

void Ledger::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_writer_.wait(lock, [this] {
      return stopping_ || !queue_.empty() || attempt_due_ || flush_requested_ > flush_done_;
    });
    absorb();
    const std::uint64_t flush_seen = flush_requested_;
    if (stopping_) {
      finish(lock);
      return;
    }
    const bool now = flush_seen > flush_done_;
    if (!now && failing_ && Clock::now() < retry_after_) {
      // A full disk is not hammered: newer writes wait behind the kept ones until the
      // backoff ends (or a flush, or the end).
      wake_writer_.wait_until(lock, retry_after_, [this] { return stopping_ || flush_requested_ > flush_done_; });
      continue;
    }
    if (!pending_.empty()) attempt(lock);
    attempt_due_ = false;
    flush_done_ = flush_seen;
    idle_.notify_all();
  }
}

void Ledger::finish(std::unique_lock<std::mutex>& lock) {
  // One last try, backoff or not; what the file still refuses is lost with the process.
  if (!pending_.empty()) attempt(lock);
  if (!pending_.empty()) {
    const std::size_t lost = pending_.size();
    lost_writes_ += lost;
    held_ = 0;
    pending_.clear();
    pending_bytes_ = 0;
    if (on_close_loss_) {
      const auto report = on_close_loss_;
      const std::string error = last_error_;
      lock.unlock();
      report(lost, error);
      lock.lock();
    }
  }
  flush_done_ = flush_requested_;
  idle_.notify_all();
}

void Ledger::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t mine = ++flush_requested_;
  wake_writer_.notify_one();
  idle_.wait(lock, [this, mine] { return flush_done_ >= mine; });
}

std::uint64_t Ledger::failed_writes() const {
  std::lock_guard lock(mutex_);
  return failed_writes_;
}

std::size_t Ledger::pending_writes() const {
  std::lock_guard lock(mutex_);
  return held_;
}

std::uint64_t Ledger::resumed_writes() const {
  std::lock_guard lock(mutex_);
  return resumed_writes_;
}

std::uint64_t Ledger::lost_writes() const {
  std::lock_guard lock(mutex_);
  return lost_writes_;
}

std::string Ledger::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void Ledger::on_close_loss(std::function<void(std::size_t lost, const std::string& error)> report) {
  std::lock_guard lock(mutex_);
  on_close_loss_ = std::move(report);
}

void Ledger::exec_on_writer_for_test(const std::string& sql) {
  flush();
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return !writing_; });  // between two batches, and kept there by the lock
  exec(db_, sql.c_str());
}

void Ledger::record_transition(const std::string& instance, const std::string& from, const std::string& to, UnixTime at,
                               const std::string& reason) {
  enqueue(
      [=](sqlite3* db) {
        Statement close(db,
                        "UPDATE intervals SET ended_at = MAX(?2, started_at), heartbeat_at = MAX(?2, started_at), "
                        "end_reason = ?3 WHERE instance = ?1 AND ended_at IS NULL");
        close.bind(1, instance).bind(2, at).bind(3, reason).run();
        Statement open(db,
                       "INSERT INTO intervals (instance, state, started_at, heartbeat_at, start_reason) "
                       "VALUES (?1, ?2, ?3, ?3, ?4)");
        open.bind(1, instance).bind(2, to).bind(3, at).bind(4, reason).run();
        Statement log(
            db, "INSERT INTO transitions (instance, at, from_state, to_state, reason) VALUES (?1, ?2, ?3, ?4, ?5)");
        log.bind(1, instance).bind(2, at).bind(3, from).bind(4, to).bind(5, reason).run();
      },
      bytes_of({&instance, &from, &to, &reason}));
}

void Ledger::record_wake(const WakeRow& w) {
  const std::size_t bytes = bytes_of({&w.instance, &w.outcome, &w.detail, &w.cause, &w.user, &w.database,
                                      &w.application_name, &w.client_address, &w.cause_detail});
  enqueue(
      [w](sqlite3* db) {
        Statement s(db,
                    "INSERT INTO wakes (instance, requested_at, finished_at, outcome, duration_s, clients_waited, "
                    "started, detail, cause, \"user\", \"database\", application_name, client_address, cause_detail) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
        s.bind(1, w.instance)
            .bind(2, w.requested_at)
            .bind(3, w.finished_at)
            .bind(4, w.outcome)
            .bind(5, w.duration_s)
            .bind(6, static_cast<std::int64_t>(w.clients_waited))
            .bind(7, static_cast<std::int64_t>(w.started ? 1 : 0))
            .bind(8, w.detail)
            .bind(9, w.cause)
            .bind(10, w.user)
            .bind(11, w.database)
            .bind(12, w.application_name)
            .bind(13, w.client_address)
            .bind(14, w.cause_detail)
            .run();
      },
      bytes);
}

void Ledger::record_maintenance(const MaintenanceRow& m) {
  const std::size_t bytes = bytes_of({&m.instance, &m.command, &m.outcome, &m.output_tail});
  enqueue(
      [m](sqlite3* db) {
        Statement s(db,
                    "INSERT INTO maintenance (instance, started_at, finished_at, command, exit_status, outcome, "
                    "output_tail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
        s.bind(1, m.instance).bind(2, m.started_at).bind(3, m.finished_at).bind(4, m.command);
        if (m.exit_status >= 0) s.bind(5, static_cast<std::int64_t>(m.exit_status));  // else NULL: did not exit
        s.bind(6, m.outcome).bind(7, m.output_tail).run();
      },
      bytes);
}

std::string command_text(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !arg.empty() && arg.find_first_not_of(
                                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      out += arg;
      continue;
    }
    // POSIX sh: nothing is special inside single quotes; a quote itself is '\''.
    out += '\'';
    for (const char c : arg) {
      if (c == '\'') out += "'\\''";
      else out += c;
    }
    out += '\'';
  }
  return out;
}

void Ledger::record_reported(const std::string& instance, const ReportedCounters& counters) {
  enqueue(
      [instance, counters](sqlite3* db) {
        Statement s(db,
                    "INSERT INTO reported_counters (instance, name, value) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (instance, name) DO UPDATE SET value = MAX(value, excluded.value)");
        for (const auto& [name, value] : counters.named()) {
          s.bind(1, instance).bind(2, std::string(name)).bind(3, value).run();
          sqlite3_reset(s.handle());
        }
      },
      instance.size() + 64, {}, true);
}

void Ledger::record_running_config(const std::string& source, const std::string& text, bool reload) {
  const UnixTime at = unix_now();
  enqueue(
      [source, text, reload, at](sqlite3* db) {
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
      },
      bytes_of({&source, &text}));
}

void Ledger::heartbeat(UnixTime at) {
  enqueue(
      [at](sqlite3* db) {
        Statement s(db, "UPDATE intervals SET heartbeat_at = MAX(heartbeat_at, ?1) WHERE ended_at IS NULL");
        s.bind(1, at).run();
      },
      0, "heartbeat", true);
}

void Ledger::close_all(UnixTime at, const std::string& reason) {
  enqueue(
      [at, reason](sqlite3* db) {
        Statement s(db,
                    "UPDATE intervals SET ended_at = MAX(?1, started_at), heartbeat_at = MAX(?1, started_at), "
                    "end_reason = ?2 WHERE ended_at IS NULL");
        s.bind(1, at).bind(2, reason).run();
      },
      bytes_of({&reason}));
}

std::array<std::pair<std::string_view, double>, 10> ReportedCounters::named() const {
  return {{{"asleep_seconds", asleep_seconds},
           {"awake_seconds", awake_seconds},
           {"energy_kwh", energy_kwh},
           {"carbon_g", carbon_g},
           {"cost", cost},
           {"embodied_g", embodied_g},
           {"measured_cpu_seconds", measured_cpu_seconds},
           {"measured_memory_gb_hours", measured_memory_gb_hours},
           {"measured_energy_kwh", measured_energy_kwh},
           {"measured_carbon_g", measured_carbon_g}}};
}

}  // namespace pgnap::accounting
