// Measures what an instance's own processes use while it is awake (docs/accounting.md,
// "Measured"), for the report's measured basis: every accounting.measure_interval, the CPU
// time and memory of the postmaster and its children (/proc), or of the cgroup it runs in,
// split into idle stretches (no session in use since the last reading) and busy ones.
//
// One per instance, told of its state changes like the ledger recorder: sampling starts when
// the instance is awake and stops the moment it leaves that state, so nothing runs while it
// sleeps. The files are read on the gateway's reader thread, never on the event loop; the
// sums go to the ledger (a usage row per kind) every few minutes and when the awake stretch
// ends, and to the instance's metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "accounting/ledger.h"
#include "accounting/usage.h"
#include "daemon/instance.h"

namespace pgnap::daemon {

// Where an instance's processes are read from: a cgroup v2 directory, or a postmaster.pid.
struct UsageTarget {
  std::string cgroup_dir;  // /sys/fs/cgroup/system.slice/postgresql@15-main.service
  std::string pid_file;    // <data_dir>/postmaster.pid
  // pg_ctl's -D, when it may be a configuration directory (Debian's /etc/postgresql/15/main):
  // without a postmaster.pid there, its postgresql.conf's external_pid_file, then
  // data_directory's postmaster.pid.
  std::string config_dir;
};

// One reading of `target` (blocking file reads: for the reader thread), or why there is none.
struct UsageRead {
  std::optional<accounting::UsageReading> reading;
  std::string error;
  std::chrono::microseconds took{0};
};
[[nodiscard]] UsageRead read_usage(const UsageTarget& target);
// The postmaster's pid as `target` leads to it (the same fallbacks), or why not.
[[nodiscard]] std::optional<int> postmaster_pid(const UsageTarget& target, std::string& error);

class UsageSampler final : public InstanceObserver {
 public:
  // The ledger stretch is written at least this often while awake.
  static constexpr std::chrono::minutes kFlushEvery{5};

  UsageSampler(Instance& instance, accounting::Ledger& ledger, boost::asio::thread_pool& reader);
  ~UsageSampler() override;
  UsageSampler(const UsageSampler&) = delete;
  UsageSampler& operator=(const UsageSampler&) = delete;

  void on_state_change(const Instance& instance, InstanceState from, InstanceState to,
                       const std::string& reason) override;
  void on_wake(const Instance&, const Wake&) override {}
  // Writes what was measured since the last write.
  void flush();
  // Stops sampling (and its timer, so the event loop can end), writing what was measured: the
  // instance left the awake state, or the gateway stops.
  void stop();

 private:
  asio::awaitable<void> run(std::uint64_t generation);
  [[nodiscard]] asio::awaitable<std::optional<UsageTarget>> target();

  Instance& instance_;
  accounting::Ledger& ledger_;
  boost::asio::thread_pool& reader_;
  asio::steady_timer timer_;
  accounting::UsageAccumulator accumulator_;
  std::uint64_t generation_ = 0;  // one per awake stretch: the loop of an older one ends
  bool running_ = false;
  Clock::time_point last_reading_{};
  Clock::time_point last_flush_{};
  accounting::UnixTime stretch_start_ = 0;  // wall time of the first reading since the last write
  accounting::UnixTime stretch_end_ = 0;    // ... and of the latest
  std::string cpu_source_;
  std::string memory_source_;
  std::uint64_t readings_ = 0;  // since the last write, with the time they took on the reader thread
  std::chrono::microseconds read_time_{0};
  std::string last_error_;  // logged once per awake stretch
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pgnap::daemon
