// The gateway's side of the control socket (daemon/control.h, docs/control.md): opening it,
// and `pgnap status`, `wake`, `sleep` and `reload` as the gateway answers them.
#include <algorithm>

#include <boost/json/array.hpp>

#include "daemon/control.h"
#include "daemon/gateway.h"
#include "daemon/log.h"

namespace pgnap::daemon {

void Gateway::open_control_socket() {
  const std::string& path = config_.gateway.control_socket;
  if (path.empty()) return;
  try {
    control_ = std::make_unique<ControlServer>(io_, path, static_cast<ControlHandler&>(*this));
  } catch (const ControlSocketInUse&) {
    // Like a listen port that is taken: two gateways must not serve one configuration.
    unlink_sockets();
    throw;
  } catch (const std::exception& e) {
    PGNAP_LOG(kWarning, "gateway",
              e.what() << "; running without it: pgnap status, wake, sleep and reload will not work "
                          "(create its directory, e.g. RuntimeDirectory=pgnap in the unit, or set "
                          "[gateway] control_socket)");
  }
}

Instance* Gateway::active_instance(const std::string& name) const {
  for (const auto& instance : instances_) {
    if (instance->name() != name) continue;
    if (std::find(retired_.begin(), retired_.end(), instance.get()) != retired_.end()) return nullptr;
    return instance.get();
  }
  return nullptr;
}

bool Gateway::has_instance(const std::string& name) const { return active_instance(name) != nullptr; }

boost::json::object Gateway::status() {
  std::vector<InstanceStatus> list;
  for (const auto& instance : instances_) {
    if (active_instance(instance->name()) == instance.get()) list.push_back(instance->status());
  }
  return status_json(list, std::chrono::system_clock::now());
}

asio::awaitable<ControlReply> Gateway::wake(std::string name, config::Duration hold, ControlPeer peer) {
  const std::string who = peer.to_string();
  PGNAP_LOG(kInfo, "control",
            "wake \"" << name << "\"" << (hold.count() > 0 ? " for " + config::format_duration(hold) : std::string())
                      << " asked by " << who);
  Instance* instance = active_instance(name);
  if (instance == nullptr) co_return ControlReply{false, "no instance \"" + name + "\" is served by this gateway", {}};
  if (shutting_down_) co_return ControlReply{false, "the gateway is shutting down", {}};
  // Instances are never destroyed while the gateway runs (a removed one is retired), so the
  // pointer outlives the wait.
  const ControlOutcome outcome = co_await instance->wake_manually(hold, who);
  PGNAP_LOG(kInfo, "control", "wake \"" << name << "\" asked by " << who << ": " << outcome.message);
  co_return ControlReply{outcome.ok, outcome.message, {}};
}

ControlReply Gateway::sleep(std::string name, ControlPeer peer) {
  const std::string who = peer.to_string();
  PGNAP_LOG(kInfo, "control", "sleep \"" << name << "\" asked by " << who);
  Instance* instance = active_instance(name);
  if (instance == nullptr) return {false, "no instance \"" + name + "\" is served by this gateway", {}};
  if (shutting_down_) return {false, "the gateway is shutting down", {}};
  const ControlOutcome outcome = instance->sleep_manually(who);
  PGNAP_LOG(kInfo, "control", "sleep \"" << name << "\" asked by " << who << ": " << outcome.message);
  ControlReply reply{outcome.ok, outcome.message, {}};
  if (!outcome.blocking.empty()) {
    // The sessions in use, as `pgnap status` shows them, so that the operator sees who.
    const InstanceStatus now = instance->status();
    boost::json::array blocking;
    for (const std::uint64_t id : outcome.blocking) {
      const auto it = std::find_if(now.sessions.begin(), now.sessions.end(), [&](const auto& s) { return s.id == id; });
      if (it != now.sessions.end()) blocking.push_back(session_json(*it));
      else blocking.push_back(boost::json::object{{"id", id}});
    }
    reply.data["blocking"] = std::move(blocking);
  }
  return reply;
}

ControlReply Gateway::reload(ControlPeer peer) {
  PGNAP_LOG(kInfo, "control", "reload asked by " << peer.to_string());
  if (shutting_down_) return {false, "the gateway is shutting down", {}};
  const ReloadResult result = reload();
  return {result.ok, result.message, {}};
}

}  // namespace pgnap::daemon
