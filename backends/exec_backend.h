// The exec driver: any commands the user gives (a cloud CLI, docker, a script), each an
// argument array run without a shell, with its own timeout, its output captured and shown
// when it fails. `status` (optional) exits 0 when the server is running; readiness is still
// the libpq probe on the instance's address.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/child_process.h"

namespace pgnap::backends {

// Status detail when no status command is configured (the probe alone decides).
inline constexpr std::string_view kNoStatusCommand = "no status command configured";

struct ExecOptions {
  std::vector<std::string> start;
  std::vector<std::string> stop;
  std::vector<std::string> status;  // empty: no status command
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<RunAs> run_as;
  std::chrono::milliseconds start_timeout{60000};
  std::chrono::milliseconds stop_timeout{60000};
  std::chrono::milliseconds status_timeout{10000};
};

class ExecBackend final : public Backend {
 public:
  explicit ExecBackend(ExecOptions options);

  [[nodiscard]] std::string_view driver() const override { return "exec"; }
  [[nodiscard]] asio::awaitable<Status> status() override;
  [[nodiscard]] asio::awaitable<Outcome> start(Clock::time_point deadline) override;
  [[nodiscard]] asio::awaitable<Outcome> stop(Clock::time_point deadline) override;
  [[nodiscard]] std::vector<std::string> describe() const override;
  [[nodiscard]] std::chrono::milliseconds stop_budget() const override { return options_.stop_timeout; }

 private:
  // Runs one of the commands within min(its timeout, deadline).
  [[nodiscard]] asio::awaitable<CommandResult> run(const std::vector<std::string>& argv,
                                                   std::chrono::milliseconds timeout, Clock::time_point deadline);

  ExecOptions options_;
};

}  // namespace pgnap::backends
