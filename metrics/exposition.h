// The Prometheus text exposition (format 0.0.4) of everything pgnap counts. Every family is
// declared once, in exposition.cpp's table; docs/metrics.md describes each.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "metrics/instance_metrics.h"

namespace pgnap::metrics {

[[nodiscard]] std::string render_exposition(const std::vector<const InstanceMetrics*>& instances,
                                            const GatewayMetrics& gateway, std::string_view version,
                                            InstanceMetrics::Clock::time_point now = InstanceMetrics::Clock::now());

}  // namespace pgnap::metrics
