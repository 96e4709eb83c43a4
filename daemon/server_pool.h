// Session pooling for an instance in the authenticating mode (docs/pooling.md). A server
// connection logged in for a client is kept when the client's session ends with it at rest,
// reset with server_reset_query (DISCARD ALL by default, as PgBouncer), and given to the
// next client of the same user, database and startup options, which then pays neither
// PostgreSQL's backend fork nor its login. The six parameters libpq and drivers commonly
// send at startup are not part of the key: pooled connections log in without them and each
// client's values are applied with SET on attach.
//
// Sleep comes first: idle connections hold no lease, so they never keep the instance awake;
// the pool is emptied (Terminate, a clean close) as soon as the instance starts suspending;
// nothing survives a suspend, and a wake does not pre-fill the pool.
//
// Bounded by pool_size: connections in use, idle, being opened or reset. A client finding the
// pool full takes the place of an idle connection of another key, or waits up to
// pool_wait_timeout for one to come back (then 53300 naming the limit).
#pragma once

#include <array>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.h"
#include "daemon/instance.h"
#include "daemon/refusal.h"
#include "daemon/server_connection.h"
#include "daemon/server_login.h"
#include "daemon/tls.h"
#include "metrics/instance_metrics.h"

namespace pgnap::daemon {

// Startup parameters pgnap applies with SET when a client attaches to a pooled connection
// (and that a pooled connection therefore never logs in with).
inline constexpr std::array<std::string_view, 6> kSetParameters{"application_name", "client_encoding",
                                                                "DateStyle",        "TimeZone",
                                                                "IntervalStyle",    "standard_conforming_strings"};

// Which clients may share a connection: the same user, database and other startup options.
struct PoolKey {
  std::string user;
  std::string database;
  std::string options;  // the other parameters, sorted by name: "name=value\n..."
  auto operator<=>(const PoolKey&) const = default;
};
[[nodiscard]] PoolKey pool_key(const protocol::StartupMessage& startup);
// The client's startup without kSetParameters: what a pooled connection logs in with.
[[nodiscard]] protocol::StartupMessage pooled_startup(const protocol::StartupMessage& client);
// `SET name = 'value'; ...` for each of the client's kSetParameters whose value differs from
// `current` (what the connection reports now); "" when there is nothing to set.
[[nodiscard]] std::string set_statements(const protocol::StartupMessage& client, const Parameters& current);

class ServerPool;

// A connection's place among the pool's active ones while a session has it: given back
// when the connection is released, or when it is dropped on a path that never released it
// (a client gone while its attach finished). Never outlives the pool's bookkeeping.
class PoolLoan {
 public:
  PoolLoan(ServerPool* pool, std::shared_ptr<bool> alive) : pool_(pool), alive_(std::move(alive)) {}
  ~PoolLoan();
  PoolLoan(const PoolLoan&) = delete;
  PoolLoan& operator=(const PoolLoan&) = delete;

 private:
  ServerPool* pool_;
  std::shared_ptr<bool> alive_;
};

// A server connection lent to one session.
struct PooledConnection {
  ServerSession server;
  PoolKey key;
  Clock::time_point born{};
  bool reused = false;  // it served an earlier client (no login was needed)
  // What the server reported at its login, before any client's SET: the parameters a new
  // client of this user and database is greeted with.
  Parameters login_parameters;
  // Cancels being forwarded to this backend now (CancelTarget::in_flight): the connection
  // serves no other client until they are done.
  std::shared_ptr<std::size_t> cancels_in_flight = std::make_shared<std::size_t>(0);
  std::unique_ptr<PoolLoan> loan;  // set while lent to a session
};

class ServerPool final : public InstanceObserver {
 public:
  ServerPool(Instance& instance, metrics::GatewayMetrics& gateway_metrics, std::shared_ptr<ssl::context> tls);
  ~ServerPool() override;
  ServerPool(const ServerPool&) = delete;
  ServerPool& operator=(const ServerPool&) = delete;

  using Checkout = std::variant<PooledConnection, Refusal, LoginFailure, ServerConnectFailure>;
  // A connection for the client of `startup`, logged in with `secret` if it has to be new,
  // with the client's startup parameters applied. The caller holds a lease on the instance,
  // and decides what a connect failure means (the instance may be down).
  [[nodiscard]] asio::awaitable<Checkout> acquire(const protocol::StartupMessage& startup, const LoginSecret& secret);
  // The session is done with `connection`. At rest (idle, nothing in flight, its client
  // gone or detached), it is reset and kept; otherwise closed.
  void release(PooledConnection connection, bool at_rest);

  // The gateway is stopping (its sessions have drained): every idle connection is closed,
  // and from now on a released one is closed rather than kept. Nothing of the pool is left to
  // keep the event loop running.
  void shut_down();

  [[nodiscard]] std::size_t active() const { return active_; }
  [[nodiscard]] std::size_t idle() const { return idle_.size(); }

  void on_state_change(const Instance& instance, InstanceState from, InstanceState to,
                       const std::string& reason) override;
  void on_wake(const Instance&, const Wake&) override {}

 private:
  friend class PoolLoan;
  [[nodiscard]] std::unique_ptr<PoolLoan> lend();
  void returned();  // a loan ended
  struct Idle {
    PooledConnection connection;
    Clock::time_point since;
  };
  [[nodiscard]] std::size_t total() const { return active_ + idle_.size() + opening_ + resetting_; }
  [[nodiscard]] std::optional<PooledConnection> take_idle(const PoolKey& key);
  asio::awaitable<Checkout> open(const protocol::StartupMessage& startup, const LoginSecret& secret);
  asio::awaitable<std::optional<LoginFailure>> apply_parameters(PooledConnection& connection,
                                                                const protocol::StartupMessage& startup);
  asio::awaitable<void> reset_and_keep(PooledConnection connection);
  void close_connection(ServerSession& server);
  void close_oldest_idle();
  void close_all_idle(const char* why);
  void notify_waiter();
  void arm_idle_check();
  void on_idle_check();
  void publish();  // the gauges of server connections by state
  [[nodiscard]] std::string context() const { return "instance=" + instance_.name() + " pool"; }

  Instance& instance_;
  metrics::GatewayMetrics& gateway_metrics_;
  std::shared_ptr<ssl::context> tls_;
  std::size_t active_ = 0;                  // lent to sessions
  std::size_t opening_ = 0;                 // connecting and logging in
  std::size_t resetting_ = 0;               // running server_reset_query
  std::list<Idle> idle_;                    // most recently returned last
  std::list<asio::steady_timer*> waiting_;  // clients waiting for room
  asio::steady_timer idle_check_;
  bool shut_down_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pgnap::daemon
