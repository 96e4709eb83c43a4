// The auth_query (PgBouncer's, by default over pg_shadow): run on a connection logged in as
// the auth_user, with the client's user name as $1, through the extended protocol so the
// name is never spliced into SQL. The passwd column of its first row is the user's
// verifier, md5 hash or password; no row (or NULL) means PostgreSQL has no password for it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "daemon/stream.h"

namespace pgnap::daemon {

struct AuthQueryResult {
  bool ran = false;                   // false: the connection failed or the query errored (`error`)
  std::optional<std::string> secret;  // ran: the passwd column, nullopt for no row or NULL
  std::string error;
};

// When `ran`, the connection is at ReadyForQuery again, ready for the next lookup; otherwise
// the caller closes it (an error from the query is rare enough not to tell the two apart).
[[nodiscard]] asio::awaitable<AuthQueryResult> run_auth_query(Stream& server, std::string_view query,
                                                              std::string_view user, Clock::time_point deadline);

}  // namespace pgnap::daemon
