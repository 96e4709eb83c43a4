// PgBouncer's auth_file format, so users can reuse theirs
// (https://www.pgbouncer.org/config.html#authentication-file-format): one user per line,
//
//   "username" "password, md5 hash or SCRAM verifier" ["anything else is ignored"]
//
// both fields in double quotes, a double quote inside written twice (""); lines starting
// with ';' are comments; blank lines are skipped. Where PgBouncer stops reading at the first
// broken line, pgnap reports every broken line with its number and keeps the good ones.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "auth/credential.h"

namespace pgnap::auth {

struct AuthFileEntry {
  std::string user;
  Credential credential;
  std::size_t line = 0;  // 1-based
};

struct AuthFileError {
  std::size_t line = 0;
  std::string message;  // e.g. "expected a quoted user name", "unterminated quote", "invalid SCRAM verifier"
};

struct AuthFile {
  std::vector<AuthFileEntry> entries;  // in file order; a user listed twice: the last wins
  std::vector<AuthFileError> errors;
};

// Users and passwords are limited to 1000 bytes each (longer lines are errors).
[[nodiscard]] AuthFile parse_auth_file(std::string_view text);

}  // namespace pgnap::auth
