// The instance's processes, read while it is awake: see usage_sampler.h.
#include "daemon/usage_sampler.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/log.h"

namespace pgnap::daemon {

namespace {

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::optional<int> postmaster_pid(const UsageTarget& target, std::string& error) {
  auto from = [](const std::string& path) -> std::optional<int> {
    const auto text = read_small_file(path);
    return text ? accounting::parse_postmaster_pid(*text) : std::nullopt;
  };
  if (auto pid = from(target.pid_file)) return pid;
  std::string tried = target.pid_file;
  if (!target.config_dir.empty()) {
    if (const auto conf = read_small_file(target.config_dir + "/postgresql.conf")) {
      for (const auto& [setting, file] : {std::pair{"external_pid_file", ""}, std::pair{"data_directory", "/postmaster.pid"}}) {
        if (const auto value = accounting::parse_conf_setting(*conf, setting); value && !value->empty()) {
          const std::string path = *value + file;
          if (auto pid = from(path)) return pid;
          tried += ", " + path;
        }
      }
    }
  }
  error = "cannot read the postmaster's pid from " + tried;
  return std::nullopt;
}

UsageRead read_usage(const UsageTarget& target) {
  const auto started = std::chrono::steady_clock::now();
  UsageRead out;
  if (!target.cgroup_dir.empty()) {
    out.reading = accounting::read_cgroup(target.cgroup_dir);
    // systemd's hybrid hierarchy keeps the v2 tree (cpu.stat, no memory controller) there.
    const std::string v2_root = "/sys/fs/cgroup/";
    if (!out.reading && target.cgroup_dir.starts_with(v2_root)) {
      out.reading = accounting::read_cgroup(v2_root + "unified/" + target.cgroup_dir.substr(v2_root.size()));
    }
    if (!out.reading) out.error = "cannot read " + target.cgroup_dir + "/cpu.stat";
  } else {
    const auto pid = postmaster_pid(target, out.error);
    if (pid) {
      out.reading = accounting::read_process_tree("/proc", *pid, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
      if (!out.reading) out.error = "cannot read /proc/" + std::to_string(*pid) + "/stat";
    }
  }
  out.took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  return out;
}

UsageSampler::UsageSampler(Instance& instance, accounting::Ledger& ledger, boost::asio::thread_pool& reader)
    : instance_(instance), ledger_(ledger), reader_(reader), timer_(instance.executor()) {}

UsageSampler::~UsageSampler() { *alive_ = false; }

void UsageSampler::on_state_change(const Instance&, InstanceState, InstanceState to, const std::string&) {
  if (to == InstanceState::kAwake) {
    if (running_ || !instance_.config().accounting.measure) return;
    running_ = true;
    accumulator_.restart();
    last_error_.clear();
    last_flush_ = Clock::now();
    asio::co_spawn(instance_.executor(), run(++generation_), asio::detached);
  } else {
    stop();
  }
}

void UsageSampler::stop() {
  if (!running_) return;
  running_ = false;
  ++generation_;  // the loop ends at its next step
  timer_.cancel();
  flush();
  accumulator_.restart();
  stretch_start_ = 0;
}

asio::awaitable<std::optional<UsageTarget>> UsageSampler::target() {
  const config::InstanceConfig& config = instance_.config();
  if (config.backend == "pg_ctl") {
    co_return UsageTarget{"", config.pg_ctl.data_dir + "/postmaster.pid", config.pg_ctl.data_dir};
  }
  if (config.backend == "exec") {
    if (!config.exec.cgroup.empty()) co_return UsageTarget{config.exec.cgroup, "", ""};
    if (!config.exec.pid_file.empty()) co_return UsageTarget{"", config.exec.pid_file, ""};
    co_return std::nullopt;
  }
  const std::string group = co_await instance_.backend().cgroup();
  if (group.empty()) co_return std::nullopt;
  co_return UsageTarget{"/sys/fs/cgroup" + group, "", ""};
}

asio::awaitable<void> UsageSampler::run(std::uint64_t generation) {
  const auto alive = alive_;
  const auto current = [&] { return *alive && generation == generation_; };
  const std::optional<UsageTarget> where = co_await target();
  if (!current()) co_return;
  if (!where) {
    const std::string why = config::measure_unavailable(instance_.config());
    PGNAP_LOG(kDebug, "instance=" + instance_.name(),
              "not measured: " << (why.empty() ? "the driver does not know the server's cgroup" : why));
    running_ = false;
    co_return;
  }
  while (current() && instance_.config().accounting.measure) {
    // The interval this reading closes was busy if a session was in use at any moment of it.
    const bool busy = instance_.in_use_since(last_reading_);
    // Named, not written inside the co_await: GCC 12 destroys a capturing lambda created in a
    // co_await expression twice (free(): invalid pointer).
    auto read_on_reader = [target = *where]() -> asio::awaitable<UsageRead> { co_return read_usage(target); };
    const UsageRead read = co_await asio::co_spawn(reader_, std::move(read_on_reader), asio::use_awaitable);
    if (!current()) co_return;
    const auto now = Clock::now();
    last_reading_ = now;
    if (read.reading) {
      accumulator_.add(std::chrono::duration<double>(now.time_since_epoch()).count(), *read.reading, busy);
      stretch_end_ = accounting::unix_now();
      if (stretch_start_ == 0) stretch_start_ = stretch_end_;
      cpu_source_ = std::string(accounting::to_string(read.reading->cpu_source));
      memory_source_ =
          read.reading->memory_bytes ? std::string(accounting::to_string(read.reading->memory_source)) : "";
      ++readings_;
      read_time_ += read.took;
    } else if (read.error != last_error_) {
      // Once per awake stretch: a postmaster.pid pgnap's user may not read says so every time.
      last_error_ = read.error;
      PGNAP_LOG(kWarning, "instance=" + instance_.name(),
                "cannot measure its processes (" << read.error << "): the report keeps the model for this time");
    }
    if (now - last_flush_ >= kFlushEvery) flush();
    timer_.expires_after(instance_.config().accounting.measure_interval);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (current()) {  // measure turned off by a reload
    running_ = false;
    flush();
    accumulator_.restart();
    stretch_start_ = 0;
  }
}

void UsageSampler::flush() {
  last_flush_ = Clock::now();
  const accounting::UsageTotals idle = accumulator_.take_idle();
  const accounting::UsageTotals busy = accumulator_.take_busy();
  if (idle.samples > 0 || busy.samples > 0) {
    for (const auto& [totals, is_idle] : {std::pair{idle, true}, std::pair{busy, false}}) {
      if (totals.samples == 0) continue;
      ledger_.record_usage({instance_.name(), stretch_start_, stretch_end_, is_idle, totals, cpu_source_,
                            memory_source_});
    }
    instance_.metrics().add_usage(idle, busy);
    PGNAP_LOG(kDebug, "instance=" + instance_.name(),
              "measured: " << idle.seconds << " s idle (" << idle.cpu_seconds << " CPU-s), " << busy.seconds
                           << " s busy (" << busy.cpu_seconds << " CPU-s); " << readings_ << " readings, "
                           << (readings_ ? read_time_.count() / static_cast<long long>(readings_) : 0)
                           << " us each on the reader thread");
  }
  // The next stretch starts at the next reading (the accumulator keeps the last one, so no
  // interval is lost between two stretches).
  stretch_start_ = stretch_end_;
  readings_ = 0;
  read_time_ = std::chrono::microseconds(0);
}

}  // namespace pgnap::daemon
