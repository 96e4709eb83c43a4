// The startup phase of a client connection: reads packets under the login deadline,
// answers SSLRequest and GSSENCRequest with 'N' (TLS comes with [gateway.tls]), and ends
// with the client's StartupMessage or CancelRequest, or with the connection refused.
// Framing and validation are protocol/startup.h's; this file only does the I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "daemon/net.h"
#include "protocol/startup.h"

namespace pgnap::daemon {

struct StartupOutcome {
  enum class Kind {
    kStartup,  // `startup` holds the client's StartupMessage
    kCancel,   // `cancel` holds a CancelRequest; the connection carries nothing else
    kRefused,  // an ErrorResponse was sent (malformed packet, login timeout); `reason` says why
    kClosed,   // the client went away; nothing to send
  };
  Kind kind = Kind::kClosed;
  protocol::StartupMessage startup;
  protocol::CancelRequest cancel;
  std::string reason;
  // Bytes the client sent after its StartupMessage, to forward after it.
  std::string pipelined;
};

[[nodiscard]] asio::awaitable<StartupOutcome> read_startup(Socket& client, Clock::time_point deadline);

}  // namespace pgnap::daemon
