// From an instance's configuration to its backend driver. Adding a driver is one file in
// backends/, its rows in config/schema.cpp, and one branch here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "config/config.h"

namespace pgnap::daemon {

// Resolves what the driver needs from the machine (pg_ctl's directory, OS users). Start-up
// only. Throws std::runtime_error with a message naming the instance and what to fix.
[[nodiscard]] std::unique_ptr<backends::Backend> make_backend(const config::InstanceConfig& config);

// What `pgnap check` can verify about the machine for this instance without touching the
// instance: "" when nothing is wrong.
[[nodiscard]] std::vector<std::string> backend_problems(const config::InstanceConfig& config);

}  // namespace pgnap::daemon
