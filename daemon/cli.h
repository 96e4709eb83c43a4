// The command line: `pgnap run|check|report -c FILE`, the control socket's commands
// (`status`, `wake NAME`, `sleep NAME`, `reload`; docs/control.md), `--help`, `--version`.
// Exit status: 0 success, 1 configuration or start-up error, or a control command refused or
// failed, 2 usage error.
#pragma once

#include <chrono>
#include <string>

#include "config/config.h"

namespace pgnap::daemon {

inline constexpr int kExitOk = 0;
inline constexpr int kExitConfig = 1;
inline constexpr int kExitFailed = 1;  // a control command refused or failed
inline constexpr int kExitUsage = 2;

int run_cli(int argc, char** argv);

// One control command over the running gateway's socket (cli_control.cpp; docs/control.md).
struct ControlCommand {
  std::string command;  // status | wake | sleep | reload
  std::string name;     // wake, sleep: the instance
  std::string hold;     // wake --for, as written
  std::string format = "table";
  std::string socket;                                        // the control socket's path
  config::Duration wake_timeout = std::chrono::seconds(60);  // how long a wake may take to answer
};
// Prints the answer; returns the exit status.
int run_control_command(const ControlCommand& command);

}  // namespace pgnap::daemon
