// Turning an instance's configured address into something to connect to: socket
// endpoints for sessions and cancel requests, and a libpq target for the probe. Host names
// are resolved with Asio's asynchronous resolver, never with a blocking getaddrinfo on the
// event loop, and again at every wake (a cloud database may move).
#pragma once

#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include "backends/probe.h"
#include "config/config.h"

namespace pgnap::daemon {

namespace asio = boost::asio;

struct ResolvedBackend {
  std::vector<asio::generic::stream_protocol::endpoint> endpoints;
  backends::ProbeTarget probe;
  std::string error;  // set when resolution failed (endpoints empty)
};

[[nodiscard]] asio::awaitable<ResolvedBackend> resolve_backend(const config::BackendAddress& address);

// "127.0.0.1:5432", "[::1]:5432", "/run/postgresql/.s.PGSQL.5432"; for logs.
[[nodiscard]] std::string endpoint_to_string(const asio::generic::stream_protocol::endpoint& endpoint);

}  // namespace pgnap::daemon
