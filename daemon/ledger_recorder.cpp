#include "daemon/ledger_recorder.h"

#include <algorithm>

#include "daemon/log.h"

namespace pgnap::daemon {

namespace {
accounting::UnixTime to_unix(std::chrono::system_clock::time_point t) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()) /
         1000.0;
}
}  // namespace

LedgerRecorder::LedgerRecorder(asio::any_io_executor executor, accounting::Ledger& ledger, config::Duration heartbeat)
    : ledger_(ledger), heartbeat_(heartbeat), timer_(std::move(executor)) {
  // Called from the ledger's own thread as it closes: log::write is one write(2), safe there.
  ledger_.on_close_loss([path = ledger_.path()](std::size_t lost, const std::string& error) {
    PGNAP_LOG(kError, "ledger",
              lost << " ledger write(s) kept in memory could not be written to " << path << " before pgnap stopped ("
                   << error << "); their accounting is lost");
  });
}

accounting::UnixTime LedgerRecorder::stamp(accounting::UnixTime t) {
  last_ = std::max(last_, t);
  return last_;
}

void LedgerRecorder::start() { arm_heartbeat(); }

void LedgerRecorder::set_heartbeat(config::Duration heartbeat) {
  heartbeat_ = heartbeat;
  if (!stopped_) arm_heartbeat();  // re-arming cancels the pending wait
}

void LedgerRecorder::arm_heartbeat() {
  timer_.expires_after(heartbeat_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    ledger_.heartbeat(stamp(accounting::unix_now()));
    report_write_failures();
    arm_heartbeat();
  });
}

void LedgerRecorder::report_write_failures() {
  // Once per heartbeat at most: a full disk must not flood the log.
  const auto failures = ledger_.failed_writes();
  const auto pending = ledger_.pending_writes();
  const auto resumed = ledger_.resumed_writes();
  const auto lost = ledger_.lost_writes();
  if (failures != failures_reported_) {
    PGNAP_LOG(kError, "ledger",
              (failures - failures_reported_)
                  << " ledger write(s) to " << ledger_.path() << " failed: " << ledger_.last_error()
                  << "; kept in memory (" << pending << " pending), written when it accepts them again");
    failing_ = true;
  }
  if (lost != lost_reported_ && !loss_logged_) {
    // Said once per spell of failures; the recovery's line gives the total.
    PGNAP_LOG(kError, "ledger",
              (lost - lost_reported_) << " ledger write(s) to " << ledger_.path()
                                      << " lost: more were kept in memory than the bound ("
                                      << accounting::Ledger::kMaxPendingJobs
                                      << " writes or 16 MiB; the oldest heartbeats go first), or SQLite refused them");
    loss_logged_ = true;
  }
  if (failing_ && pending == 0) {
    PGNAP_LOG(kWarning, "ledger",
              "ledger writes resumed: " << (resumed - resumed_reported_) << " pending write(s) written"
                                        << (lost != lost_reported_
                                                ? "; " + std::to_string(lost - lost_reported_) + " lost"
                                                : std::string()));
    failing_ = false;
  }
  if (!failing_) {
    resumed_reported_ = resumed;
    lost_reported_ = lost;
    loss_logged_ = false;
  }
  failures_reported_ = failures;
}

void LedgerRecorder::stop(const std::string& reason) {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  ledger_.close_all(stamp(accounting::unix_now()), reason);
}

void LedgerRecorder::on_state_change(const Instance& instance, InstanceState from, InstanceState to,
                                     const std::string& reason) {
  if (stopped_) return;
  // The first state of this run opens the instance's first interval; afterwards only real
  // changes split it.
  const bool first = seen_.insert(instance.name()).second;
  if (!first && from == to) return;
  ledger_.record_transition(instance.name(), first ? std::string() : std::string(to_string(from)),
                            std::string(to_string(to)), stamp(accounting::unix_now()), reason);
}

void LedgerRecorder::on_wake(const Instance& instance, const Wake& wake) {
  if (stopped_) return;
  accounting::WakeRow row;
  row.instance = instance.name();
  row.requested_at = to_unix(wake.requested);
  row.finished_at = std::max(row.requested_at, to_unix(wake.finished));
  row.outcome = wake.outcome;
  row.duration_s = static_cast<double>(wake.duration.count()) / 1000.0;
  row.clients_waited = wake.clients_waited;
  row.started = wake.started;
  row.detail = wake.detail;
  row.cause = std::string(to_string(wake.cause));
  row.cause_detail = wake.cause_detail;
  if (wake.cause == WakeCause::kClient) {
    row.user = wake.client.user;
    row.database = wake.client.database;
    row.application_name = wake.client.application_name;
    row.client_address = wake.client.address;
  }
  ledger_.record_wake(row);
}

void LedgerRecorder::on_maintenance(const Instance& instance, const Maintenance& run) {
  if (stopped_) return;
  accounting::MaintenanceRow row;
  row.instance = instance.name();
  row.started_at = to_unix(run.started);
  row.finished_at = std::max(row.started_at, to_unix(run.finished));
  row.command = accounting::command_text(run.command);
  row.exit_status = run.exit_status;
  row.outcome = run.outcome;
  row.output_tail = run.output_tail;
  ledger_.record_maintenance(row);
}

}  // namespace pgnap::daemon
