#include "daemon/relay_phase.h"

#include <sys/socket.h>

#include <optional>

#include <boost/asio/this_coro.hpp>

#include "daemon/kernel_relay.h"
#include "daemon/log.h"
#include "daemon/relay.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

namespace {

namespace sqlstate = protocol::sqlstate;

bool is_cancelled(const asio::cancellation_state& state) { return state.cancelled() != asio::cancellation_type::none; }

bool is_tcp(const Socket& socket) {
  boost::system::error_code ec;
  const int family = socket.local_endpoint(ec).protocol().family();
  return !ec && (family == AF_INET || family == AF_INET6);
}

// The end of a relayed session that pgnap ends itself (shutdown, a client breaking the
// protocol, an idle close): a FATAL to the client when it can be said between messages,
// Terminate to the server. A coroutine of its own, so its temporaries stay out of the
// relay's frame. (string_view parameters: the caller's strings outlive the co_await.)
asio::awaitable<void> say_goodbye(Stream& client, Stream& server, bool at_boundary, std::string_view code,
                                  std::string_view message, std::string_view hint, std::string detail = {}) {
  if (at_boundary) {
    const protocol::ErrorResponse error{"FATAL", std::string(code), std::string(message), std::move(detail),
                                        std::string(hint)};
    co_await send_fatal(client, error);
  }
  const std::string terminate = protocol::encode_terminate();
  (void)co_await write_all(server, terminate, Clock::now() + std::chrono::seconds(1));
}

}  // namespace

asio::awaitable<void> relay_session(SessionEnv& env, Stream& client, RelayedSession& e) {
  auto cancellation = co_await asio::this_coro::cancellation_state;
  Instance* instance = e.instance;
  std::optional<protocol::BackendKeyData> key;
  auto on_key = [&](const protocol::BackendKeyData& k) {
    if (e.key_issued_by_pgnap) return;  // the session's own registration stands
    if (key) env.cancels->remove(*key);
    key = k;
    env.cancels->add(k, CancelTarget{instance, e.connected_to, k, {}, {}});
  };
  Relay relay(client, e.server, env.max_client_message(), on_key,
              {&instance->metrics().bytes_client_to_server, &instance->metrics().bytes_server_to_client});
  // Plaintext TCP on both sides: at rest, the session's bytes may go by the kernel.
  if (env.kernel != nullptr && !client.tls() && !e.server.tls() && is_tcp(client.socket()) && is_tcp(e.server.socket())) {
    relay.use_kernel(env.kernel);
  }
  PGNAP_LOG(kDebug, e.context, "relaying");
  const auto started = Clock::now();
  // The instance watches the session's traffic while it is relayed, and may close it when
  // it is only open (idle_session_timeout).
  relay.activity().last_traffic = e.last_traffic.value_or(started);
  relay.activity().close = [&relay] { relay.close_idle(); };
  if (e.may_park) {
    relay.allow_parking();
    relay.activity().park_refused_at = e.park_refused_at;
    relay.activity().park = [&relay] { return relay.request_park(); };
  }
  e.parked = false;
  // Known to `pgnap status` while relayed: the authenticating mode's session is registered
  // already (it outlives the relay); the transparent mode's, from here.
  SessionEntry own;
  SessionEntry* entry = e.entry;
  if (entry == nullptr) {
    own.id = e.id;
    own.client = e.client;
    own.connected_at = started;
    own.ignored = instance->ignored(e.client) != nullptr;
    instance->register_session(&own);
    entry = &own;
  }
  entry->activity = &relay.activity();
  relay.activity().ignored = entry->ignored;
  struct Unregister {
    Instance* instance;
    SessionEntry* entry;
    bool own;
    ~Unregister() {
      entry->activity = nullptr;
      if (own) instance->unregister_session(entry);
    }
  } unregister{instance, entry, entry == &own};
  instance->watch_session(&relay.activity());
  relay.send_first_to_server(std::move(e.first_to_server), std::move(e.after_first_to_server));
  if (e.pooled_parameters != nullptr) relay.keep_server(e.pooled_parameters);
  RelayEnd end;
  for (;;) {
    try {
      end = co_await relay.run();
    } catch (const boost::system::system_error&) {
      end = {RelayEnd::Why::kShutdown, {}, {}};
    }
    // A TLS read that had completed when the park was asked for went through first: the
    // session is in use again, and its relay goes on.
    if (end.why != RelayEnd::Why::kParked || relay.parkable() || is_cancelled(cancellation)) break;
    relay.resume_after_park();
  }
  instance->unwatch_session(&relay.activity());
  e.last_traffic = relay.activity().last_traffic;
  if (key) env.cancels->remove(*key);
  if (is_cancelled(cancellation)) end.why = RelayEnd::Why::kShutdown;
  if (end.why == RelayEnd::Why::kParked) {
    e.parked = true;
    e.server_reusable = true;
    co_return;
  }
  e.server_reusable = end.why == RelayEnd::Why::kClientClosed && relay.server_reusable();
  const bool at_boundary = relay.client_stream_at_boundary();

  switch (end.why) {
    case RelayEnd::Why::kIdleClosed: {
      const auto idle = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - relay.activity().last_traffic);
      co_await say_goodbye(client, e.server, at_boundary, sqlstate::kAdminShutdown,
                           "terminating idle connection so that the database can sleep",
                           "Reconnect to continue: the next connection wakes the database.",
                           "The connection had no traffic for " + std::to_string(idle.count()) +
                               " s, and no other session of instance \"" + instance->name() + "\" was in use.");
      break;
    }
    case RelayEnd::Why::kShutdown:
      // Say why, if it can be said without cutting a message in two.
      co_await asio::this_coro::reset_cancellation_state();
      co_await say_goodbye(client, e.server, at_boundary, sqlstate::kAdminShutdown, "the gateway is shutting down",
                           "Reconnect in a moment.");
      break;
    case RelayEnd::Why::kClientTooLarge:
    case RelayEnd::Why::kClientProtocol: {
      const bool too_large = end.why == RelayEnd::Why::kClientTooLarge;
      instance->metrics().client_error(sqlstate::kProtocolViolation);
      if (too_large) env.metrics->limit_hit("max_message_size");
      const std::string message = "invalid message from client: " + end.detail;
      const std::string hint = too_large ? "Send smaller messages, or raise max_message_size in pgnap's [gateway]."
                                         : "";
      co_await say_goodbye(client, e.server, at_boundary, sqlstate::kProtocolViolation, message, hint);
      co_await drain_until_closed(client, Clock::now() + std::chrono::seconds(2));
      break;
    }
    case RelayEnd::Why::kServerClosed:
      // PostgreSQL went away in the middle of the session without a FATAL that says it lives
      // on (a killed postmaster ends its backends silently; one that is shut down or crashed
      // says 57Pxx): find out now whether the instance is down, not when the next client fails.
      if (!relay.client_terminated() && (end.server_sqlstate.empty() || end.server_sqlstate.starts_with("57"))) {
        instance->check_reachable("it closed a session's connection" + (end.server_sqlstate.empty()
                                                                            ? std::string(" without an error")
                                                                            : " with " + end.server_sqlstate));
      }
      break;
    case RelayEnd::Why::kParked:
    case RelayEnd::Why::kClientClosed:
    case RelayEnd::Why::kServerProtocol:
    case RelayEnd::Why::kWriteFailed:
    case RelayEnd::Why::kToKernel: break;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  PGNAP_LOG(kDebug, e.context,
            "ended after " << ms << " ms: " << to_string(end.why)
                           << (end.detail.empty() ? "" : " (" + end.detail + ")"));
}

}  // namespace pgnap::daemon
