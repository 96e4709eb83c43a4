// Logging in to PostgreSQL on a client's behalf, in the authenticating mode: the startup
// packet with the client's parameters, then the server's authentication request answered
// with what pgnap holds for the user — the client's SCRAM ClientKey (pass-through: it works
// when PostgreSQL holds the verifier pgnap checked), the md5 hash, or a plaintext password —
// then ParameterStatus and BackendKeyData until ReadyForQuery.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/credential.h"
#include "auth/scram.h"
#include "daemon/server_connection.h"
#include "protocol/encode.h"
#include "protocol/message_scanner.h"
#include "protocol/messages.h"
#include "protocol/startup.h"

namespace pgnap::daemon {

// What pgnap can answer PostgreSQL's authentication request with.
struct LoginSecret {
  std::optional<auth::Credential> credential;  // from the auth_file or the auth_query
  std::optional<auth::ScramKey> client_key;    // the client's, recovered from its SCRAM proof
};

using Parameters = protocol::ParameterList;

// A connection to PostgreSQL, logged in and ready for queries.
struct ServerSession {
  ServerConnection connection;
  protocol::BackendKeyData key;  // the server's: cancel requests for this backend carry it
  Parameters parameters;         // ParameterStatus as the server reported them, in order
};

struct LoginFailure {
  enum class Kind {
    kRefused,      // PostgreSQL sent an ErrorResponse: `server_error` is its message, verbatim
    kUnsupported,  // PostgreSQL asked for something pgnap cannot answer with `secret`
    kBroken,       // the connection failed, timed out, or broke the protocol
  };
  Kind kind = Kind::kBroken;
  protocol::ErrorResponse error;  // what to tell the client (for kRefused: the server's own fields)
  std::string server_error;       // kRefused: the ErrorResponse bytes as PostgreSQL sent them
  // kRefused after pgnap's SCRAM answer could not be right: why (its verifier is not the
  // server's: a changed password, a dropped role, an auth_file out of date).
  std::string verifier_mismatch;
};

// Sends the startup (protocol 3.0, `parameters` as the client gave them) and logs in, all
// before `deadline`. On failure the connection is closed.
[[nodiscard]] asio::awaitable<std::variant<ServerSession, LoginFailure>> login_to_server(
    ServerConnection connection, const protocol::StartupMessage& startup, const LoginSecret& secret,
    Clock::time_point deadline);

}  // namespace pgnap::daemon
