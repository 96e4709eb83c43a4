// A CancelRequest arrives on a connection of its own and carries only a key. pgnap looks the
// key up in the cancel registry and forwards the request to the server that issued it, on a
// new connection, as libpq would. Unknown keys are dropped: PostgreSQL answers a cancel
// request with nothing either way, so a client learns nothing from it.
#pragma once

#include <string>

#include <boost/asio/awaitable.hpp>

#include "daemon/cancel_registry.h"
#include "metrics/instance_metrics.h"
#include "protocol/startup.h"

namespace pgnap::daemon {

namespace asio = boost::asio;

asio::awaitable<void> forward_cancel(const CancelRegistry& cancels, metrics::GatewayMetrics& metrics,
                                     const protocol::CancelRequest& request, std::string context);

}  // namespace pgnap::daemon
