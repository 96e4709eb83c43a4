// Cancel routing. pgnap relays BackendKeyData unchanged, so a client's CancelRequest carries
// the key of the PostgreSQL backend serving its session. The registry remembers, for every
// live session, which server issued which key, so that the CancelRequest (which arrives on
// a new connection) goes to that server and no other.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include <boost/asio/generic/stream_protocol.hpp>

#include "protocol/message_scanner.h"
#include "protocol/startup.h"

namespace pgnap::daemon {

namespace asio = boost::asio;

class Instance;

struct CancelTarget {
  Instance* instance = nullptr;
  asio::generic::stream_protocol::endpoint endpoint;  // the server that issued the key
};

class CancelRegistry {
 public:
  void add(const protocol::BackendKeyData& key, CancelTarget target);
  void remove(const protocol::BackendKeyData& key);
  // The target whose process id and secret key both match; nullopt otherwise.
  [[nodiscard]] std::optional<CancelTarget> find(const protocol::CancelRequest& request) const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  // Keyed by (process id, secret key): two servers may reuse a process id, never with the
  // same 32-bit random key in practice; both must match, as in PostgreSQL's own check.
  std::map<std::uint64_t, CancelTarget> entries_;
};

}  // namespace pgnap::daemon
