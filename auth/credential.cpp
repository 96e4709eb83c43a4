// Telling a stored secret's kind, as PostgreSQL's get_password_type() (src/backend/libpq/crypt.c)
// and PgBouncer's copy of it (src/scram.c) do, with one difference:
// where PostgreSQL takes a "SCRAM-SHA-256$..." that does not parse for a plaintext password,
// pgnap refuses it, since whoever wrote it meant a verifier (a typo in one would otherwise
// become that user's password).
#include "auth/credential.h"

#include "auth/md5.h"

namespace pgnap::auth {

std::optional<Credential> parse_credential(std::string_view secret) {
  // PostgreSQL: "an empty password is never a valid password" (crypt.c plain_crypt_verify),
  // and CREATE ROLE ... PASSWORD '' stores none.
  if (secret.empty()) return std::nullopt;
  Credential credential;
  credential.secret = std::string(secret);
  if (is_md5_hash(secret)) {
    credential.kind = Credential::Kind::kMd5;
  } else if (secret.starts_with("SCRAM-SHA-256$")) {
    credential.scram = parse_scram_verifier(secret);
    if (!credential.scram) return std::nullopt;
    credential.kind = Credential::Kind::kScram;
  } else {
    credential.kind = Credential::Kind::kPassword;
  }
  return credential;
}

std::string_view to_string(Credential::Kind kind) {
  switch (kind) {
    case Credential::Kind::kPassword: return "password";
    case Credential::Kind::kMd5: return "md5";
    case Credential::Kind::kScram: return "scram-sha-256";
  }
  return "unknown";
}

}  // namespace pgnap::auth
