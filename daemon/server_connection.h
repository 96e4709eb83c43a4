// Opening a connection to an instance's PostgreSQL, up to (not including) its startup
// packet: resolve the address, connect within connect_timeout, and negotiate TLS as the
// instance's `tls` says (an SSLRequest, then the handshake). A session does it after its
// admission; each step is a function of its own so that it can be tested alone.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "daemon/net.h"
#include "daemon/stream.h"
#include "daemon/tls.h"

namespace pgnap::daemon {

class Instance;

struct ServerConnection {
  Stream stream;
  Endpoint endpoint;  // where it connected: cancel requests for its backend go there
};

struct ServerConnectFailure {
  std::string why;                 // for the client's 57P03 detail and the log
  bool nothing_listening = false;  // refused or no such socket: the server is down
  bool timed_out = false;          // connect_timeout passed
  bool tls = false;                // the connection was made, TLS to it failed
};

using ServerConnectResult = std::variant<ServerConnection, ServerConnectFailure>;

// Connects to `instance` and negotiates TLS with `tls_context` (the client side of TLS to
// instances). Never throws for a network error.
[[nodiscard]] asio::awaitable<ServerConnectResult> connect_server(const Instance& instance,
                                                                  std::shared_ptr<ssl::context> tls_context);

// Asks PostgreSQL for TLS (SSLRequest) and returns its one-byte answer: 'S' or 'N' (0 with
// `why` set when it gives neither before `deadline`).
[[nodiscard]] asio::awaitable<char> request_tls(Stream& server, Clock::time_point deadline, std::string& why);

}  // namespace pgnap::daemon
