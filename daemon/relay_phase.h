// The last phase of every session that reaches a server: the relay (relay.h) run to its end,
// and what pgnap says when it is the one ending it — the idle close, the shutdown, a client
// message over the size limit — and what it learns when the server is the one that left.
#pragma once

#include <optional>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "daemon/instance.h"
#include "daemon/net.h"
#include "daemon/session.h"
#include "daemon/stream.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

// What the connection phase hands over to the relay. Kept small: it lives in the session's
// frame for the whole session (the connection phase's many locals and temporaries live in
// frames of their own, freed before the relay starts).
struct RelayedSession {
  Instance* instance = nullptr;
  Lease lease;
  Stream server;
  Endpoint connected_to;
  std::string context;  // "session=N client=ADDR instance=NAME"
  // The authenticating mode: the client holds a key pgnap issued (the session keeps its
  // cancel registration); the transparent mode registers the server's keys as they pass.
  bool key_issued_by_pgnap = false;
  // Messages the client sent before the relay, to go to the server first (the
  // authenticating mode's queue): the relay sees them as if they had just arrived.
  std::string first_to_server{};
  // Run once they are written to the server (Relay::send_first_to_server).
  std::function<void()> after_first_to_server{};
  // Session pooling: the server connection outlives the client. The client's Terminate is
  // held back, the server's ParameterStatus values are tracked here, and `server_reusable`
  // says at the end whether the connection may serve another client (relay.h).
  protocol::ParameterList* pooled_parameters = nullptr;
  bool server_reusable = false;
  // Parking (gateway_session.cpp): the instance may ask the relay to stop at rest; it then
  // returns with `parked` set and the server connection reusable, and says nothing to either
  // side. `park_refused_at`: the last attempt found state that cannot be restored — not asked
  // again before the session's next traffic. `last_traffic` carries the session's idle time
  // across such an attempt.
  bool may_park = false;
  Clock::time_point park_refused_at{};
  bool parked = false;
  std::optional<Clock::time_point> last_traffic{};
  // (Last: the fields above are initialized in order where a session is relayed.)
  // Who the client is (`pgnap status`, the wake rules). The authenticating mode registers the
  // session with its instance for its whole life (`entry`); the transparent mode, here.
  std::uint64_t id = 0;
  ClientIdentity client{};
  SessionEntry* entry = nullptr;
};

// Relays until either side ends, then says goodbye when pgnap ended it.
asio::awaitable<void> relay_session(SessionEnv& env, Stream& client, RelayedSession& session);

}  // namespace pgnap::daemon
