// Counters of what the gateway and each instance did, kept on the event loop thread (no
// atomics needed) and read by the log and, later, the Prometheus exposer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace pgnap::metrics {

struct InstanceStats {
  std::uint64_t sessions_total = 0;     // sessions relayed to the instance
  std::uint64_t wakes_ok = 0;
  std::uint64_t wakes_failed = 0;       // the start failed
  std::uint64_t wakes_timeout = 0;      // not ready within wake_timeout
  std::uint64_t suspends = 0;           // clean stops for idleness
  std::uint64_t unexpected_stops = 0;   // found down without pgnap having stopped it
  std::uint64_t clients_waited = 0;     // clients held during a wake
  std::uint64_t bytes_to_server = 0;
  std::uint64_t bytes_to_client = 0;
  std::map<std::string, std::uint64_t, std::less<>> client_errors;  // by SQLSTATE, sent by pgnap

  void count_client_error(std::string_view sqlstate);
};

struct GatewayStats {
  std::uint64_t connections_total = 0;
  std::uint64_t refused_max_clients = 0;
  std::uint64_t startup_errors = 0;     // malformed startup packets, login timeouts
  std::uint64_t cancel_requests = 0;
  std::uint64_t cancel_requests_unmatched = 0;
};

}  // namespace pgnap::metrics
