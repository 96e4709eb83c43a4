#include "daemon/session.h"

#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/backend_address.h"
#include "daemon/instance.h"
#include "daemon/log.h"
#include "daemon/relay.h"
#include "daemon/startup_reader.h"
#include "daemon/stream.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;
namespace sqlstate = protocol::sqlstate;

namespace {

// Completes when the client closes its connection while it waits for a wake. Data from the
// client (unusual before authentication) ends the watch, not the wait.
asio::awaitable<void> client_gone(Socket& client) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    auto [ec] = co_await client.async_wait(Socket::wait_read, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    char byte;
    const ssize_t n = ::recv(client.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) co_return;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) co_return;
    if (n > 0) {
      asio::steady_timer forever(executor, Clock::time_point::max());
      co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
      co_return;
    }
  }
}

bool is_cancelled(const asio::cancellation_state& state) {
  return state.cancelled() != asio::cancellation_type::none;
}

// Protocol 3.x with x > 0 and "_pq_." options are answered by pgnap itself: it speaks 3.0 to
// PostgreSQL and tells the client so with NegotiateProtocolVersion, before anything else
// reaches it (the message a 3.0-only server would send).
struct Negotiated {
  protocol::StartupMessage forwarded;
  std::optional<std::string> negotiate_message;
};

Negotiated negotiate(const protocol::StartupMessage& in) {
  Negotiated out;
  out.forwarded.major = 3;
  out.forwarded.minor = 0;
  std::vector<std::string> unrecognized;
  for (const auto& [name, value] : in.parameters) {
    if (name.rfind("_pq_.", 0) == 0) unrecognized.push_back(name);
    else out.forwarded.parameters.emplace_back(name, value);
  }
  if (in.minor > 0 || !unrecognized.empty()) {
    out.negotiate_message = protocol::encode_negotiate_protocol_version(0, unrecognized);
  }
  return out;
}

// Asks PostgreSQL for TLS (SSLRequest) and returns its one-byte answer: 'S' or 'N' (0 with
// `why` set when it gives neither in time).
asio::awaitable<char> request_tls(Stream& server, Clock::time_point deadline, std::string& why) {
  auto executor = co_await asio::this_coro::executor;
  std::string request;
  protocol::append_u32(request, 8);
  protocol::append_u32(request, protocol::kSslRequestCode);
  if (const auto ec = co_await write_all(server.socket(), request, deadline); ec) {
    why = "asking the instance for TLS failed: " + ec.message();
    co_return 0;
  }
  char answer = 0;
  asio::steady_timer timer(executor, deadline);
  auto r = co_await (server.socket().async_read_some(asio::buffer(&answer, 1), asio::as_tuple(asio::use_awaitable)) ||
                     timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (r.index() == 1 || std::get<0>(std::get<0>(r)) || (answer != 'S' && answer != 'N')) {
    why = "the instance gave no valid answer to the TLS request";
    co_return 0;
  }
  co_return answer;
}

}  // namespace

asio::awaitable<void> forward_cancel(SessionEnv& env, const protocol::CancelRequest& request, std::string context) {
  const auto target = env.cancels->find(request);
  if (!target) {
    ++env.metrics->cancels_unmatched;
    PGNAP_LOG(kDebug, context, "cancel request for an unknown key (pid " << request.process_id << "): ignored");
    co_return;
  }
  auto executor = co_await asio::this_coro::executor;
  Socket server(executor);
  const std::vector<Endpoint> endpoints{target->endpoint};
  const auto connected = co_await connect_any(server, endpoints, target->instance->config().connect_timeout);
  if (connected.error) {
    PGNAP_LOG(kWarning, context, "could not forward cancel request: " << connected.error.message());
    co_return;
  }
  const std::string packet = protocol::encode_cancel_request(request);
  const auto ec = co_await write_all(server, packet, Clock::now() + target->instance->config().connect_timeout);
  if (!ec) ++env.metrics->cancels_forwarded;
  PGNAP_LOG(kDebug, context, "cancel request for pid " << request.process_id << " forwarded to instance "
                                                       << target->instance->name()
                                                       << (ec ? " (write failed: " + ec.message() + ")" : ""));
}

namespace {

// A refusal any client can cause at will: logged within the session budget, so a flood of
// bad connections does not flood the journal (the metrics count every one).
void log_refusal(SessionEnv& env, const std::string& context, const std::string& text) {
  std::size_t suppressed = 0;
  switch (env.refusal_log.take(std::chrono::steady_clock::now(), suppressed)) {
    case log::LineBudget::Verdict::kWrite:
      PGNAP_LOG(kInfo, context,
                text << (suppressed == 0 ? ""
                                         : " (" + std::to_string(suppressed) + " similar line(s) left out before this one)"));
      return;
    case log::LineBudget::Verdict::kFirstLeftOut:
      PGNAP_LOG(kWarning, "gateway",
                "more than " << SessionEnv::kRefusalLinesPerSecond
                             << " refused connections in a second: the next ones are left out of the log "
                                "(pgnap_gateway_errors_total and pgnap_limit_hits_total count them all)");
      return;
    case log::LineBudget::Verdict::kLeftOut:
      return;
  }
}

// What connecting a client to its instance produces, for the relay. Kept small: it lives in
// the session's frame for the whole session (the connection phase's many locals and
// temporaries live in their own coroutine frame, freed before the relay starts).
struct Established {
  Instance* instance = nullptr;
  Lease lease;
  Stream server;
  Endpoint connected_to;
  std::string context;  // "session=N client=ADDR instance=NAME"
};

// Startup, routing, admission (waiting for a wake if need be), connecting to PostgreSQL and
// forwarding the startup packet. nullopt when the session ended there (refused, cancel
// request, client gone): whatever had to be said to the client has been said.
asio::awaitable<std::optional<Established>> establish(SessionEnv& env, Stream& client, std::uint64_t id) {
  auto executor = co_await asio::this_coro::executor;
  const std::string peer = peer_name(client.socket());
  const std::string context = "session=" + std::to_string(id) + " client=" + peer;
  const Keepalive keepalive{std::chrono::duration_cast<std::chrono::seconds>(env.gateway->tcp_keepalive_idle),
                            std::chrono::duration_cast<std::chrono::seconds>(env.gateway->tcp_keepalive_interval),
                            static_cast<int>(env.gateway->tcp_keepalive_count)};
  tune_client_socket(client.socket(), keepalive);

  // ---- startup phase ----
  auto startup = co_await read_startup(client, Clock::now() + env.gateway->login_timeout, env.tls);
  if (startup.login_timeout) env.metrics->limit_hit("login_timeout");
  switch (startup.kind) {
    case StartupOutcome::Kind::kClosed:
      if (startup.reason.rfind("TLS handshake failed", 0) == 0) {
        ++env.metrics->tls_handshake_failures;
        log_refusal(env, context, startup.reason);
      } else {
        PGNAP_LOG(kDebug, context, "closed during startup: " << startup.reason);
      }
      co_return std::nullopt;
    case StartupOutcome::Kind::kRefused:
      env.metrics->error(startup.login_timeout || startup.reason.rfind("invalid", 0) == 0 ||
                                 startup.reason.rfind("unsupported", 0) == 0
                             ? sqlstate::kProtocolViolation
                             : sqlstate::kInvalidAuthorization);
      log_refusal(env, context, "refused: " + startup.reason);
      co_return std::nullopt;
    case StartupOutcome::Kind::kCancel:
      co_await forward_cancel(env, startup.cancel, context);
      co_return std::nullopt;
    case StartupOutcome::Kind::kStartup:
      break;
  }
  const std::string database(startup.startup.database());
  const std::string user(startup.startup.user());

  // ---- routing ----
  Instance* instance = env.router->route(database);
  if (instance == nullptr) {
    std::string served;
    for (const auto& name : env.router->served_names()) served += (served.empty() ? "" : ", ") + name;
    log_refusal(env, context, "refused: database \"" + database + "\" is not served");
    env.metrics->error(sqlstate::kInvalidCatalogName);
    const ClientError error{std::string(sqlstate::kInvalidCatalogName),
                            "database \"" + database + "\" is not served by this gateway",
                            served.empty() ? std::string() : "Databases served: " + served + ".",
                            "Check the database name in the connection string, or add it to an instance's "
                            "\"databases\" in pgnap's configuration."};
    co_await send_fatal(client, error);
    co_return std::nullopt;
  }
  const std::string icontext = context + " instance=" + instance->name();
  PGNAP_LOG(kDebug, icontext, "startup: user \"" << user << "\", database \"" << database << "\"");

  auto refuse = [&](const Refusal& r) -> asio::awaitable<void> {
    instance->metrics().client_error(r.sqlstate);
    PGNAP_LOG(kInfo, icontext, "refused (" << r.sqlstate << "): " << r.message
                                           << (r.detail.empty() ? "" : ": " + r.detail));
    const ClientError error{std::string(r.sqlstate), r.message, r.detail, r.hint};
    co_await send_fatal(client, error);
  };

  // ---- admission and connection; a server found dead gets one fresh wake ----
  Lease lease;
  Stream server{Socket(executor)};
  Endpoint connected_to;
  for (int attempt = 0;; ++attempt) {
    // operator|| flattens Admission (a variant) with client_gone's void: the result is one
    // of Lease, Refusal, or monostate when the client left first.
    auto admitted = co_await (instance->acquire(database, peer) || client_gone(client.socket()));
    if (std::holds_alternative<std::monostate>(admitted)) {
      PGNAP_LOG(kDebug, icontext, "client left while waiting for the instance");
      co_return std::nullopt;
    }
    if (auto* r = std::get_if<Refusal>(&admitted)) {
      if (r->sqlstate == sqlstate::kTooManyConnections) env.metrics->limit_hit("max_waiting");
      co_await refuse(*r);
      co_return std::nullopt;
    }
    lease = std::move(std::get<Lease>(admitted));

    auto resolved = co_await resolve_backend(instance->config().address);
    ConnectResult connected{asio::error::host_not_found, 0};
    std::string why = resolved.error;
    if (resolved.error.empty()) {
      connected = co_await connect_any(server.socket(), resolved.endpoints, instance->config().connect_timeout);
      if (!connected.error) {
        connected_to = resolved.endpoints[connected.index];
        break;
      }
      if (connected.error == asio::error::timed_out) env.metrics->limit_hit("connect_timeout");
      why = "connecting to " + instance->config().address.to_string() + " failed: " + connected.error.message();
    }
    lease.release();
    if (attempt == 0 && means_nothing_listening(connected.error)) {
      instance->report_unreachable(why);
      continue;  // acquire again: this wakes it
    }
    const Refusal refusal{sqlstate::kCannotConnectNow, "instance \"" + instance->name() + "\" could not be started",
                          why, "The instance was reported ready but does not accept connections; see pgnap's log."};
    co_await refuse(refusal);
    co_return std::nullopt;
  }
  tune_server_socket(server.socket());

  // ---- TLS to the instance ----
  if (instance->config().effective_tls() != "disable") {
    const auto deadline = Clock::now() + instance->config().connect_timeout;
    std::string why;
    const auto answer = co_await request_tls(server, deadline, why);
    if (answer == 'S') {
      if (const auto ec = co_await server.connect_tls(env.instance_tls, deadline); ec) {
        why = "TLS handshake with the instance failed: " + ec.message();
      }
    } else if (answer == 'N' && instance->config().effective_tls() == "require") {
      why = "the instance does not offer TLS, and its tls = \"require\"";
    }
    if (!why.empty()) {
      const Refusal refusal{sqlstate::kCannotConnectNow,
                            "could not connect to instance \"" + instance->name() + "\" with TLS", why,
                            "Check the server's ssl setting, or the instance's tls in pgnap's configuration."};
      co_await refuse(refusal);
      co_return std::nullopt;
    }
  }

  // ---- forward the startup packet ----
  const auto negotiated = negotiate(startup.startup);
  std::string first_bytes = protocol::encode_startup_message(negotiated.forwarded) + startup.pipelined;
  if (auto ec = co_await write_all(server, first_bytes, Clock::now() + instance->config().connect_timeout); ec) {
    const Refusal refusal{sqlstate::kCannotConnectNow, "instance \"" + instance->name() + "\" could not be started",
                          "sending the startup packet failed: " + ec.message(), {}};
    co_await refuse(refusal);
    co_return std::nullopt;
  }
  if (negotiated.negotiate_message) {
    if (co_await write_all(client, *negotiated.negotiate_message, Clock::now() + std::chrono::seconds(10))) co_return std::nullopt;
  }

  PGNAP_LOG(kDebug, icontext, "connected to " << endpoint_to_string(connected_to)
                                             << (server.tls() ? " with TLS" : "") << (client.tls() ? "; client has TLS" : ""));
  co_return Established{instance, std::move(lease), std::move(server), connected_to, icontext};
}

// The end of a relayed session that pgnap ends itself (shutdown, a client breaking the
// protocol): a FATAL to the client when it can be said between messages, Terminate to the
// server. A coroutine of its own, so its temporaries stay out of the relay's frame.
// (string_view parameters: the caller's strings outlive the co_await that passes them.)
asio::awaitable<void> say_goodbye(Stream& client, Stream& server, bool at_boundary, std::string_view code,
                                  std::string_view message, std::string_view hint, std::string detail = {}) {
  if (at_boundary) {
    const ClientError error{std::string(code), std::string(message), std::move(detail), std::string(hint)};
    co_await send_fatal(client, error);
  }
  const std::string terminate = protocol::encode_terminate();
  (void)co_await write_all(server, terminate, Clock::now() + std::chrono::seconds(1));
}

// Relays until either side ends, then says goodbye when pgnap ended it.
asio::awaitable<void> relay_phase(SessionEnv& env, Stream& client, Established& e) {
  auto cancellation = co_await asio::this_coro::cancellation_state;
  Instance* instance = e.instance;
  std::optional<protocol::BackendKeyData> key;
  auto on_key = [&](const protocol::BackendKeyData& k) {
    if (key) env.cancels->remove(*key);
    key = k;
    env.cancels->add(k, CancelTarget{instance, e.connected_to});
  };
  Relay relay(client, e.server, env.max_client_message(), on_key,
              {&instance->metrics().bytes_client_to_server, &instance->metrics().bytes_server_to_client});
  PGNAP_LOG(kDebug, e.context, "relaying");
  const auto started = Clock::now();
  // The instance watches the session's traffic while it is relayed, and may close it when
  // it is only open (idle_session_timeout).
  relay.activity().last_traffic = started;
  relay.activity().close = [&relay] { relay.close_idle(); };
  instance->watch_session(&relay.activity());
  RelayEnd end;
  try {
    end = co_await relay.run();
  } catch (const boost::system::system_error&) {
    end = {RelayEnd::Why::kCancelled, {}};
  }
  instance->unwatch_session(&relay.activity());
  if (key) env.cancels->remove(*key);

  if (relay.idle_closed() && !is_cancelled(cancellation)) {
    const auto idle = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - relay.activity().last_traffic);
    co_await say_goodbye(client, e.server, relay.client_stream_at_boundary(), sqlstate::kAdminShutdown,
                         "terminating idle connection so that the database can sleep",
                         "Reconnect to continue: the next connection wakes the database.",
                         "The connection had no traffic for " + std::to_string(idle.count()) +
                             " s, and no other session of instance \"" + instance->name() + "\" was in use.");
    PGNAP_LOG(kDebug, e.context, "closed while idle, so that the instance can sleep");
    co_return;
  }

  if (end.why == RelayEnd::Why::kCancelled || is_cancelled(cancellation)) {
    // Shutdown: say why, if it can be said without cutting a message in two.
    co_await asio::this_coro::reset_cancellation_state();
    co_await say_goodbye(client, e.server, relay.client_stream_at_boundary(), sqlstate::kAdminShutdown,
                         "the gateway is shutting down", "Reconnect in a moment.");
    PGNAP_LOG(kDebug, e.context, "ended by shutdown");
    co_return;
  }
  if (end.why == RelayEnd::Why::kClientProtocol) {
    instance->metrics().client_error(sqlstate::kProtocolViolation);
    const bool too_large = end.detail.find("above the maximum") != std::string::npos;
    if (too_large) env.metrics->limit_hit("max_message_size");
    const std::string message = "invalid message from client: " + end.detail;
    const std::string hint = too_large ? "Send smaller messages, or raise max_message_size in pgnap's [gateway]." : "";
    co_await say_goodbye(client, e.server, relay.client_stream_at_boundary(), sqlstate::kProtocolViolation, message,
                         hint);
    co_await drain_until_closed(client, Clock::now() + std::chrono::seconds(2));
  }
  // PostgreSQL went away in the middle of the session without a FATAL that says it lives on
  // (a killed postmaster ends its backends silently; one that is shut down or crashed says
  // 57Pxx): find out now whether the instance is down, not when the next client fails.
  if (end.why == RelayEnd::Why::kServerClosed && !relay.client_terminated() &&
      (relay.server_error_since_ready().empty() || relay.server_error_since_ready().starts_with("57"))) {
    const std::string& code = relay.server_error_since_ready();
    instance->check_reachable("it closed a session's connection" +
                              (code.empty() ? std::string(" without an error") : " with " + code));
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  PGNAP_LOG(kDebug, e.context, "ended after " << ms << " ms: "
                                              << (end.why == RelayEnd::Why::kClientClosed   ? "client closed"
                                                  : end.why == RelayEnd::Why::kServerClosed ? "server closed"
                                                                                            : "error")
                                              << (end.detail.empty() ? "" : " (" + end.detail + ")"));
}

}  // namespace

asio::awaitable<void> run_session(SessionEnv& env, Socket socket, std::uint64_t id) {
  Stream client(std::move(socket));
  auto established = co_await establish(env, client, id);
  if (!established) co_return;
  co_await relay_phase(env, client, *established);
}

}  // namespace pgnap::daemon
