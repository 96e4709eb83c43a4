// Cancel routing. A client's CancelRequest arrives on a new connection and carries only the
// key the client was given: in the transparent mode PostgreSQL's own (pgnap relays
// BackendKeyData unchanged); in the authenticating mode one pgnap issued, which stays the
// session's whatever server connection it is attached to. The registry remembers, for every
// live session, where a cancel of its key goes: to the server connection it is attached to
// at that moment, with that backend's key, and to no other; or, for a query still queued
// while its instance wakes, to the session itself.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include <boost/asio/generic/stream_protocol.hpp>

#include "protocol/message_scanner.h"
#include "protocol/startup.h"

namespace pgnap::daemon {

namespace asio = boost::asio;

class Instance;

struct CancelTarget {
  Instance* instance = nullptr;
  // Attached to a server connection: where to send the CancelRequest, and the key of the
  // backend serving the session (in the transparent mode the client's key itself).
  std::optional<asio::generic::stream_protocol::endpoint> endpoint;
  protocol::BackendKeyData server_key;
  // Not attached (a query queued while the instance wakes): answers it with 57014 instead.
  std::function<void()> cancel_queued;
  // Session pooling: cancels being forwarded to this server connection now. A pooled
  // connection serves no other client before they are done (the server has read them and
  // signalled its backend), so a cancel meant for one client never reaches the next.
  std::shared_ptr<std::size_t> in_flight;
};

class CancelRegistry {
 public:
  void add(const protocol::BackendKeyData& key, CancelTarget target);
  void remove(const protocol::BackendKeyData& key);
  // The target whose process id and secret key both match; nullopt otherwise.
  [[nodiscard]] std::optional<CancelTarget> find(const protocol::CancelRequest& request) const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool contains(const protocol::BackendKeyData& key) const;

 private:
  // Keyed by (process id, secret key): two servers may reuse a process id, never with the
  // same 32-bit random key in practice; both must match, as in PostgreSQL's own check.
  std::map<std::uint64_t, CancelTarget> entries_;
};

}  // namespace pgnap::daemon
