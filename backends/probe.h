// The readiness probe: a real startup handshake through libpq, driven without blocking.
// PQconnectStartParams + PQconnectPoll on a socket watched by Asio, re-reading PQsocket
// after every poll (libpq may move to another address), as userver's
// pg_connection_wrapper does.
//
// "Ready" follows PQping's rules (src/interfaces/libpq/fe-connect.c internal_ping): the
// server is ready if the handshake completes, if it asks for a password, or if it answers
// with any error other than 57P03 (cannot_connect_now: starting up, shutting down, in
// recovery). No answer at all (refused, no socket file, timeout) means not ready.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

namespace pgnap::backends {

namespace asio = boost::asio;

struct ProbeTarget {
  // An absolute Unix socket directory, a numeric IP address, or a host name (resolved here
  // with Asio's asynchronous resolver at every attempt, never by libpq, whose getaddrinfo
  // would block: a cloud database's name may only resolve once it runs).
  std::string host;
  std::uint16_t port = 5432;
  [[nodiscard]] std::string to_string() const;
};

struct ProbeResult {
  bool ready = false;
  std::string detail;     // libpq's message when not ready (or why it counts as ready)
  bool answered = false;  // a server answered (ready, or 57P03: starting, stopping, in recovery)
};

// One handshake attempt, bounded by `timeout`.
[[nodiscard]] asio::awaitable<ProbeResult> probe_once(ProbeTarget target, std::chrono::milliseconds timeout);

// Extracts the SQLSTATE from a libpq error message formatted with PQERRORS_VERBOSE
// ("...FATAL:  57P03: the database system is starting up"). Exposed for tests.
[[nodiscard]] std::optional<std::string> sqlstate_from_libpq_message(std::string_view message);

}  // namespace pgnap::backends
