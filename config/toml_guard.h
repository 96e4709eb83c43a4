// Private to the config loader: what toml++ must never be given. toml++ 3.3 (Debian
// bookworm's) reaches __builtin_unreachable(), undefined behaviour, on some non-ASCII text
// outside strings and comments (marzer/tomlplusplus#190 and #295), so parse_config asks here
// first and refuses such a file with a positioned error of its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace pgnap::config::detail {

// Why toml++ must not read `text` (named `source` in the error), or nullopt when it may.
[[nodiscard]] std::optional<ConfigError> check_tomlpp_safe(std::string_view text, const std::string& source);

}  // namespace pgnap::config::detail
