// Internal to auth/ (not part of its API): the SCRAM-SHA-256 primitives of RFC 5802
// section 3 over OpenSSL, and the error texts, shared by the verifier, the message parsers,
// the server and the client.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "auth/scram.h"

namespace pgnap::auth::detail {

// H(): SHA-256.
[[nodiscard]] ScramKey sha256(std::string_view bytes);
// HMAC(key, message) with SHA-256.
[[nodiscard]] ScramKey hmac_sha256(std::string_view key, std::string_view message);
[[nodiscard]] inline ScramKey hmac_sha256(const ScramKey& key, std::string_view message) {
  return hmac_sha256(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), message);
}
// Hi(): PBKDF2-HMAC-SHA-256 with a 32-byte output (RFC 5802 section 2.2); nullopt when
// OpenSSL refuses (a FIPS provider wants a salt of 16 bytes or more, 1000 iterations or more).
[[nodiscard]] std::optional<ScramKey> salted_password(std::string_view password, std::string_view salt, int iterations);

[[nodiscard]] ScramKey xor_keys(const ScramKey& a, const ScramKey& b);
// Constant time (CRYPTO_memcmp): the comparisons that decide an authentication must not tell
// an attacker, by their duration, how many leading bytes of a guess were right.
[[nodiscard]] bool equal_keys(const ScramKey& a, const ScramKey& b);
[[nodiscard]] bool equal_bytes(std::string_view a, std::string_view b);

[[nodiscard]] inline std::string_view as_bytes(const ScramKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}
[[nodiscard]] std::string key_base64(const ScramKey& key);

// The SCRAM keys of a password (RFC 5802 section 3): ClientKey, StoredKey = H(ClientKey),
// ServerKey.
struct PasswordKeys {
  ScramKey client_key{};
  ScramKey stored_key{};
  ScramKey server_key{};
};
[[nodiscard]] std::optional<PasswordKeys> password_keys(std::string_view password, std::string_view salt,
                                                        int iterations);

// ---- errors ----

inline constexpr std::string_view kProtocolViolation = "08P01";     // ERRCODE_PROTOCOL_VIOLATION
inline constexpr std::string_view kFeatureNotSupported = "0A000";   // ERRCODE_FEATURE_NOT_SUPPORTED
inline constexpr std::string_view kInvalidAuthorization = "28000";  // ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
inline constexpr std::string_view kInvalidPassword = "28P01";       // ERRCODE_INVALID_PASSWORD
inline constexpr std::string_view kInternalError = "XX000";         // ERRCODE_INTERNAL_ERROR
inline constexpr std::string_view kMalformed = "malformed SCRAM message";

// PostgreSQL reads a SASL message of at most PG_MAX_AUTH_TOKEN_LENGTH bytes
// (src/include/libpq/auth.h); every SCRAM message parser refuses longer ones.
inline constexpr std::size_t kMaxMessageLength = 65535;

[[nodiscard]] inline ScramFailure failure(std::string_view sqlstate, std::string message, std::string detail = {}) {
  return ScramFailure{std::string(sqlstate), std::move(message), std::move(detail)};
}
[[nodiscard]] inline ScramFailure malformed(std::string detail) {
  return failure(kProtocolViolation, std::string(kMalformed), std::move(detail));
}

// What the peer sent, made fit for an error message and a log line (auth-scram.c
// sanitize_char() and sanitize_str()): printable ASCII only, and at most 30 characters.
[[nodiscard]] std::string sanitize_char(std::string_view text, std::size_t pos);  // "'x'", "0x0a", "0x00" at the end
[[nodiscard]] std::string sanitize_str(std::string_view text);

// RFC 5802 section 7: printable = %x21-2B / %x2D-7E (printable ASCII but ',').
[[nodiscard]] bool is_scram_printable(std::string_view text);

// A positive decimal int as PostgreSQL prints one ("%d"): no sign, no leading zero.
[[nodiscard]] std::optional<int> parse_positive_int(std::string_view text);

}  // namespace pgnap::auth::detail
