#include "backends/exec_backend.h"

#include <algorithm>

namespace pgnap::backends {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// "start command `docker start db` exited with status 1: Error: No such container: db"
std::string failure(std::string_view which, const std::vector<std::string>& argv, const CommandResult& r) {
  std::string why = std::string(which) + " command `" + format_command(argv) + "` " + r.describe();
  if (const auto out = trim(r.output); !out.empty()) why += ": " + out;
  return why;
}

}  // namespace

ExecBackend::ExecBackend(ExecOptions options) : options_(std::move(options)) {}

asio::awaitable<CommandResult> ExecBackend::run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                                Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  CommandSpec spec;
  spec.argv = argv;
  spec.run_as = options_.run_as;
  spec.timeout = std::max(std::chrono::milliseconds(1), std::min(timeout, left));
  spec.env = options_.env;
  co_return co_await run_command(std::move(spec));
}

asio::awaitable<Status> ExecBackend::status() {
  // Without a status command, only the probe can tell; say so and let the wake run `start`
  // (which, for most tools, is harmless when the server already runs).
  if (options_.status.empty()) co_return Status{RunState::kUnknown, std::string(kNoStatusCommand)};
  const auto r = co_await run(options_.status, options_.status_timeout, Clock::now() + options_.status_timeout);
  if (r.end == CommandResult::End::kExited) {
    co_return Status{r.exit_code == 0 ? RunState::kRunning : RunState::kStopped, trim(r.output)};
  }
  co_return Status{RunState::kUnknown, failure("status", options_.status, r)};
}

asio::awaitable<Outcome> ExecBackend::start(Clock::time_point deadline) {
  const auto r = co_await run(options_.start, options_.start_timeout, deadline);
  if (r.ok()) co_return Outcome::success();
  co_return Outcome::failure(failure("start", options_.start, r));
}

asio::awaitable<Outcome> ExecBackend::stop(Clock::time_point deadline) {
  const auto r = co_await run(options_.stop, options_.stop_timeout, deadline);
  if (r.ok()) co_return Outcome::success();
  co_return Outcome::failure(failure("stop", options_.stop, r));
}

std::vector<std::string> ExecBackend::describe() const {
  auto ms = [](std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s" : std::to_string(d.count()) + "ms";
  };
  std::vector<std::string> lines;
  lines.push_back("start:  " + format_command(options_.start) + "  (timeout " + ms(options_.start_timeout) + ")");
  lines.push_back("stop:   " + format_command(options_.stop) + "  (timeout " + ms(options_.stop_timeout) + ")");
  lines.push_back(options_.status.empty() ? std::string("status: (none: readiness and state come from the probe)")
                                          : "status: " + format_command(options_.status) + "  (timeout " +
                                                ms(options_.status_timeout) + ")");
  for (const auto& [name, value] : options_.env) lines.push_back("env:    " + name + "=" + value);
  if (options_.run_as) lines.push_back("as OS user: " + options_.run_as->name);
  return lines;
}

}  // namespace pgnap::backends
