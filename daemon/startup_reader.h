// The startup phase of a client connection: reads packets under the login deadline,
// answers SSLRequest ('S' and a TLS handshake when [gateway.tls] allows it, else 'N') and
// GSSENCRequest ('N'), and ends with the client's StartupMessage or CancelRequest, or with
// the connection refused. Framing and validation are protocol/startup.h's; this file only
// does the I/O and the negotiation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "daemon/stream.h"
#include "protocol/startup.h"

namespace pgnap::daemon {

struct StartupOutcome {
  enum class Kind {
    kStartup,             // `startup` holds the client's StartupMessage
    kCancel,              // `cancel` holds a CancelRequest; the connection carries nothing else
    kMalformed,           // refused: `error` (08P01) was sent
    kLoginTimeout,        // refused: no startup within login_timeout; `error` (08P01) was sent
    kTlsRequired,         // refused: plaintext where TLS is required; `error` (28000) was sent
    kTlsHandshakeFailed,  // closed: the TLS handshake failed or ran past login_timeout
    kClientGone,          // closed: the client went away
  };
  Kind kind = Kind::kClientGone;
  protocol::StartupMessage startup;
  protocol::CancelRequest cancel;
  protocol::ErrorResponse error;  // what a refused client was told
  std::string reason;             // for the log: why a connection closed, or the refusal's message
  // Bytes the client sent after its StartupMessage, to forward after it.
  std::string pipelined;
  bool login_timeout = false;  // it ended because login_timeout passed (kLoginTimeout, or a slow handshake)

  // The client was sent an ErrorResponse.
  [[nodiscard]] bool refused() const {
    return kind == Kind::kMalformed || kind == Kind::kLoginTimeout || kind == Kind::kTlsRequired;
  }
};

// `tls`: the clients' TLS (nullptr or mode "disable": SSLRequest gets 'N').
[[nodiscard]] asio::awaitable<StartupOutcome> read_startup(Stream& client, Clock::time_point deadline,
                                                           const TlsServer* tls);

}  // namespace pgnap::daemon
