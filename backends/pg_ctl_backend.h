// The pg_ctl driver: a PostgreSQL data directory started and stopped with pg_ctl, run as
// the cluster's OS user when pgnap runs as root (PostgreSQL refuses to run as root).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/child_process.h"

namespace pgnap::backends {

struct PgCtlOptions {
  std::string bin_dir;   // directory holding pg_ctl (resolved; see find_pg_bin_dir)
  std::string data_dir;  // passed as -D
  std::string log_file;  // passed as -l: the server's stderr before its own logging starts
  std::optional<RunAs> run_as;
  std::chrono::milliseconds stop_timeout{60000};
};

// Where pg_ctl lives when the config does not say: the directory of a pg_ctl on PATH, else
// the newest /usr/lib/postgresql/<major>/bin (Debian and Ubuntu keep it off PATH).
// Returns "" when none is found. Runs at start-up only.
[[nodiscard]] std::string find_pg_bin_dir();

class PgCtlBackend final : public Backend {
 public:
  explicit PgCtlBackend(PgCtlOptions options);

  [[nodiscard]] std::string_view driver() const override { return "pg_ctl"; }
  [[nodiscard]] asio::awaitable<Status> status() override;
  [[nodiscard]] asio::awaitable<Outcome> start(Clock::time_point deadline) override;
  [[nodiscard]] asio::awaitable<Outcome> stop(Clock::time_point deadline) override;
  [[nodiscard]] std::vector<std::string> describe() const override;
  [[nodiscard]] std::chrono::milliseconds stop_budget() const override { return options_.stop_timeout; }

  // The command lines, exposed for tests and `pgnap check`.
  [[nodiscard]] std::vector<std::string> start_argv(std::chrono::seconds wait) const;
  [[nodiscard]] std::vector<std::string> stop_argv(std::chrono::seconds wait) const;
  [[nodiscard]] std::vector<std::string> status_argv() const;

 private:
  [[nodiscard]] std::string pg_ctl() const;
  // Runs `pg_ctl start|stop` within `deadline`; a failure carries pg_ctl's message.
  [[nodiscard]] asio::awaitable<Outcome> run_pg_ctl(std::string_view action, Clock::time_point deadline);
  // The server log written since `offset`, at most its last few lines: where PostgreSQL
  // says why it did not start (bad setting, port in use, wrong ownership...).
  [[nodiscard]] std::string log_since(long long offset) const;

  PgCtlOptions options_;
};

}  // namespace pgnap::backends
