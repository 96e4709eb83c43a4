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
    kStartup,  // `startup` holds the client's StartupMessage
    kCancel,   // `cancel` holds a CancelRequest; the connection carries nothing else
    kRefused,  // an ErrorResponse was sent (malformed packet, login timeout, TLS required); `reason` says why
    kClosed,   // the client went away (or its TLS handshake failed); nothing to send
  };
  Kind kind = Kind::kClosed;
  protocol::StartupMessage startup;
  protocol::CancelRequest cancel;
  std::string reason;
  // Bytes the client sent after its StartupMessage, to forward after it.
  std::string pipelined;
  bool login_timeout = false;  // refused because the deadline passed
};

// `tls`: the clients' TLS (nullptr or mode "disable": SSLRequest gets 'N').
[[nodiscard]] asio::awaitable<StartupOutcome> read_startup(Stream& client, Clock::time_point deadline,
                                                           const TlsServer* tls);

}  // namespace pgnap::daemon
