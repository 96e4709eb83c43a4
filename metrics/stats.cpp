#include "metrics/stats.h"

namespace pgnap::metrics {

void InstanceStats::count_client_error(std::string_view sqlstate) {
  auto it = client_errors.find(sqlstate);
  if (it == client_errors.end()) it = client_errors.emplace(std::string(sqlstate), 0).first;
  ++it->second;
}

}  // namespace pgnap::metrics
