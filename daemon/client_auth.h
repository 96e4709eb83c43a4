// The gateway authenticating a client itself (the authenticating mode): the exchange
// PostgreSQL would run for a pg_hba line of the same method — SCRAM-SHA-256 (with
// SCRAM-SHA-256-PLUS over TLS), md5, or trust — against the verifier pgnap holds, with
// PostgreSQL's messages and error codes. The exchange's maths is auth/'s; this file is the
// message sequence over the client's connection, under the login deadline.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "auth/credential.h"
#include "auth/scram.h"
#include "daemon/message_reader.h"
#include "daemon/stream.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

struct ClientAuthRequest {
  std::string user;
  std::vector<std::string> methods;            // accepted: "scram-sha-256", "md5", "trust"
  std::optional<auth::Credential> credential;  // nullopt: an unknown user (refused after a mock exchange)
  std::optional<std::string> channel_binding;  // over TLS: the tls-server-end-point data
  std::string mock_secret;                     // makes an unknown user's mock salt stable
};

struct ClientLogin {
  std::string method;                        // "scram-sha-256", "scram-sha-256-plus", "md5" or "trust"
  std::optional<auth::ScramKey> client_key;  // SCRAM: the ClientKey from the client's proof (memory only)
};

struct ClientAuthFailure {
  enum class Kind {
    kWrongPassword,  // 28P01 (also an unknown user, as PostgreSQL says)
    kProtocol,       // 08P01 and other protocol errors: a malformed or unexpected message
    kGone,           // the client closed the connection (psql asks for a password this way)
    kTimedOut,       // login_timeout passed
  };
  Kind kind = Kind::kProtocol;
  protocol::ErrorResponse error;  // what to send (nothing for kGone)
};

// Runs the exchange; on success the client has been sent everything up to, not including,
// AuthenticationOk. `reader` reads from `client`.
[[nodiscard]] asio::awaitable<std::variant<ClientLogin, ClientAuthFailure>> authenticate_client(
    Stream& client, MessageReader& reader, const ClientAuthRequest& request, Clock::time_point deadline);

[[nodiscard]] std::string_view to_string(ClientAuthFailure::Kind kind);

}  // namespace pgnap::daemon
