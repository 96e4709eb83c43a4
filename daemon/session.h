// One client connection, from accept to close:
//   startup phase (startup_reader) → route (router) → admission (instance: now, or after the
//   shared wake) → connect to PostgreSQL → forward the startup packet → relay (relay) →
//   release the lease.
// Each step is another file's job; this one strings them together and turns every failure
// into the ErrorResponse the client sees.
#pragma once

#include <cstdint>
#include <functional>

#include <boost/asio/awaitable.hpp>

#include "daemon/cancel_registry.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/net.h"
#include "daemon/router.h"
#include "daemon/tls.h"
#include "metrics/instance_metrics.h"

namespace pgnap::daemon {

// What sessions share, owned by the gateway.
struct SessionEnv {
  const GatewayConfig* gateway = nullptr;  // the running configuration (a reload updates it in place)
  Router* router = nullptr;
  CancelRegistry* cancels = nullptr;
  metrics::GatewayMetrics* metrics = nullptr;
  const TlsServer* tls = nullptr;                 // clients' TLS
  std::shared_ptr<ssl::context> instance_tls;     // TLS to instances
  // Refusals before a client reaches an instance are logged within this budget.
  static constexpr std::size_t kRefusalLinesPerSecond = 20;
  log::LineBudget refusal_log{kRefusalLinesPerSecond};
  // The largest message a client may send after its startup ([gateway] max_message_size).
  [[nodiscard]] std::uint32_t max_client_message() const {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(gateway->max_message_size, 0xffffffffu));
  }
};

// Runs the session to its end. Cancelling it (gateway shutdown) ends it with 57P01 when the
// client's stream is between messages, or by closing otherwise.
asio::awaitable<void> run_session(SessionEnv& env, Socket client, std::uint64_t id);

// Forwards a CancelRequest to the server that issued the key; unknown keys are dropped
// (PostgreSQL answers a cancel request with nothing either way).
asio::awaitable<void> forward_cancel(SessionEnv& env, const protocol::CancelRequest& request, std::string context);

}  // namespace pgnap::daemon
