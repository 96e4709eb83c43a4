#include "daemon/cancel_forward.h"

#include <vector>

#include <boost/asio/this_coro.hpp>

#include "daemon/instance.h"
#include "daemon/log.h"
#include "daemon/net.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

asio::awaitable<void> forward_cancel(const CancelRegistry& cancels, metrics::GatewayMetrics& metrics,
                                     const protocol::CancelRequest& request, std::string context) {
  const auto target = cancels.find(request);
  if (!target) {
    ++metrics.cancels_unmatched;
    PGNAP_LOG(kDebug, context, "cancel request for an unknown key (pid " << request.process_id << "): ignored");
    co_return;
  }
  if (!target->endpoint) {
    // A query still queued while the instance wakes: the session answers it itself.
    if (target->cancel_queued) target->cancel_queued();
    ++metrics.cancels_queued;
    PGNAP_LOG(kDebug, context,
              "cancel request for pid " << request.process_id << ": a queued query, answered by pgnap");
    co_return;
  }
  auto executor = co_await asio::this_coro::executor;
  Socket server(executor);
  const std::vector<Endpoint> endpoints{*target->endpoint};
  const auto timeout = target->instance->config().connect_timeout;
  const auto connected = co_await connect_any(server, endpoints, timeout);
  if (connected.error) {
    PGNAP_LOG(kWarning, context, "could not forward cancel request: " << connected.error.message());
    co_return;
  }
  const protocol::CancelRequest forwarded{target->server_key.process_id, target->server_key.secret_key};
  const std::string packet = protocol::encode_cancel_request(forwarded);
  const auto ec = co_await write_all(server, packet, Clock::now() + timeout);
  if (!ec) ++metrics.cancels_forwarded;
  PGNAP_LOG(kDebug, context,
            "cancel request for pid " << request.process_id << " forwarded to instance " << target->instance->name()
                                      << (ec ? " (write failed: " + ec.message() + ")" : ""));
}

}  // namespace pgnap::daemon
