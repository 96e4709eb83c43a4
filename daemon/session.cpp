#include "daemon/session.h"

#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/backend_address.h"
#include "daemon/cancel_forward.h"
#include "daemon/gateway_session.h"
#include "daemon/instance.h"
#include "daemon/relay.h"
#include "daemon/relay_phase.h"
#include "daemon/server_connection.h"
#include "daemon/startup_reader.h"
#include "daemon/stream.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;
namespace sqlstate = protocol::sqlstate;

void log_refusal(SessionEnv& env, const std::string& context, const std::string& text) {
  std::size_t suppressed = 0;
  switch (env.refusal_log.take(std::chrono::steady_clock::now(), suppressed)) {
    case log::LineBudget::Verdict::kWrite:
      PGNAP_LOG(kInfo, context,
                text << (suppressed == 0
                             ? ""
                             : " (" + std::to_string(suppressed) + " similar line(s) left out before this one)"));
      return;
    case log::LineBudget::Verdict::kFirstLeftOut:
      PGNAP_LOG(kWarning, "gateway",
                "more than " << SessionEnv::kRefusalLinesPerSecond
                             << " refused connections in a second: the next ones are left out of the log "
                                "(pgnap_gateway_errors_total and pgnap_limit_hits_total count them all)");
      return;
    case log::LineBudget::Verdict::kLeftOut: return;
  }
}

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

void count_refusal(SessionEnv& env, Instance& instance, const std::string& context, const Refusal& refusal) {
  if (refusal.kind == Refusal::Kind::kTooManyWaiting) env.metrics->limit_hit("max_waiting");
  instance.metrics().client_error(refusal.error.sqlstate);
  PGNAP_LOG(kInfo, context,
            "refused (" << refusal.error.sqlstate << "): " << refusal.error.message
                        << (refusal.error.detail.empty() ? "" : ": " + refusal.error.detail));
}

namespace {

// Counts, logs and sends a refusal of a client that reached an instance.
asio::awaitable<void> refuse(SessionEnv& env, Stream& client, Instance& instance, const std::string& context,
                             const Refusal& refusal) {
  count_refusal(env, instance, context, refusal);
  co_await send_fatal(client, refusal.error);
}

// Step 1: the startup phase. The client's StartupMessage, or nullopt when the connection
// ended there: refused (the client was told), a cancel request (forwarded), or gone.
asio::awaitable<std::optional<StartupOutcome>> read_client_startup(SessionEnv& env, Stream& client,
                                                                   const std::string& context) {
  auto startup = co_await read_startup(client, Clock::now() + env.gateway->login_timeout, env.tls);
  if (startup.login_timeout) env.metrics->limit_hit("login_timeout");
  using Kind = StartupOutcome::Kind;
  switch (startup.kind) {
    case Kind::kStartup: co_return startup;
    case Kind::kCancel:
      co_await forward_cancel(*env.cancels, *env.metrics, startup.cancel, context);
      co_return std::nullopt;
    case Kind::kTlsHandshakeFailed:
      ++env.metrics->tls_handshake_failures;
      log_refusal(env, context, startup.reason);
      co_return std::nullopt;
    case Kind::kClientGone:
      PGNAP_LOG(kDebug, context, "closed during startup: " << startup.reason);
      co_return std::nullopt;
    case Kind::kMalformed:
    case Kind::kLoginTimeout:
    case Kind::kTlsRequired:
      env.metrics->error(startup.error.sqlstate);
      log_refusal(env, context, "refused: " + startup.reason);
      co_return std::nullopt;
  }
  co_return std::nullopt;
}

// Step 2: routing. The instance serving `database`, or nullptr after telling the client
// 3D000 with the names that are served.
asio::awaitable<Instance*> route(SessionEnv& env, Stream& client, const std::string& context,
                                 const std::string& database) {
  if (Instance* instance = env.router->route(database)) co_return instance;
  std::string served;
  for (const auto& name : env.router->served_names()) served += (served.empty() ? "" : ", ") + name;
  log_refusal(env, context, "refused: database \"" + database + "\" is not served");
  env.metrics->error(sqlstate::kInvalidCatalogName);
  const protocol::ErrorResponse error{"FATAL", std::string(sqlstate::kInvalidCatalogName),
                                      "database \"" + database + "\" is not served by this gateway",
                                      served.empty() ? std::string() : "Databases served: " + served + ".",
                                      "Check the database name in the connection string, or add it to an instance's "
                                      "\"databases\" in pgnap's configuration."};
  co_await send_fatal(client, error);
  co_return nullptr;
}

struct Admitted {
  Lease lease;
  ServerConnection server;
};

// Step 3: admission (at once, or after the shared wake) and a connection to the server. A
// server found dead although the instance was believed awake gets one fresh wake.
asio::awaitable<std::optional<Admitted>> admit_and_connect(SessionEnv& env, Stream& client, Instance& instance,
                                                           const std::string& context, ClientIdentity who) {
  for (int attempt = 0;; ++attempt) {
    // operator|| flattens Admission (a variant) with client_gone's void: the result is one
    // of Lease, Refusal, or monostate when the client left first.
    auto admitted = co_await (instance.acquire(who, "connect") || client_gone(client.socket()));
    if (std::holds_alternative<std::monostate>(admitted)) {
      PGNAP_LOG(kDebug, context, "client left while waiting for the instance");
      co_return std::nullopt;
    }
    if (const auto* refusal = std::get_if<Refusal>(&admitted)) {
      co_await refuse(env, client, instance, context, *refusal);
      co_return std::nullopt;
    }
    Lease lease = std::move(std::get<Lease>(admitted));
    auto connected = co_await connect_server(instance, env.instance_tls);
    if (auto* server = std::get_if<ServerConnection>(&connected))
      co_return Admitted{std::move(lease), std::move(*server)};

    const auto& failure = std::get<ServerConnectFailure>(connected);
    if (failure.timed_out) env.metrics->limit_hit("connect_timeout");
    lease.release();
    if (attempt == 0 && failure.nothing_listening) {
      instance.report_unreachable(failure.why);
      continue;  // acquire again: this wakes it
    }
    const Refusal refusal =
        failure.tls
            ? Refusal::make(Refusal::Kind::kConnectFailed, sqlstate::kCannotConnectNow,
                            "could not connect to instance \"" + instance.name() + "\" with TLS", failure.why,
                            "Check the server's ssl setting, or the instance's tls in pgnap's configuration.")
            : Refusal::make(Refusal::Kind::kConnectFailed, sqlstate::kCannotConnectNow,
                            "instance \"" + instance.name() + "\" could not be started", failure.why,
                            "The instance was reported ready but does not accept connections; see pgnap's log.");
    co_await refuse(env, client, instance, context, refusal);
    co_return std::nullopt;
  }
}

// Step 4: the client's startup packet to PostgreSQL (as protocol 3.0), with whatever the
// client pipelined after it; NegotiateProtocolVersion to the client when it asked for more.
asio::awaitable<bool> forward_startup(SessionEnv& env, Stream& client, Instance& instance, Stream& server,
                                      const StartupOutcome& startup, const std::string& context) {
  const auto negotiated = protocol::negotiate_startup(startup.startup);
  const std::string first_bytes = protocol::encode_startup_message(negotiated.forwarded) + startup.pipelined;
  if (auto ec = co_await write_all(server, first_bytes, Clock::now() + instance.config().connect_timeout); ec) {
    const Refusal refusal = Refusal::make(Refusal::Kind::kConnectFailed, sqlstate::kCannotConnectNow,
                                          "instance \"" + instance.name() + "\" could not be started",
                                          "sending the startup packet failed: " + ec.message());
    co_await refuse(env, client, instance, context, refusal);
    co_return false;
  }
  if (negotiated.negotiate_message) {
    if (co_await write_all(client, *negotiated.negotiate_message, Clock::now() + std::chrono::seconds(10))) {
      co_return false;
    }
  }
  co_return true;
}

// The connection phase: the steps above in order, up to the relay in the transparent mode,
// up to the routing in the authenticating mode (gateway_session.cpp takes over there).
// Nothing when the session ended; whatever had to be said to the client has been said.
using Established = std::variant<std::monostate, RelayedSession, RoutedSession>;

// The transparent mode's session as its instance lists it (`pgnap status`), from its
// admission (waiting for a wake, then relayed) to its end.
struct Registration {
  SessionEntry entry{};
  Instance* instance = nullptr;
  ~Registration() {
    if (instance != nullptr) instance->unregister_session(&entry);
  }
};

asio::awaitable<Established> establish(SessionEnv& env, Stream& client, std::uint64_t id, Registration& listed) {
  const std::string peer = peer_name(client.socket());
  const std::string context = "session=" + std::to_string(id) + " client=" + peer;
  const Keepalive keepalive{std::chrono::duration_cast<std::chrono::seconds>(env.gateway->tcp_keepalive_idle),
                            std::chrono::duration_cast<std::chrono::seconds>(env.gateway->tcp_keepalive_interval),
                            static_cast<int>(env.gateway->tcp_keepalive_count)};
  tune_client_socket(client.socket(), keepalive);

  auto startup = co_await read_client_startup(env, client, context);
  if (!startup) co_return std::monostate{};
  const std::string database(startup->startup.database());
  Instance* instance = co_await route(env, client, context, database);
  if (instance == nullptr) co_return std::monostate{};
  const std::string icontext = context + " instance=" + instance->name();
  PGNAP_LOG(kDebug, icontext, "startup: user \"" << startup->startup.user() << "\", database \"" << database << "\"");
  if (instance->config().auth.mode == "gateway") {
    co_return RoutedSession{std::move(*startup), instance, icontext, peer, id};
  }

  ClientIdentity who{std::string(startup->startup.user()), database,
                     std::string(startup->startup.get("application_name").value_or("")), peer};
  listed.entry.id = id;
  listed.entry.client = who;
  listed.entry.connected_at = Clock::now();
  listed.entry.last_seen = listed.entry.connected_at;
  listed.entry.ignored = instance->ignored(who) != nullptr;
  listed.entry.waiting = true;
  instance->register_session(&listed.entry);
  listed.instance = instance;
  auto admitted = co_await admit_and_connect(env, client, *instance, icontext, who);
  listed.entry.waiting = false;
  if (!admitted) co_return std::monostate{};
  Stream& server = admitted->server.stream;
  if (!co_await forward_startup(env, client, *instance, server, *startup, icontext)) co_return std::monostate{};
  PGNAP_LOG(kDebug, icontext,
            "connected to " << endpoint_to_string(admitted->server.endpoint) << (server.tls() ? " with TLS" : "")
                            << (client.tls() ? "; client has TLS" : ""));
  co_return RelayedSession{.instance = instance,
                           .lease = std::move(admitted->lease),
                           .server = std::move(server),
                           .connected_to = admitted->server.endpoint,
                           .context = icontext,
                           .id = id,
                           .client = std::move(who),
                           .entry = &listed.entry};
}

}  // namespace

asio::awaitable<void> run_session(SessionEnv& env, Socket socket, std::uint64_t id) {
  Stream client(std::move(socket));
  Registration listed;
  auto established = co_await establish(env, client, id, listed);
  if (auto* relayed = std::get_if<RelayedSession>(&established)) {
    co_await relay_session(env, client, *relayed);
  } else if (auto* routed = std::get_if<RoutedSession>(&established)) {
    co_await run_gateway_session(env, client, std::move(*routed));
  }
}

}  // namespace pgnap::daemon
