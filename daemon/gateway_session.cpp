#include "daemon/gateway_session.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/backend_address.h"
#include "daemon/cancel_forward.h"
#include "daemon/client_auth.h"
#include "daemon/client_queue.h"
#include "daemon/instance_auth.h"
#include "daemon/issued_key.h"
#include "daemon/log.h"
#include "daemon/message_reader.h"
#include "daemon/parking.h"
#include "daemon/relay_phase.h"
#include "daemon/server_login.h"
#include "daemon/server_pool.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

namespace sqlstate = protocol::sqlstate;
namespace fmsg = protocol::frontend_msg;

// Writes to a client that stops reading give up after this long (the session then ends).
constexpr auto kClientWriteTimeout = std::chrono::seconds(30);

struct Attached {
  Lease lease;
  PooledConnection connection;
};
using AttachResult = std::variant<Attached, Refusal, LoginFailure>;

// A lease on the instance (waking it if need be) and a server connection logged in as the
// client: a pooled one, or a new one. A server found dead although believed awake gets one
// fresh wake.
asio::awaitable<AttachResult> attach_server(SessionEnv& env, Instance& instance, protocol::StartupMessage startup,
                                            LoginSecret secret, ClientIdentity who, std::string cause) {
  const std::string database(startup.database());
  ServerPool& pool = *env.pool_of(instance);
  for (int attempt = 0;; ++attempt) {
    auto admitted = co_await instance.acquire(who, cause);
    if (auto* refusal = std::get_if<Refusal>(&admitted)) co_return std::move(*refusal);
    Lease lease = std::move(std::get<Lease>(admitted));
    auto checkout = co_await pool.acquire(startup, secret);
    if (auto* failure = std::get_if<ServerConnectFailure>(&checkout)) {
      if (failure->timed_out) env.metrics->limit_hit("connect_timeout");
      lease.release();
      if (attempt == 0 && failure->nothing_listening) {
        instance.report_unreachable(failure->why);
        continue;
      }
      co_return Refusal::make(Refusal::Kind::kConnectFailed, sqlstate::kCannotConnectNow,
                              "instance \"" + instance.name() + "\" could not be started", failure->why);
    }
    if (auto* refusal = std::get_if<Refusal>(&checkout)) co_return std::move(*refusal);
    if (auto* failure = std::get_if<LoginFailure>(&checkout)) co_return std::move(*failure);
    co_return Attached{std::move(lease), std::move(std::get<PooledConnection>(checkout))};
  }
}

// An attach running beside the session, which keeps reading the client meanwhile. Shared:
// the session may end first (the client left), and the attach then gives back what it got.
struct PendingAttach {
  std::optional<AttachResult> result;
  asio::steady_timer* notify = nullptr;  // the session's event timer; null once it has gone
  asio::cancellation_signal stop;        // the session ended: stop waiting for the wake
};

std::shared_ptr<PendingAttach> start_attach(SessionEnv& env, Instance& instance,
                                            const protocol::StartupMessage& startup, const LoginSecret& secret,
                                            const ClientIdentity& who, asio::steady_timer& notify) {
  auto pending = std::make_shared<PendingAttach>();
  pending->notify = &notify;
  auto run = [](std::shared_ptr<PendingAttach> p, SessionEnv& e, Instance& i, protocol::StartupMessage s, LoginSecret k,
                ClientIdentity who) -> asio::awaitable<void> {
    auto result = co_await attach_server(e, i, std::move(s), std::move(k), std::move(who), "query");
    p->result = std::move(result);
    if (p->notify != nullptr) p->notify->cancel();
  };
  // Spawned apart from the session's coroutine: the wake it may trigger must not share the
  // session's cancellation (others may wait for the same wake). The completion handler holds
  // the shared state: the cancellation signal its slot belongs to must outlive it.
  asio::co_spawn(instance.executor(), run(pending, env, instance, startup, secret, who),
                 asio::bind_cancellation_slot(pending->stop.slot(), [pending](std::exception_ptr) {}));
  return pending;
}

// The client's own startup values of the parameters PostgreSQL reports back, over what the
// last real login reported: what this client would see from a login of its own.
Parameters greeting_parameters(const Parameters& remembered, const protocol::StartupMessage& startup) {
  Parameters out = remembered;
  auto set = [&](std::string_view name, std::string value) { protocol::set_parameter(out, name, std::move(value)); };
  if (auto name = startup.get("application_name")) set("application_name", std::string(*name));
  if (auto encoding = startup.get("client_encoding"); encoding && *encoding != "auto") {
    std::string upper(*encoding);
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    if (upper == "UTF-8" || upper == "UNICODE") upper = "UTF8";
    set("client_encoding", upper);
  }
  return out;
}

std::string encode_parameters(const Parameters& parameters) {
  std::string out;
  for (const auto& [name, value] : parameters) out += protocol::encode_parameter_status(name, value);
  return out;
}

// ParameterStatus for every value the server reports differently from what the client was
// told: sent before the server's first answer reaches the client.
std::string parameter_changes(const Parameters& told, const Parameters& server) {
  std::string out;
  for (const auto& [name, value] : server) {
    const std::string* was = protocol::find_parameter(told, name);
    if (was == nullptr || *was != value) out += protocol::encode_parameter_status(name, value);
  }
  return out;
}

// What the client's session carries from step to step.
struct GatewaySession {
  SessionEnv& env;
  Stream& client;
  RoutedSession routed;
  Instance& instance;
  InstanceAuth& auth;
  MessageReader reader;
  std::string user;
  std::string database;
  LoginSecret secret;
  std::optional<IssuedKey> key;
  Parameters told;  // the ParameterStatus values the client has been given
  // The state of the session while it is parked.
  ParkedSession parked{instance.metrics()};
  // The session as its instance lists it for `pgnap status`, registered once authenticated.
  SessionEntry entry{};
};

asio::awaitable<bool> write_client(GatewaySession& s, const std::string& bytes) {
  if (bytes.empty()) co_return true;
  co_return !co_await write_all(s.client, bytes, Clock::now() + kClientWriteTimeout);
}

// Tells a client whose session ends why, counts it, and logs it.
asio::awaitable<void> end_with(GatewaySession& s, const Refusal& refusal) {
  count_refusal(s.env, s.instance, s.routed.context, refusal);
  co_await send_fatal(s.client, refusal.error);
}

// The login to PostgreSQL failed. Refused by PostgreSQL (a dropped role, pg_hba, a missing
// database): its own error, then the close, as a direct connection would have seen at its
// start. Otherwise pgnap's FATAL saying why.
asio::awaitable<void> end_with(GatewaySession& s, const LoginFailure& failure) {
  s.instance.metrics().client_error(failure.error.sqlstate);
  PGNAP_LOG(kInfo, s.routed.context,
            "login to the instance as \""
                << s.user << "\" failed (" << failure.error.sqlstate << "): " << failure.error.message
                << (failure.error.detail.empty() ? "" : ": " + failure.error.detail)
                << (failure.verifier_mismatch.empty()
                        ? ""
                        : " (pgnap's verifier was not the server's: " + failure.verifier_mismatch + ")"));
  if (failure.kind == LoginFailure::Kind::kRefused) {
    (void)co_await write_client(s, failure.server_error);
    boost::system::error_code ignored;
    s.client.socket().shutdown(Socket::shutdown_send, ignored);
  } else {
    co_await send_fatal(s.client, failure.error);
  }
}

// Steps 1 and 2: the user's credential, and the exchange with the client. False when the
// session ended there.
asio::awaitable<bool> authenticate(GatewaySession& s) {
  const auto deadline = Clock::now() + s.env.gateway->login_timeout;
  auto found = co_await (s.auth.lookup(s.entry.client) || client_gone(s.client.socket()));
  if (found.index() == 1) co_return false;
  auto& lookup = std::get<0>(found);
  if (lookup.refusal) {
    co_await end_with(s, *lookup.refusal);
    co_return false;
  }
  const auto& config = s.auth.config();
  const ClientAuthRequest request{s.user, config.methods, lookup.credential,
                                  tls_server_end_point(s.client.tls_handle()), s.auth.mock_secret()};
  auto outcome = co_await authenticate_client(s.client, s.reader, request, deadline);
  if (auto* failure = std::get_if<ClientAuthFailure>(&outcome)) {
    s.instance.metrics().authenticated("-", to_string(failure->kind));
    if (failure->kind == ClientAuthFailure::Kind::kTimedOut) s.env.metrics->limit_hit("login_timeout");
    if (failure->kind == ClientAuthFailure::Kind::kGone) co_return false;
    s.instance.metrics().client_error(failure->error.sqlstate);
    log_refusal(s.env, s.routed.context,
                "refused (" + failure->error.sqlstate + "): " + failure->error.message +
                    (failure->error.detail.empty() ? "" : ": " + failure->error.detail));
    co_await send_fatal(s.client, failure->error);
    co_return false;
  }
  auto& login = std::get<ClientLogin>(outcome);
  s.instance.metrics().authenticated(login.method, "ok");
  s.secret = LoginSecret{lookup.credential, login.client_key};
  PGNAP_LOG(kDebug, s.routed.context, "authenticated user \"" << s.user << "\" (" << login.method << ")");
  co_return true;
}

// AuthenticationOk, the parameters, pgnap's key and ReadyForQuery.
std::string greeting(const GatewaySession& s) {
  return protocol::encode_authentication_ok() + encode_parameters(s.told) +
         protocol::encode_backend_key_data(s.key->key()) + protocol::encode_ready_for_query('I');
}

// The relay, once a server is attached: it answers what the client queued, then everything.
// At the end the connection goes back to the pool, which keeps it if it is at rest. True when
// the session parked: its state is in `s.parked`, its client still connected.
//
// A cancel that arrives before the queued messages reach the server (`cancelled`: already
// during the attach) is held and forwarded to the backend once they are written: sent
// earlier, it would find the backend idle, and PostgreSQL drops a cancel for an idle backend.
asio::awaitable<bool> relay_attached(GatewaySession& s, Attached& attached, std::string queued,
                                     bool cancelled = false) {
  auto cancel_held = std::make_shared<bool>(cancelled);
  s.key->detached([cancel_held] { *cancel_held = true; });
  ServerSession& server = attached.connection.server;
  const std::string changes = parameter_changes(s.told, server.parameters);
  s.auth.remember(s.user, s.database, attached.connection.login_parameters);
  ServerPool& pool = *s.env.pool_of(s.instance);
  if (!co_await write_client(s, changes)) {
    pool.release(std::move(attached.connection), false);
    co_return false;
  }
  const Endpoint endpoint = server.connection.endpoint;
  const auto executor = co_await asio::this_coro::executor;
  auto point_key_at_server = [&s, endpoint, server_key = server.key,
                              in_flight = attached.connection.cancels_in_flight, cancel_held, executor] {
    s.key->attached(endpoint, server_key, in_flight);
    if (!std::exchange(*cancel_held, false)) return;
    // The coroutine owns its arguments (co_spawn keeps the function object alive while it runs).
    asio::co_spawn(
        executor,
        [cancels = s.env.cancels, metrics = s.env.metrics,
         request = protocol::CancelRequest{s.key->key().process_id, s.key->key().secret_key},
         context = s.routed.context]() -> asio::awaitable<void> {
          co_await forward_cancel(*cancels, *metrics, request, context);
        },
        asio::detached);
  };
  PGNAP_LOG(kDebug, s.routed.context,
            "attached to " << server.key.process_id << " at " << endpoint_to_string(endpoint)
                           << (attached.connection.reused ? " (pooled)" : ""));
  RelayedSession relayed{.instance = &s.instance,
                         .lease = std::move(attached.lease),
                         .server = std::move(server.connection.stream),
                         .connected_to = endpoint,
                         .context = s.routed.context,
                         .key_issued_by_pgnap = true,
                         .first_to_server = std::move(queued),
                         .after_first_to_server = point_key_at_server};
  relayed.pooled_parameters = &server.parameters;
  relayed.entry = &s.entry;
  s.entry.waiting = false;
  s.entry.parked = false;
  relayed.may_park = s.instance.config().park_sessions;  // as configured now (a reload applies)
  bool parked = false;
  for (;;) {
    co_await relay_session(s.env, s.client, relayed);
    relayed.after_first_to_server = {};  // once: a relay resumed after a refused park finds the key attached
    if (!relayed.parked) break;
    // Stopped at rest to park: no cancel may reach the backend while its state is read.
    s.key->detached({});
    auto attempt = co_await try_park(s.instance, s.routed.context, relayed.server, server.parameters, s.user);
    if (attempt.outcome == ParkAttempt::Outcome::kRefused) {
      s.key->attached(endpoint, server.key, attached.connection.cancels_in_flight);
      relayed.park_refused_at = relayed.last_traffic.value_or(Clock::time_point{});
      continue;
    }
    if (attempt.outcome == ParkAttempt::Outcome::kFailed) {
      relayed.server_reusable = false;
      const protocol::ErrorResponse bye{"FATAL", std::string(sqlstate::kAdminShutdown),
                                        "terminating idle connection so that the database can sleep",
                                        "Its session could not be parked: " + attempt.why,
                                        "Reconnect to continue: the next connection wakes the database."};
      co_await send_fatal(s.client, bye);
      break;
    }
    // The client has seen every parameter the server reported: the next server connection
    // is compared with that.
    for (const auto& [name, value] : server.parameters) protocol::set_parameter(s.told, name, value);
    s.parked.park(std::move(attempt.state));
    s.entry.parked = true;
    s.entry.last_seen = relayed.last_traffic.value_or(Clock::now());
    parked = true;
    break;
  }
  // The session's key no longer reaches this backend before it can serve anyone else.
  s.key->detached({});
  relayed.lease.release();
  server.connection.stream = std::move(relayed.server);
  pool.release(std::move(attached.connection), relayed.server_reusable);
  co_return parked;
}

// The first login of this user to this database that pgnap sees: no parameters to repeat
// yet, so the session waits for the database as a relayed one does.
asio::awaitable<bool> first_login(GatewaySession& s) {
  // (operator|| flattens the variant: Attached, Refusal, LoginFailure, or monostate when the
  // client left first.)
  auto attach = co_await (attach_server(s.env, s.instance, s.routed.startup.startup, s.secret, s.entry.client,
                                        "login") ||
                          client_gone(s.client.socket()));
  if (std::holds_alternative<std::monostate>(attach)) co_return false;
  if (auto* refusal = std::get_if<Refusal>(&attach)) {
    co_await end_with(s, *refusal);
    co_return false;
  }
  if (auto* failure = std::get_if<LoginFailure>(&attach)) {
    co_await end_with(s, *failure);
    co_return false;
  }
  auto& attached = std::get<Attached>(attach);
  s.told = greeting_parameters(attached.connection.server.parameters, s.routed.startup.startup);
  s.auth.remember(s.user, s.database, attached.connection.login_parameters);
  if (!co_await write_client(s, greeting(s))) {
    s.env.pool_of(s.instance)->release(std::move(attached.connection), false);
    co_return false;
  }
  co_return co_await relay_attached(s, attached, s.reader.take_buffered());
}

// Ready and attaching: reads the client's messages; the first one starts an attach, and
// they queue until it ends. A cancel answers the query at the head; a failed wake answers
// them all and the session is ready again.
asio::awaitable<bool> serve_until_attached(GatewaySession& s) {
  auto executor = co_await asio::this_coro::executor;
  const auto& config = s.auth.config();
  ClientQueue queue(&s.env.queued_bytes, &s.instance.metrics().queued_bytes);
  asio::steady_timer events(executor, Clock::time_point::max());
  bool cancel_requested = false;
  s.key->detached([&] {
    cancel_requested = true;
    events.cancel();
  });
  const auto registration = s.env.unattached_sessions.insert(s.env.unattached_sessions.end(), &events);
  struct Unregister {
    std::list<asio::steady_timer*>& list;
    std::list<asio::steady_timer*>::iterator position;
    ~Unregister() { list.erase(position); }
  } unregister{s.env.unattached_sessions, registration};
  std::shared_ptr<PendingAttach> pending;
  struct Abandon {  // the session ends before its attach: the attach gives back what it got
    std::shared_ptr<PendingAttach>& pending;
    ~Abandon() {
      if (!pending) return;
      pending->notify = nullptr;
      pending->stop.emit(asio::cancellation_type::terminal);
    }
  } abandon{pending};
  // A message above queue_limit cannot be queued: refused from its header, before it is read.
  const bool limited_by_queue = config.queue_limit < s.env.gateway->max_message_size;
  s.reader.set_max_length(static_cast<std::uint32_t>(
      std::min<std::uint64_t>(limited_by_queue ? config.queue_limit : s.env.gateway->max_message_size, 0xffffffffu)));

  for (;;) {
    if (s.env.draining && !pending) {
      // Shutting down, and nothing of this session is in flight: say so and end it now.
      const protocol::ErrorResponse bye{
          "FATAL", std::string(sqlstate::kAdminShutdown), "the gateway is shutting down", {}, "Reconnect in a moment."};
      co_await send_fatal(s.client, bye);
      co_return false;
    }
    if (cancel_requested) {
      cancel_requested = false;
      if (queue.has_command()) {
        ++s.instance.metrics().queued_cancelled;
        const protocol::ErrorResponse canceled{
            "ERROR", std::string(sqlstate::kQueryCanceled), "canceling statement due to user request", {}, {}};
        if (!co_await write_client(s, queue.answer_first(canceled))) co_return false;
      }
    }
    s.entry.parked = s.parked.parked();
    s.entry.waiting = pending != nullptr;
    if (pending && pending->result) {
      AttachResult result = std::move(*pending->result);
      pending.reset();
      s.entry.waiting = false;
      if (auto* attached = std::get_if<Attached>(&result)) {
        if (s.parked.parked()) {
          // Resuming: the parked state first, then what the client sent.
          if (auto fatal = co_await resume_parked(s.instance, s.routed.context, attached->connection.server,
                                                  s.parked.state())) {
            s.env.pool_of(s.instance)->release(std::move(attached->connection), false);
            co_await send_fatal(s.client, *fatal);
            co_return false;
          }
          s.parked.clear();
        }
        co_return co_await relay_attached(s, *attached, queue.take_all() + s.reader.take_buffered(),
                                          cancel_requested);
      }
      if (auto* failure = std::get_if<LoginFailure>(&result)) {
        co_await end_with(s, *failure);
        co_return false;
      }
      const auto& refusal = std::get<Refusal>(result);
      count_refusal(s.env, s.instance, s.routed.context, refusal);
      if (refusal.kind == Refusal::Kind::kShuttingDown) {
        co_await send_fatal(s.client, refusal.error);
        co_return false;
      }
      // The wake failed: an ERROR for each queued query, not a FATAL — the session is fine.
      protocol::ErrorResponse error = refusal.error;
      error.severity = "ERROR";
      const std::size_t queued = queue.size();
      const std::string answers = queue.answer_all(error);
      PGNAP_LOG(kDebug, s.routed.context,
                "answered " << queued << " queued message(s) with " << error.sqlstate << " (" << answers.size()
                            << " bytes)");
      if (!co_await write_client(s, answers)) co_return false;
    }
    if (!pending && !queue.empty()) {
      PGNAP_LOG(kDebug, s.routed.context, "attaching for " << queue.size() << " queued message(s)");
      pending = start_attach(s.env, s.instance, s.routed.startup.startup, s.secret, s.entry.client, events);
      // co_spawn may run the attach inline to its end (an admission refused at once): look
      // at its result before waiting for the event that already happened.
      continue;
    }
    // Nothing in this iteration suspended since the checks above, so no event can have been
    // missed: the wait below sees every later one.

    // Waiting with nothing queued (idle, or parked) may last hours: keep no buffer meanwhile.
    if (!pending && queue.empty()) s.reader.release_memory();
    events.expires_at(Clock::time_point::max());
    auto next = co_await (s.reader.next() || events.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (next.index() == 1) continue;  // an event: looked at above
    const auto& read = std::get<0>(next);
    if (read.status == MessageReader::Status::kClosed) co_return false;
    if (read.status == MessageReader::Status::kInvalid) {
      const bool too_large = read.error_kind == protocol::ScanError::kLengthAboveMaximum;
      if (too_large && limited_by_queue) {
        s.env.metrics->limit_hit("queue_limit");
        // (A named local, never a braced temporary, as a coroutine's argument: see net.h.)
        const protocol::ErrorResponse over{"FATAL", std::string(sqlstate::kConfigurationLimitExceeded),
                                           "too much data queued while instance \"" + s.instance.name() + "\" starts",
                                           read.detail,
                                           "Raise auth.queue_limit, or send less before the first answer."};
        co_await send_fatal(s.client, over);
        co_return false;
      }
      if (too_large) s.env.metrics->limit_hit("max_message_size");
      const protocol::ErrorResponse invalid{
          "FATAL", std::string(sqlstate::kProtocolViolation), "invalid message from client: " + read.detail, {}, {}};
      co_await send_fatal(s.client, invalid);
      co_return false;
    }
    if (read.frame.type == fmsg::kTerminate) co_return false;
    s.entry.last_seen = Clock::now();
    PGNAP_LOG(kDebug, s.routed.context, "queued message '" << read.frame.type << "' (" << read.frame.size << " bytes)");
    const std::string reply = queue.push(read.frame.type, s.reader.last_message());
    ++s.instance.metrics().queued_messages;
    if (!co_await write_client(s, reply)) co_return false;
    if (queue.bytes() > config.queue_limit || s.env.queued_bytes > s.env.gateway->queue_limit_total) {
      const bool total = queue.bytes() <= config.queue_limit;
      s.env.metrics->limit_hit(total ? "queue_limit_total" : "queue_limit");
      const protocol::ErrorResponse over{"FATAL", std::string(sqlstate::kConfigurationLimitExceeded),
                                         "too much data queued while instance \"" + s.instance.name() + "\" starts",
                                         total ? "All sessions together have queued more than queue_limit_total."
                                               : "This session queued more than auth.queue_limit.",
                                         total ? "Raise [gateway] queue_limit_total." : "Raise auth.queue_limit."};
      co_await send_fatal(s.client, over);
      co_return false;
    }
  }
}

}  // namespace

asio::awaitable<void> run_gateway_session(SessionEnv& env, Stream& client, RoutedSession routed) {
  Instance& instance = *routed.instance;
  InstanceAuth* auth = env.auth_of(instance);
  if (auth == nullptr) co_return;  // not configured: cannot happen once routed in this mode
  GatewaySession s{env, client, std::move(routed), instance, *auth, MessageReader(client, 65535), {}, {}, {}, {}, {}};
  s.user = std::string(s.routed.startup.startup.user());
  s.database = std::string(s.routed.startup.startup.database());
  s.reader.prime(std::move(s.routed.startup.pipelined));
  s.entry.id = s.routed.id;
  s.entry.client = ClientIdentity{s.user, s.database,
                                  std::string(s.routed.startup.startup.get("application_name").value_or("")),
                                  s.routed.peer};
  s.entry.connected_at = Clock::now();
  s.entry.last_seen = s.entry.connected_at;
  s.entry.ignored = instance.ignored(s.entry.client) != nullptr;
  struct Registered {
    Instance& instance;
    SessionEntry* entry = nullptr;
    ~Registered() {
      if (entry != nullptr) instance.unregister_session(entry);
    }
  } registered{instance};
  try {
    if (!co_await authenticate(s)) co_return;
    instance.register_session(&s.entry);
    registered.entry = &s.entry;
    s.key.emplace(*env.cancels, instance);
    const Parameters* remembered = auth->remembered(s.user, s.database);
    bool parked = false;
    if (remembered == nullptr) {
      parked = co_await first_login(s);
    } else {
      // The instant session: no server, whatever the instance is doing.
      s.told = greeting_parameters(*remembered, s.routed.startup.startup);
      if (!co_await write_client(s, greeting(s))) co_return;
      parked = co_await serve_until_attached(s);
    }
    // Parked: no server until the client's next message (serve_until_attached resumes it).
    while (parked) parked = co_await serve_until_attached(s);
  } catch (const boost::system::system_error& e) {
    // Cancelled: the gateway is shutting down. Between messages here, so it can be said.
    PGNAP_LOG(kDebug, s.routed.context, "session interrupted: " << e.what());
  }
  auto cancellation = co_await asio::this_coro::cancellation_state;
  if (cancellation.cancelled() != asio::cancellation_type::none) {
    co_await asio::this_coro::reset_cancellation_state();
    const protocol::ErrorResponse bye{
        "FATAL", std::string(sqlstate::kAdminShutdown), "the gateway is shutting down", {}, "Reconnect in a moment."};
    co_await send_fatal(client, bye);
  }
}

}  // namespace pgnap::daemon
