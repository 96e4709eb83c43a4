// The wake procedure every backend shares: is it already up? if not, run the driver's
// start while probing readiness every few tens of milliseconds, until the probe succeeds,
// the start command fails, or the deadline passes.
#pragma once

#include <chrono>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "backends/backend.h"
#include "backends/probe.h"

namespace pgnap::backends {

struct WakeReport {
  bool ok = false;
  bool timed_out = false;
  bool started = false;  // the start command ran (false: the server was already up or starting)
  std::string detail;    // why it failed, or how it became ready
  std::chrono::milliseconds duration{0};
};

struct WakeOptions {
  // Between probe attempts. PostgreSQL opens its socket early and answers 57P03 until it
  // accepts sessions, so a short interval adds at most this much to its own start time.
  std::chrono::milliseconds probe_interval{5};
  // One probe attempt never waits longer than this (a black-holed TCP address).
  std::chrono::milliseconds probe_timeout{500};
};

[[nodiscard]] asio::awaitable<WakeReport> wake(Backend& backend, ProbeTarget target, Clock::time_point deadline,
                                               WakeOptions options = {});

}  // namespace pgnap::backends
