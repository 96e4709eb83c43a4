// The BackendKeyData pgnap gives a client in the authenticating mode: random, unique among the
// live sessions, and the session's for its whole life, whatever server connection serves it
// (across parks too). Registered in the cancel registry while the session lives.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "daemon/cancel_registry.h"
#include "daemon/instance.h"
#include "daemon/random.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

class IssuedKey {
 public:
  IssuedKey(CancelRegistry& registry, Instance& instance) : registry_(registry), instance_(instance) {
    do {
      // PostgreSQL's process ids are positive 32-bit numbers; clients only echo the value.
      key_.process_id = (random_u32() & 0x7fffffffu) | 1u;
      key_.secret_key = random_u32();
    } while (registry_.contains(key_));
  }
  ~IssuedKey() { registry_.remove(key_); }
  IssuedKey(const IssuedKey&) = delete;
  IssuedKey& operator=(const IssuedKey&) = delete;

  [[nodiscard]] const protocol::BackendKeyData& key() const { return key_; }
  // No server: a cancel answers the queued query at the head (`cancel_queued`).
  void detached(std::function<void()> cancel_queued) {
    registry_.add(key_, CancelTarget{&instance_, std::nullopt, {}, std::move(cancel_queued), {}});
  }
  // A cancel goes to this server connection's backend, counted in `in_flight` meanwhile.
  void attached(const Endpoint& endpoint, const protocol::BackendKeyData& server_key,
                std::shared_ptr<std::size_t> in_flight) {
    registry_.add(key_, CancelTarget{&instance_, endpoint, server_key, {}, std::move(in_flight)});
  }

 private:
  CancelRegistry& registry_;
  Instance& instance_;
  protocol::BackendKeyData key_;
};

}  // namespace pgnap::daemon
