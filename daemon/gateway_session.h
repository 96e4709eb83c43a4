// A session in the authenticating mode (auth.mode = "gateway"; docs/architecture.md, "The
// authenticating mode"). After the startup and the routing, the gateway is the PostgreSQL
// endpoint: it authenticates the client itself, greets it at once — asleep or not — with
// the parameters remembered from the last real login, its own BackendKeyData and
// ReadyForQuery, and only the client's first message takes a server:
//
//   authenticating ──ok──▶ ready (no server) ──first message──▶ attaching ──▶ attached (relay)
//                              ▲   (messages queue while the instance wakes)  │
//                              └─────────── a failed wake answers them ───────┘
//
// A client that never sends a query never wakes the instance nor keeps it awake.
#pragma once

#include <string>

#include <boost/asio/awaitable.hpp>

#include "daemon/instance.h"
#include "daemon/session.h"
#include "daemon/startup_reader.h"
#include "daemon/stream.h"

namespace pgnap::daemon {

// A session up to its routing: what the authenticating mode starts from.
struct RoutedSession {
  StartupOutcome startup;
  Instance* instance = nullptr;
  std::string context;  // "session=N client=ADDR instance=NAME"
  std::string peer;
  std::uint64_t id = 0;
};

asio::awaitable<void> run_gateway_session(SessionEnv& env, Stream& client, RoutedSession routed);

}  // namespace pgnap::daemon
