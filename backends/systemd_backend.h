// The systemd driver: a unit (Debian's postgresql@15-main, or any service) started, stopped
// and inspected through systemd's D-Bus API on the system bus, waiting for each job to
// finish. sd-bus (libsystemd) is driven by the event loop: no call blocks.
//
// What it needs: a system bus, and permission to manage the unit: pgnap as root, or a polkit
// rule granting pgnap's user org.freedesktop.systemd1.manage-units for that unit
// (docs/operations.md). Errors say which is missing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace pgnap::backends {

struct SystemdOptions {
  std::string unit;  // full unit name, e.g. "postgresql@15-main.service"
  std::chrono::milliseconds stop_timeout{90000};
};

class SystemdBackend final : public Backend {
 public:
  explicit SystemdBackend(SystemdOptions options);

  [[nodiscard]] std::string_view driver() const override { return "systemd"; }
  [[nodiscard]] asio::awaitable<Status> status() override;
  [[nodiscard]] asio::awaitable<Outcome> start(Clock::time_point deadline) override;
  [[nodiscard]] asio::awaitable<Outcome> stop(Clock::time_point deadline) override;
  [[nodiscard]] std::vector<std::string> describe() const override;
  [[nodiscard]] std::chrono::milliseconds stop_budget() const override { return options_.stop_timeout; }
  [[nodiscard]] asio::awaitable<std::string> cgroup() override;

  // The D-Bus calls this driver makes, for `pgnap check` and tests.
  [[nodiscard]] std::vector<std::string> calls() const;

 private:
  [[nodiscard]] asio::awaitable<Outcome> run_job(const char* method, Clock::time_point deadline);
  // A string property of the unit (LoadUnit, then Properties.Get); nullopt with `error` set.
  [[nodiscard]] asio::awaitable<std::optional<std::string>> unit_property(const char* interface, const char* property,
                                                                          std::string& error);
  SystemdOptions options_;
};

// The system bus address sd-bus will use ($DBUS_SYSTEM_BUS_ADDRESS or the default).
[[nodiscard]] std::string system_bus_address();
// A D-Bus error, in words that say what to do.
[[nodiscard]] std::string explain_bus_error(const std::string& error_name, const std::string& message,
                                            const std::string& unit, const std::string& action);

}  // namespace pgnap::backends
