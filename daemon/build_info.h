// What this binary is: its version (from CHANGELOG.md, through CMake), the git revision it was
// built from, and the configuration file every command reads when -c is not given.
#pragma once

#include <string_view>

namespace pgnap::daemon {

// "0.2.0"
[[nodiscard]] std::string_view version();
// "3f2a9c1d0b7e", "3f2a9c1d0b7e-dirty" (tracked files differed from that commit), or "unknown"
// (built outside a git checkout without $PGNAP_REVISION).
[[nodiscard]] std::string_view revision();
// "/etc/pgnap/pgnap.toml" (CMake's PGNAP_CONFIG_FILE: the file the systemd unit names).
[[nodiscard]] std::string_view default_config_file();

}  // namespace pgnap::daemon
