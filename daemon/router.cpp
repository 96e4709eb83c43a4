#include "daemon/router.h"

#include "daemon/instance.h"

namespace pgnap::daemon {

Router::Router(const std::vector<Instance*>& instances) {
  for (Instance* instance : instances) {
    for (const auto& name : instance->config().databases) {
      if (name == "*") default_ = instance;
      else by_name_.emplace(name, instance);
    }
  }
}

Instance* Router::route(std::string_view database) const {
  if (auto it = by_name_.find(database); it != by_name_.end()) return it->second;
  return default_;
}

std::vector<std::string> Router::served_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : by_name_) names.push_back(name);
  return names;
}

}  // namespace pgnap::daemon
