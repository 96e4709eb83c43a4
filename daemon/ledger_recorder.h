// Feeds the ledger (accounting/ledger.h) from the instances' events, and keeps its heartbeat.
// Runs on the event loop: every call only queues a write for the ledger's own thread.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "accounting/ledger.h"
#include "config/config.h"
#include "daemon/instance.h"

namespace pgnap::daemon {

class LedgerRecorder final : public InstanceObserver {
 public:
  LedgerRecorder(asio::any_io_executor executor, accounting::Ledger& ledger, config::Duration heartbeat);

  void start();
  void set_heartbeat(config::Duration heartbeat);
  // A clean stop: the open intervals end now.
  void stop(const std::string& reason);

  void on_state_change(const Instance& instance, InstanceState from, InstanceState to,
                       const std::string& reason) override;
  void on_wake(const Instance& instance, const Wake& wake) override;
  void on_maintenance(const Instance& instance, const Maintenance& run) override;

 private:
  // Wall-clock time for the ledger, never earlier than the last one written: a clock step
  // backwards must not make intervals overlap.
  accounting::UnixTime stamp(accounting::UnixTime t);
  void arm_heartbeat();
  // Once per heartbeat at most: writes the file refused (kept in memory), kept writes that
  // went in once it accepted them again, and writes lost for the bound.
  void report_write_failures();

  accounting::Ledger& ledger_;
  config::Duration heartbeat_;
  asio::steady_timer timer_;
  accounting::UnixTime last_ = 0;
  std::set<std::string, std::less<>> seen_;  // instances with an interval opened by this run
  std::uint64_t failures_reported_ = 0;
  std::uint64_t resumed_reported_ = 0;
  std::uint64_t lost_reported_ = 0;
  bool failing_ = false;      // the last report said writes are kept in memory
  bool loss_logged_ = false;  // this spell of failures has logged its first lost write
  bool stopped_ = false;
};

}  // namespace pgnap::daemon
