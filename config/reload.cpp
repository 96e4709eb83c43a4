// What a SIGHUP does with a new file: which keys changed, and what the gateway runs after it.
// Both read each key's reload class from its row in the schema's tables (config/schema.cpp),
// so a key is live or restart-only in exactly one place; a sub-table made by sub_table()
// (config/keys.h) is compared and merged key by key.
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/keys.h"

namespace pgnap::config {

using detail::diff_rows;
using detail::join_key;
using detail::keep_restart_keys;

InstanceConfig merge_live(const InstanceConfig& running, const InstanceConfig& next) {
  InstanceConfig merged = next;
  keep_restart_keys<InstanceConfig>(detail::kInstanceKeys, running, merged);
  return merged;
}

Config merge_live(const Config& running, const Config& next) {
  Config merged = next;
  keep_restart_keys<GatewayConfig>(detail::kGatewayKeys, running.gateway, merged.gateway);
  keep_restart_keys<MetricsConfig>(detail::kMetricsKeys, running.metrics, merged.metrics);
  for (auto& instance : merged.instances) {
    for (const auto& old_instance : running.instances) {
      if (old_instance.name == instance.name) instance = merge_live(old_instance, instance);
    }
  }
  return merged;
}

std::vector<ConfigChange> diff_config(const Config& running, const Config& next) {
  std::vector<ConfigChange> changes;
  diff_rows<GatewayConfig>(detail::kGatewayKeys, running.gateway, next.gateway, "gateway", changes);
  diff_rows<MetricsConfig>(detail::kMetricsKeys, running.metrics, next.metrics, "metrics", changes);
  auto find = [](const std::vector<InstanceConfig>& list, const std::string& name) -> const InstanceConfig* {
    for (const auto& i : list) {
      if (i.name == name) return &i;
    }
    return nullptr;
  };
  for (const auto& old_instance : running.instances) {
    const std::string prefix = join_key("instances", old_instance.name);
    if (const InstanceConfig* n = find(next.instances, old_instance.name)) {
      diff_rows<InstanceConfig>(detail::kInstanceKeys, old_instance, *n, prefix, changes);
    } else {
      changes.push_back({prefix, "removed", false});
    }
  }
  for (const auto& new_instance : next.instances) {
    if (find(running.instances, new_instance.name) == nullptr) {
      changes.push_back({join_key("instances", new_instance.name), "added", false});
    }
  }
  return changes;
}

}  // namespace pgnap::config
