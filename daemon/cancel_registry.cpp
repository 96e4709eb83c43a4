#include "daemon/cancel_registry.h"

namespace pgnap::daemon {

namespace {
std::uint64_t key_of(std::uint32_t pid, std::uint32_t secret) { return (std::uint64_t{pid} << 32) | secret; }
}  // namespace

void CancelRegistry::add(const protocol::BackendKeyData& key, CancelTarget target) {
  entries_.insert_or_assign(key_of(key.process_id, key.secret_key), std::move(target));
}

void CancelRegistry::remove(const protocol::BackendKeyData& key) {
  entries_.erase(key_of(key.process_id, key.secret_key));
}

bool CancelRegistry::contains(const protocol::BackendKeyData& key) const {
  return entries_.contains(key_of(key.process_id, key.secret_key));
}

std::optional<CancelTarget> CancelRegistry::find(const protocol::CancelRequest& request) const {
  auto it = entries_.find(key_of(request.process_id, request.secret_key));
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

}  // namespace pgnap::daemon
