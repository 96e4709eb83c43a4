// PostgreSQL's md5 password method (https://www.postgresql.org/docs/15/auth-password.html):
// the stored hash is "md5" + md5hex(password + user); the client answers a 4-byte salt with
// "md5" + md5hex(md5hex(password + user) + salt). pgnap checks a client's answer against the
// stored hash, and answers PostgreSQL's challenge from the stored hash alone.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgnap::auth {

using Md5Salt = std::array<std::uint8_t, 4>;

// md5 of `bytes`, as 32 lower-case hex digits.
[[nodiscard]] std::string md5_hex(std::string_view bytes);
// "md5" + md5hex(password + user): what PostgreSQL stores.
[[nodiscard]] std::string md5_password_hash(std::string_view password, std::string_view user);
// True for "md5" followed by exactly 32 lower-case hex digits.
[[nodiscard]] bool is_md5_hash(std::string_view text);
// The answer to a salt: "md5" + md5hex(hash without its "md5" + salt).
[[nodiscard]] std::string md5_response(std::string_view stored_hash, const Md5Salt& salt);
// Whether a client's answer matches (compared in constant time).
[[nodiscard]] bool md5_verify(std::string_view stored_hash, const Md5Salt& salt, std::string_view response);

}  // namespace pgnap::auth
