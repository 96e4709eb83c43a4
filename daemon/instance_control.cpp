// The operator's view of an instance and their hand on it (the control socket,
// docs/control.md): its status with every session and whether it keeps the instance awake,
// a manual wake with a hold, a manual sleep; and the wake rules that ignore some clients.
#include <algorithm>

#include "daemon/instance.h"
#include "daemon/log.h"

namespace pgnap::daemon {

std::string_view to_string(WakeCause cause) {
  switch (cause) {
    case WakeCause::kClient: return "client";
    case WakeCause::kManual: return "manual";
    case WakeCause::kWindow: return "window";
    case WakeCause::kMaintenance: return "maintenance";
  }
  return "client";
}

std::string ClientIdentity::ip() const {
  if (address.empty() || address == "unix") return {};
  if (address.front() == '[') {
    const auto close = address.find(']');
    return close == std::string::npos ? address.substr(1) : address.substr(1, close - 1);
  }
  const auto colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

void Instance::register_session(SessionEntry* entry) { entries_.push_back(entry); }

void Instance::unregister_session(SessionEntry* entry) { entries_.remove(entry); }

// TODO(issue 16): filled in below by the instance work; stubs keep the build going.
InstanceStatus Instance::status() const {
  InstanceStatus s;
  s.name = config_.name;
  s.state = std::string(to_string(state_));
  s.waiting = waiters_.size();
  return s;
}

asio::awaitable<ControlOutcome> Instance::wake_manually(config::Duration /*hold*/, std::string /*who*/) {
  co_return ControlOutcome{false, "not implemented yet", {}};
}

ControlOutcome Instance::sleep_manually(const std::string& /*who*/) { return {false, "not implemented yet", {}}; }

const config::WakeIgnoreRule* Instance::ignored(const ClientIdentity& /*client*/) const { return nullptr; }

}  // namespace pgnap::daemon
