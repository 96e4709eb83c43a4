// Base64 (RFC 4648, with padding) as SCRAM and PostgreSQL's verifiers use it. Decoding is
// strict: any character outside the alphabet, wrong padding or a stray byte is refused.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgnap::auth {

[[nodiscard]] std::string base64_encode(std::string_view bytes);
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pgnap::auth
