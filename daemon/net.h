// Socket plumbing shared by the session, the cancel forwarder and the listener: one socket
// type for TCP and Unix sockets, writes and connects with deadlines, and FATAL errors sent
// to clients.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include "protocol/encode.h"

namespace pgnap::daemon {

namespace asio = boost::asio;
using Socket = asio::generic::stream_protocol::socket;
using Endpoint = asio::generic::stream_protocol::endpoint;
using Clock = std::chrono::steady_clock;

// Writes all of `bytes`, giving up (and returning timed_out) at `deadline`.
[[nodiscard]] asio::awaitable<boost::system::error_code> write_all(Socket& socket, std::string_view bytes,
                                                                   Clock::time_point deadline);

// Connects to the first endpoint that accepts, each attempt bounded by `timeout`.
// Returns the connected socket's endpoint index, or the last error.
struct ConnectResult {
  boost::system::error_code error;
  std::size_t index = 0;
};
[[nodiscard]] asio::awaitable<ConnectResult> connect_any(Socket& socket, const std::vector<Endpoint>& endpoints,
                                                         std::chrono::milliseconds timeout);

// Sends a FATAL ErrorResponse (best effort, bounded by a short deadline) then closes the
// socket for writing, so the client reads the error rather than a reset.
//
// Coroutine arguments in this code base are named locals, never braced temporaries:
// GCC 12 destroys such temporaries twice when they initialise a coroutine's parameter.
asio::awaitable<void> send_fatal(Socket& socket, const protocol::ErrorResponse& error);

// TCP keepalive timing for client connections ([gateway] tcp_keepalive_*).
struct Keepalive {
  std::chrono::seconds idle{60};
  std::chrono::seconds interval{10};
  int count = 6;
};
// Socket options for client connections: TCP_NODELAY (the protocol is request/response:
// Nagle's delay would add latency to every small reply) and keepalive (a peer that vanished
// without a FIN is noticed).
void tune_client_socket(Socket& socket, const Keepalive& keepalive);
// TCP_NODELAY for connections to PostgreSQL.
void tune_server_socket(Socket& socket);

// "127.0.0.1:53422", "[::1]:5000" or "unix socket" for the peer of `socket`.
[[nodiscard]] std::string peer_name(const Socket& socket);

// Connection errors that mean nothing listens there: the server is down.
[[nodiscard]] bool means_nothing_listening(const boost::system::error_code& ec);

// The event loop Asio runs on in this build: "io_uring" (cmake -DPGNAP_IO_URING=ON) or
// "epoll". Logged at start-up and printed by `pgnap check`.
[[nodiscard]] std::string_view event_loop_name();

// Whether this kernel lets the build's event loop start: for io_uring, a ring is set up (and
// closed) as the gateway's would be. nullopt when it can; otherwise why not, for the operator
// (io_uring refused by seccomp, kernel.io_uring_disabled or an old kernel).
[[nodiscard]] std::optional<std::string> event_loop_refused();

}  // namespace pgnap::daemon
