// The command line: `pgnap run|check|report -c FILE`, the control socket's commands
// (`status`, `wake NAME`, `sleep NAME`, `reload`; docs/control.md), `--help`, `--version`.
// Exit status: 0 success, 1 configuration or start-up error, or a control command refused or
// failed, 2 usage error.
#pragma once

namespace pgnap::daemon {

inline constexpr int kExitOk = 0;
inline constexpr int kExitConfig = 1;
inline constexpr int kExitFailed = 1;  // a control command refused or failed
inline constexpr int kExitUsage = 2;

int run_cli(int argc, char** argv);

}  // namespace pgnap::daemon
