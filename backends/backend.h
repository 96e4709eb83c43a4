// One async interface for every way of waking and suspending an instance: pg_ctl, systemd
// and exec (docs/architecture.md, "Adding a backend"). A driver only runs commands: readiness is decided by
// the libpq probe (backends/probe.h) and the whole wake by backends/wake.h, shared by all.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "backends/probe.h"

namespace pgnap::backends {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Result of a driver operation: ok, or a reason a human can act on (the command, its exit
// status and what it printed).
struct Outcome {
  bool ok = true;
  std::string detail;
  static Outcome success() { return {}; }
  static Outcome failure(std::string why) { return {false, std::move(why)}; }
};

enum class RunState {
  kRunning,  // a server process exists (it may still be starting)
  kStopped,  // no server process
  kUnknown,  // the driver could not tell (detail says why)
};

struct Status {
  RunState state = RunState::kUnknown;
  std::string detail;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The driver's name as written in the config ("pg_ctl").
  [[nodiscard]] virtual std::string_view driver() const = 0;

  [[nodiscard]] virtual asio::awaitable<Status> status() = 0;

  // Starts the server. Completes when the start command has finished, which may be before
  // (or, for pg_ctl -w, just after) the server is protocol-ready; a failure carries why.
  // Cancelling the awaiting coroutine kills the command.
  [[nodiscard]] virtual asio::awaitable<Outcome> start(Clock::time_point deadline) = 0;

  // Cleanly stops the server (never "immediate"): pending transactions are rolled back and
  // a shutdown checkpoint is written.
  [[nodiscard]] virtual asio::awaitable<Outcome> stop(Clock::time_point deadline) = 0;

  // Is the server protocol-ready at `target`? Every driver uses the libpq probe; the
  // indirection lets a unit test of the lifecycle decide readiness.
  [[nodiscard]] virtual asio::awaitable<ProbeResult> probe(ProbeTarget target, std::chrono::milliseconds timeout) {
    return probe_once(std::move(target), timeout);
  }

  // How long a clean stop may take before pgnap gives up on it (the driver's own timeout).
  [[nodiscard]] virtual std::chrono::milliseconds stop_budget() const { return std::chrono::seconds(60); }

  // The cgroup (v2, relative to its root: "/system.slice/x.service") the server runs in, when
  // the driver knows it (systemd); "" otherwise. Read while awake, for measuring
  // (accounting/usage.h).
  [[nodiscard]] virtual asio::awaitable<std::string> cgroup() { co_return std::string(); }

  // The commands this driver runs, for `pgnap check` and logs.
  [[nodiscard]] virtual std::vector<std::string> describe() const = 0;
};

}  // namespace pgnap::backends
