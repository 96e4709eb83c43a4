#include "daemon/server_pool.h"

#include <algorithm>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/log.h"
#include "daemon/message_reader.h"
#include "daemon/server_connection.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

namespace {

namespace sqlstate = protocol::sqlstate;
namespace msg = protocol::backend_msg;

bool is_set_parameter(std::string_view name) {
  return std::find(kSetParameters.begin(), kSetParameters.end(), name) != kSetParameters.end();
}

// Runs a simple query that returns no rows the caller needs (SETs, the reset), keeping the
// connection's parameters up to date with the ParameterStatus it reports. "" on success,
// else why it failed (the connection is then not reusable).
asio::awaitable<std::string> run_simple(ServerSession& server, const std::string& sql, Clock::time_point deadline,
                                        protocol::ErrorResponse* error) {
  Stream& stream = server.connection.stream;
  if (const auto ec = co_await write_all(stream, protocol::encode_query(sql), deadline); ec) {
    co_return "sending it failed: " + ec.message();
  }
  MessageReader reader(stream, 1 << 20);
  std::string failure;
  for (;;) {
    const auto read = co_await next_answer(reader, server.parameters, deadline);
    if (read.status != MessageReader::Status::kMessage) {
      co_return read.status == MessageReader::Status::kTimedOut ? "it did not finish in time" : "the connection failed";
    }
    switch (read.frame.type) {
      case msg::kErrorResponse:
        if (auto fields = protocol::parse_error_response(read.frame.body)) {
          failure = fields->sqlstate + " " + fields->message;
          if (error != nullptr) *error = *fields;
        } else {
          failure = "an error";
        }
        break;
      case msg::kReadyForQuery: {
        const auto status = protocol::parse_ready_for_query_body(read.frame.body);
        if (failure.empty() && status != 'I') failure = "the connection is left in a transaction";
        if (reader.buffered() > 0) failure = "unexpected data after ReadyForQuery";
        co_return failure;
      }
      default:  // CommandComplete, notices, rows of a reset query
        break;
    }
  }
}

// True when nothing can be read from an idle connection's socket, as it should be.
bool quiet(ServerSession& server) {
  char byte;
  const ssize_t n = ::recv(server.connection.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

Refusal shutting_down() {
  return Refusal::make(Refusal::Kind::kShuttingDown, sqlstate::kAdminShutdown, "the gateway is shutting down");
}

}  // namespace

PoolKey pool_key(const protocol::StartupMessage& startup) {
  PoolKey key{std::string(startup.user()), std::string(startup.database()), {}};
  std::vector<std::pair<std::string, std::string>> others;
  for (const auto& [name, value] : startup.parameters) {
    if (name == "user" || name == "database" || is_set_parameter(name) || name.starts_with("_pq_.")) continue;
    others.emplace_back(name, value);
  }
  std::sort(others.begin(), others.end());
  for (const auto& [name, value] : others) key.options += name + "=" + value + "\n";
  return key;
}

protocol::StartupMessage pooled_startup(const protocol::StartupMessage& client) {
  protocol::StartupMessage out;
  for (const auto& p : client.parameters) {
    if (!is_set_parameter(p.first)) out.parameters.push_back(p);
  }
  return out;
}

std::string set_statements(const protocol::StartupMessage& client, const Parameters& current) {
  std::string sql;
  for (const std::string_view name : kSetParameters) {
    const auto wanted = client.get(name);
    const std::string* in_force = protocol::find_parameter(current, name);
    if (!wanted || *wanted == (in_force != nullptr ? *in_force : std::string())) continue;
    // The name is one of ours, never the client's text: no quoting needed for it.
    sql += "SET " + std::string(name) + " = " + protocol::sql_literal(*wanted) + ";";
  }
  return sql;
}

ServerPool::ServerPool(Instance& instance, metrics::GatewayMetrics& gateway_metrics, std::shared_ptr<ssl::context> tls)
    : instance_(instance), gateway_metrics_(gateway_metrics), tls_(std::move(tls)), idle_check_(instance.executor()) {}

ServerPool::~ServerPool() {
  *alive_ = false;
  for (auto& idle : idle_) close_connection(idle.connection.server);
}

std::optional<PooledConnection> ServerPool::take_idle(const PoolKey& key) {
  // The most recently returned first: the least used ones then age out (server_idle_timeout).
  for (auto it = idle_.rbegin(); it != idle_.rend();) {
    if (it->connection.key != key) {
      ++it;
      continue;
    }
    PooledConnection connection = std::move(it->connection);
    it = decltype(it)(idle_.erase(std::next(it).base()));
    // An idle connection has nothing to say: data or a close means the backend was
    // terminated (pg_terminate_backend, a restart) while it waited. The next one is tried.
    if (!quiet(connection.server)) {
      PGNAP_LOG(kDebug, context(), "an idle connection was closed by the server: dropped");
      close_connection(connection.server);
      publish();
      continue;
    }
    return connection;
  }
  return std::nullopt;
}

asio::awaitable<ServerPool::Checkout> ServerPool::acquire(const protocol::StartupMessage& startup,
                                                          const LoginSecret& secret) {
  const auto alive = alive_;
  const PoolKey key = pool_key(startup);
  const auto& config = instance_.config();
  const auto wait_until = Clock::now() + config.pool_wait_timeout;
  bool waited = false;
  for (;;) {
    if (auto idle = take_idle(key)) {
      idle->loan = lend();
      idle->reused = true;
      if (auto failure = co_await apply_parameters(*idle, startup)) {
        if (!*alive) co_return shutting_down();
        close_connection(idle->server);
        // One that broke in the pool is dropped and the next tried (the loan ends with
        // `idle`); a value PostgreSQL refuses is the client's to hear.
        if (failure->kind == LoginFailure::Kind::kBroken) continue;
        co_return std::move(*failure);
      }
      if (!*alive) co_return shutting_down();
      ++instance_.metrics().server_logins_saved;
      co_return std::move(*idle);
    }
    if (config.pool_size == 0 || total() < config.pool_size) co_return co_await open(startup, secret);
    if (!idle_.empty()) {
      close_oldest_idle();  // another user's or database's: its place serves this client
      publish();
      continue;
    }
    // Full of connections in use: wait for one to come back or close.
    if (!waited) {
      ++instance_.metrics().pool_waits;
      gateway_metrics_.limit_hit("pool_size");
      PGNAP_LOG(kDebug, context(), "all " << config.pool_size << " connections in use: a client waits");
    }
    waited = true;
    if (Clock::now() >= wait_until) {
      gateway_metrics_.limit_hit("pool_wait_timeout");
      co_return Refusal::make(Refusal::Kind::kPoolFull, sqlstate::kTooManyConnections,
                              "too many server connections for instance \"" + instance_.name() + "\"",
                              "All " + std::to_string(config.pool_size) +
                                  " connections of its pool (pool_size) stayed in use for pool_wait_timeout (" +
                                  config::format_duration(config.pool_wait_timeout) + ").",
                              "Retry in a moment, or raise pool_size (within the server's max_connections).");
    }
    asio::steady_timer turn(co_await asio::this_coro::executor, wait_until);
    const auto position = waiting_.insert(waiting_.end(), &turn);
    struct Leave {
      ServerPool* self;
      std::shared_ptr<bool> alive;
      std::list<asio::steady_timer*>::iterator position;
      ~Leave() {
        if (*alive) self->waiting_.erase(position);
      }
    } leave{this, alive, position};
    co_await turn.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return shutting_down();
  }
}

asio::awaitable<ServerPool::Checkout> ServerPool::open(const protocol::StartupMessage& startup,
                                                       const LoginSecret& secret) {
  const auto alive = alive_;
  ++opening_;
  struct Opened {
    ServerPool* self;
    std::shared_ptr<bool> alive;
    ~Opened() {
      if (*alive) --self->opening_;
    }
  } opened{this, alive};
  auto connected = co_await connect_server(instance_, tls_);
  if (!*alive) co_return shutting_down();
  if (auto* failure = std::get_if<ServerConnectFailure>(&connected)) {
    notify_waiter();
    co_return std::move(*failure);
  }
  const bool pooling = instance_.config().pool_size > 0;
  const protocol::StartupMessage login_startup = pooling ? pooled_startup(startup) : startup;
  auto login = co_await login_to_server(std::move(std::get<ServerConnection>(connected)), login_startup, secret,
                                        Clock::now() + instance_.config().connect_timeout);
  if (!*alive) co_return shutting_down();
  if (auto* failure = std::get_if<LoginFailure>(&login)) {
    notify_waiter();
    co_return std::move(*failure);
  }
  Parameters reported = std::get<ServerSession>(login).parameters;
  PooledConnection connection{std::move(std::get<ServerSession>(login)),
                              pool_key(startup),
                              Clock::now(),
                              false,
                              std::move(reported),
                              std::make_shared<std::size_t>(0),
                              nullptr};
  connection.loan = lend();
  if (pooling) {
    if (auto failure = co_await apply_parameters(connection, startup)) {
      if (!*alive) co_return shutting_down();
      close_connection(connection.server);
      co_return std::move(*failure);  // the loan ends with `connection`
    }
    if (!*alive) co_return shutting_down();
  }
  co_return connection;
}

asio::awaitable<std::optional<LoginFailure>> ServerPool::apply_parameters(PooledConnection& connection,
                                                                          const protocol::StartupMessage& startup) {
  const std::string sql = set_statements(startup, connection.server.parameters);
  if (sql.empty()) co_return std::nullopt;
  protocol::ErrorResponse error;
  const std::string why = co_await run_simple(connection.server, sql, Clock::now() + instance_.config().connect_timeout,
                                              &error);
  if (why.empty()) co_return std::nullopt;
  // A value PostgreSQL refuses (an unknown encoding, a bad time zone) would have failed the
  // client's own login: tell it so, with PostgreSQL's words. No ErrorResponse: the
  // connection broke.
  const bool refused = !error.sqlstate.empty();
  if (!refused) {
    error = protocol::ErrorResponse{
        "FATAL", std::string(sqlstate::kCannotConnectNow), "could not prepare a pooled connection", why, {}};
  }
  error.severity = "FATAL";
  co_return LoginFailure{
      refused ? LoginFailure::Kind::kUnsupported : LoginFailure::Kind::kBroken, std::move(error), {}, {}};
}

PoolLoan::~PoolLoan() {
  if (*alive_) pool_->returned();
}

std::unique_ptr<PoolLoan> ServerPool::lend() {
  ++active_;
  publish();
  return std::make_unique<PoolLoan>(this, alive_);
}

void ServerPool::returned() {
  if (active_ > 0) --active_;
  publish();
  notify_waiter();
}

void ServerPool::release(PooledConnection connection, bool at_rest) {
  // Counted as resetting before the loan ends, so that a waiter woken by its end does not
  // see room that the reset still takes.
  const auto& config = instance_.config();
  const bool keep = at_rest && !shut_down_ && config.pool_size > 0 && instance_.state() == InstanceState::kAwake &&
                    Clock::now() - connection.born < config.server_lifetime;
  if (!keep) {
    close_connection(connection.server);
    connection.loan.reset();
    return;
  }
  ++resetting_;
  connection.loan.reset();
  asio::co_spawn(instance_.executor(), reset_and_keep(std::move(connection)), asio::detached);
}

asio::awaitable<void> ServerPool::reset_and_keep(PooledConnection connection) {
  const auto alive = alive_;
  const auto& config = instance_.config();
  const auto deadline = Clock::now() + config.connect_timeout;
  std::string why;
  // A cancel forwarded to this backend for the client that just left must land before the
  // next client's first query can: wait for PostgreSQL to have read it. (A cancel landing
  // during the reset fails the reset, and the connection is closed.)
  asio::steady_timer pause(instance_.executor());
  while (*connection.cancels_in_flight > 0 && Clock::now() < deadline) {
    pause.expires_after(std::chrono::milliseconds(2));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return;
  }
  if (*connection.cancels_in_flight > 0) why = "a cancel request to it did not finish";
  if (why.empty() && !config.server_reset_query.empty()) {
    why = co_await run_simple(connection.server, config.server_reset_query, deadline, nullptr);
  }
  if (!*alive) co_return;
  --resetting_;
  // The instance may have started suspending meanwhile, or the gateway stopping: nothing
  // joins the pool then.
  if (!why.empty() || shut_down_ || instance_.state() != InstanceState::kAwake) {
    if (!why.empty()) PGNAP_LOG(kDebug, context(), "closing a connection whose reset failed: " << why);
    close_connection(connection.server);
    notify_waiter();
    publish();
    co_return;
  }
  idle_.push_back(Idle{std::move(connection), Clock::now()});
  publish();
  notify_waiter();
  arm_idle_check();
}

void ServerPool::close_connection(ServerSession& server) {
  // Terminate, best effort and without waiting (five bytes fit in any socket buffer), then
  // close: PostgreSQL ends the backend cleanly.
  Stream& stream = server.connection.stream;
  const std::string terminate = protocol::encode_terminate();
  if (!stream.tls()) {
    (void)::send(stream.socket().native_handle(), terminate.data(), terminate.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  boost::system::error_code ignored;
  stream.socket().close(ignored);
}

void ServerPool::close_oldest_idle() {
  if (idle_.empty()) return;
  close_connection(idle_.front().connection.server);
  idle_.pop_front();
}

void ServerPool::close_all_idle(const char* why) {
  if (idle_.empty()) return;
  PGNAP_LOG(kDebug, context(), "closing " << idle_.size() << " idle connection(s): " << why);
  while (!idle_.empty()) close_oldest_idle();
  idle_check_.cancel();
  publish();
}

void ServerPool::notify_waiter() {
  if (!waiting_.empty()) waiting_.front()->cancel();
}

void ServerPool::shut_down() {
  shut_down_ = true;
  close_all_idle("the gateway is shutting down");
  idle_check_.cancel();
  for (asio::steady_timer* waiter : waiting_) waiter->cancel();
}

void ServerPool::arm_idle_check() {
  const auto& config = instance_.config();
  if (shut_down_ || idle_.size() <= config.min_pool_size) return;
  idle_check_.expires_at(idle_.front().since + config.server_idle_timeout);
  idle_check_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) on_idle_check();
  });
}

void ServerPool::on_idle_check() {
  const auto& config = instance_.config();
  const auto now = Clock::now();
  while (idle_.size() > config.min_pool_size && now - idle_.front().since >= config.server_idle_timeout) {
    close_oldest_idle();
  }
  publish();
  arm_idle_check();
}

void ServerPool::publish() {
  auto& metrics = instance_.metrics();
  metrics.server_connections_active = active_;
  metrics.server_connections_idle = idle_.size();
}

void ServerPool::on_state_change(const Instance&, InstanceState, InstanceState to, const std::string&) {
  // Sleep comes first: the pool empties the moment the instance starts suspending (and if
  // it went down by itself, its connections are dead anyway).
  if (to != InstanceState::kAwake) close_all_idle("the instance is no longer awake");
}

}  // namespace pgnap::daemon
