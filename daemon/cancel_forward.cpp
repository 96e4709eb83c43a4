#include "daemon/cancel_forward.h"

#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/instance.h"
#include "daemon/log.h"
#include "daemon/net.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

namespace {

using namespace boost::asio::experimental::awaitable_operators;

// Counts a cancel in flight to a pooled server connection for as long as it lives.
struct InFlight {
  std::shared_ptr<std::size_t> count;
  explicit InFlight(std::shared_ptr<std::size_t> c) : count(std::move(c)) {
    if (count) ++*count;
  }
  ~InFlight() {
    if (count) --*count;
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
};

// PostgreSQL closes a cancel connection once it has signalled the backend: until then the
// cancel is in flight. Bounded by `deadline`.
asio::awaitable<void> wait_for_close(Socket& server, Clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  char byte[16];
  for (;;) {
    auto r = co_await (server.async_read_some(asio::buffer(byte), asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return;
    if (std::get<0>(std::get<0>(r))) co_return;  // EOF or an error: done
  }
}

}  // namespace

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
  const InFlight in_flight(target->in_flight);
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
  if (!ec) {
    ++metrics.cancels_forwarded;
    if (target->in_flight) co_await wait_for_close(server, Clock::now() + timeout);
  }
  PGNAP_LOG(kDebug, context,
            "cancel request for pid " << request.process_id << " forwarded to instance " << target->instance->name()
                                      << (ec ? " (write failed: " + ec.message() + ")" : ""));
}

}  // namespace pgnap::daemon
