#include "backends/wake.h"

#include <algorithm>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgnap::backends {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

std::chrono::milliseconds remaining(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

// libpq's messages span lines ("...failed: No such file or directory\n\tIs the server
// running locally...?"): the first line says it.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string seconds_text(std::chrono::milliseconds d) {
  if (d < std::chrono::seconds(1)) return std::to_string(d.count()) + " ms";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return text;
}

// Probes until ready or until the deadline; returns the last result.
asio::awaitable<ProbeResult> probe_until_ready(Backend& backend, ProbeTarget target, Clock::time_point deadline,
                                               WakeOptions options) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor);
  ProbeResult last{false, "not probed"};
  const auto started = Clock::now();
  for (;;) {
    const auto left = remaining(deadline);
    if (left.count() == 0) co_return last;
    last = co_await backend.probe(target, std::min(options.probe_timeout, left));
    if (last.ready) co_return last;
    // A local cluster starts in well under a second: probe it often. A cloud database takes
    // minutes: probe it (and its DNS) less often once it is clearly not a quick start.
    const auto waited = Clock::now() - started;
    const auto interval = waited < std::chrono::seconds(2)    ? options.probe_interval
                          : waited < std::chrono::seconds(30) ? std::chrono::milliseconds(250)
                                                              : std::chrono::milliseconds(1000);
    pause.expires_at(std::min(Clock::now() + interval, deadline));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

asio::awaitable<WakeReport> wake(Backend& backend, ProbeTarget target, Clock::time_point deadline,
                                 WakeOptions options) {
  auto executor = co_await asio::this_coro::executor;
  const auto t0 = Clock::now();
  const auto total = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - t0);
  WakeReport report;
  auto finish = [&](bool ok, std::string detail) {
    report.ok = ok;
    report.detail = std::move(detail);
    report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    return report;
  };

  // A server already running and not yet ready (starting, in crash recovery) is waited for.
  auto wait_for_running = [&](std::string how) -> asio::awaitable<WakeReport> {
    auto ready = co_await probe_until_ready(backend, target, deadline, options);
    if (ready.ready) co_return finish(true, std::move(how));
    report.timed_out = true;
    co_return finish(false, "the server is running but did not accept connections within " + seconds_text(total) +
                                " (last probe: " + first_line(ready.detail) + ")");
  };

  // Already up (started by hand, or pgnap restarted)? Then there is nothing to run.
  auto first = co_await backend.probe(target, std::min(options.probe_timeout, remaining(deadline)));
  if (first.ready) co_return finish(true, "already running");
  if (first.answered) co_return co_await wait_for_running("was already starting");

  // Nothing answers: start at once. (Asking the driver's status first would add its own
  // command's time to every wake; it is asked only if the start fails.)
  report.started = true;
  // The start command and the probe run side by side: whichever decides first wins. A
  // start command that succeeds leaves the decision to the probe.
  bool start_finished = false;
  auto run_start = [&]() -> asio::awaitable<Outcome> {
    auto outcome = co_await backend.start(deadline);
    start_finished = true;
    if (!outcome.ok) co_return outcome;
    // Started: the probe decides, and reports the timeout with its last answer.
    asio::steady_timer wait(executor, deadline + std::chrono::seconds(5));
    co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return Outcome::failure("the start command succeeded but the server did not accept connections");
  };
  auto result = co_await (run_start() || probe_until_ready(backend, target, deadline, options));
  if (result.index() == 0) {
    const Outcome failed = std::get<0>(result);
    if (Clock::now() >= deadline) {
      report.timed_out = true;
      co_return finish(false, failed.detail);
    }
    // The start may have failed because a server was already there, starting ("another
    // server might be running"): then it is waited for like any start.
    const Status status = co_await backend.status();
    if (status.state == RunState::kRunning) {
      report.started = false;
      co_return co_await wait_for_running("was already running; the start command said: " + first_line(failed.detail));
    }
    co_return finish(false, failed.detail);
  }
  const ProbeResult& probe = std::get<1>(result);
  if (probe.ready) co_return finish(true, "started");
  report.timed_out = true;
  co_return finish(false, "not ready within " + seconds_text(total) +
                              (start_finished ? "" : "; the start command had not finished and was killed") +
                              " (last probe: " + first_line(probe.detail) + ")");
}

}  // namespace pgnap::backends
