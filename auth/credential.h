// What pgnap knows of a user's password: a plaintext password, PostgreSQL's md5 hash, or a
// SCRAM-SHA-256 verifier, as an auth_file line or pg_shadow's passwd column gives it
// (PgBouncer tells them apart the same way).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/scram.h"

namespace pgnap::auth {

struct Credential {
  enum class Kind { kPassword, kMd5, kScram };
  Kind kind = Kind::kPassword;
  std::string secret;                  // as stored: the password, "md5...", or "SCRAM-SHA-256$..."
  std::optional<ScramVerifier> scram;  // kScram: parsed
  bool operator==(const Credential&) const = default;
};

// "md5" + 32 hex digits is an md5 hash; "SCRAM-SHA-256$" starts a verifier (nullopt when it
// does not parse: a broken verifier must not be taken for a password); anything else is a
// plaintext password. An empty secret is nullopt (PostgreSQL: no password, no login).
[[nodiscard]] std::optional<Credential> parse_credential(std::string_view secret);

[[nodiscard]] std::string_view to_string(Credential::Kind kind);  // "password", "md5", "scram-sha-256"

}  // namespace pgnap::auth
