// The Prometheus text exposition (format 0.0.4) of everything pgnap counts. Every family is
// declared once, in exposition.cpp's table; docs/metrics.md describes each.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "metrics/instance_metrics.h"

namespace pgnap::metrics {

// What pgnap_build_info says of the running binary.
struct BuildInfo {
  std::string_view version;   // "0.2.0"
  std::string_view revision;  // the git revision, "3f2a9c1d0b7e"
};

[[nodiscard]] std::string render_exposition(const std::vector<const InstanceMetrics*>& instances,
                                            const GatewayMetrics& gateway, const BuildInfo& build,
                                            InstanceMetrics::Clock::time_point now = InstanceMetrics::Clock::now());

}  // namespace pgnap::metrics
