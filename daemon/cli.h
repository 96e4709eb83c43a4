// The command line: `pgnap run|check -c FILE`, `--help`, `--version`.
// Exit status: 0 success, 1 configuration or start-up error, 2 usage error.
#pragma once

namespace pgnap::daemon {

inline constexpr int kExitOk = 0;
inline constexpr int kExitConfig = 1;
inline constexpr int kExitUsage = 2;

int run_cli(int argc, char** argv);

}  // namespace pgnap::daemon
