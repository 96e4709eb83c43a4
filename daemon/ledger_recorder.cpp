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
    : ledger_(ledger), heartbeat_(heartbeat), timer_(std::move(executor)) {}

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
  const auto failures = ledger_.failed_writes();
  if (failures == failures_reported_) return;
  // Once per heartbeat at most: a full disk must not flood the log.
  PGNAP_LOG(kError, "ledger",
            (failures - failures_reported_) << " write(s) to " << ledger_.path() << " failed: " << ledger_.last_error()
                                            << "; accounting for that time is lost");
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
  ledger_.record_wake(row);
}

}  // namespace pgnap::daemon
