#include "daemon/instance_auth.h"

#include <fstream>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "auth/auth_file.h"
#include "auth/scram.h"
#include "daemon/auth_query.h"
#include "daemon/log.h"
#include "daemon/random.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

InstanceAuth::InstanceAuth(Instance& instance, accounting::Ledger& ledger, std::shared_ptr<ssl::context> instance_tls,
                           const std::vector<accounting::CachedCredential>& cached_credentials,
                           const std::vector<accounting::CachedParameters>& cached_parameters)
    : instance_(instance), ledger_(ledger), instance_tls_(std::move(instance_tls)), mock_secret_(random_bytes(32)) {
  for (const auto& c : cached_credentials) {
    if (c.instance != instance_.name()) continue;
    if (auto credential = auth::parse_credential(c.secret)) learned_[c.user] = std::move(*credential);
  }
  for (const auto& p : cached_parameters) {
    if (p.instance == instance_.name()) parameters_[{p.user, p.database}] = p.parameters;
  }
}

InstanceAuth::~InstanceAuth() {
  *alive_ = false;
  close_connection();
}

void InstanceAuth::configure(const config::AuthConfig& auth) {
  const bool to_memory = auth.cache == "memory" && config_.cache != "memory";
  config_ = auth;
  // Switched to memory only: what the ledger kept of this instance's verifiers goes.
  if (to_memory) ledger_.forget_credentials(instance_.name());
  if (config_.file.empty()) {
    file_.clear();
    return;
  }
  std::ifstream in(config_.file, std::ios::binary);
  if (!in) {
    PGNAP_LOG(kError, context(),
              "cannot read auth file " << config_.file << ": keeping the " << file_.size() << " user(s) read before");
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  const auth::AuthFile parsed = auth::parse_auth_file(text.str());
  for (const auto& error : parsed.errors) {
    PGNAP_LOG(kError, context(), config_.file << ":" << error.line << ": " << error.message << " (line skipped)");
  }
  std::map<std::string, auth::Credential> entries;
  for (const auto& entry : parsed.entries) entries[entry.user] = entry.credential;
  file_ = std::move(entries);
  PGNAP_LOG(kInfo, context(), "auth file " << config_.file << ": " << file_.size() << " user(s)");
}

void InstanceAuth::prepare(auth::Credential& credential) {
  if (credential.kind != auth::Credential::Kind::kPassword || credential.scram) return;
  credential.scram = auth::make_scram_verifier(credential.secret, random_bytes(16), auth::kDefaultIterations);
}

asio::awaitable<InstanceAuth::Lookup> InstanceAuth::lookup(const ClientIdentity& client) {
  const std::string& user = client.user;
  const std::string& database = client.database;
  if (auto it = file_.find(user); it != file_.end()) {
    prepare(it->second);
    co_return Lookup{it->second, std::nullopt};
  }
  if (config_.user.empty()) co_return Lookup{};  // no auth_query: the file is all there is

  if (instance_.state() == InstanceState::kAwake) {
    // Asked afresh while awake: a new role or a changed password works at once.
    if (auto answer = co_await query(user, database)) {
      learn(user, *answer);
      co_return Lookup{*answer, std::nullopt};
    }
  }
  if (auto it = learned_.find(user); it != learned_.end()) co_return Lookup{it->second, std::nullopt};
  if (instance_.state() == InstanceState::kAwake) co_return Lookup{};  // the query failed: nothing known

  // A user pgnap has never seen, while the instance sleeps: only PostgreSQL knows; wake it.
  auto admitted = co_await instance_.acquire(client, "login");
  if (auto* refusal = std::get_if<Refusal>(&admitted)) co_return Lookup{std::nullopt, std::move(*refusal)};
  const Lease lease = std::move(std::get<Lease>(admitted));
  const auto answer = co_await query(user, database);
  if (!answer) co_return Lookup{};
  learn(user, *answer);
  co_return Lookup{*answer, std::nullopt};
}

void InstanceAuth::learn(const std::string& user, const std::optional<auth::Credential>& credential) {
  if (!credential) {
    if (learned_.erase(user) > 0 && config_.cache == "ledger") ledger_.forget_credential(instance_.name(), user);
    return;
  }
  auto& known = learned_[user];
  if (known.secret == credential->secret) return;
  known = *credential;
  if (config_.cache == "ledger") {
    ledger_.record_credential(instance_.name(), user, credential->secret, accounting::unix_now());
  }
}

asio::awaitable<std::optional<std::optional<auth::Credential>>> InstanceAuth::query(const std::string& user,
                                                                                    const std::string& database) {
  const auto alive = alive_;
  // One lookup at a time on the connection. A lookup that ends wakes every waiter; each
  // looks again, so a waiter that gave up meanwhile (its client left) blocks nobody.
  while (querying_) {
    asio::steady_timer turn(co_await asio::this_coro::executor, Clock::time_point::max());
    const auto position = waiting_.insert(waiting_.end(), &turn);
    struct Leave {
      InstanceAuth* self;
      std::shared_ptr<bool> alive;
      std::list<asio::steady_timer*>::iterator position;
      ~Leave() {
        if (*alive) self->waiting_.erase(position);
      }
    } leave{this, alive, position};
    co_await turn.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return std::nullopt;
  }
  querying_ = true;
  struct Turn {
    InstanceAuth* self;
    std::shared_ptr<bool> alive;
    ~Turn() {
      if (!*alive) return;
      self->querying_ = false;
      for (asio::steady_timer* waiter : self->waiting_) waiter->cancel();
    }
  } turn{this, alive};

  if (!co_await ensure_connection(database) || !*alive) co_return std::nullopt;
  const auto deadline = Clock::now() + instance_.config().connect_timeout;
  const AuthQueryResult result = co_await run_auth_query(connection_->connection.stream, config_.query, user, deadline);
  if (!*alive) co_return std::nullopt;
  if (!result.ran) {
    PGNAP_LOG(kWarning, context(), "auth_query for user \"" << user << "\" failed: " << result.error);
    close_connection();
    co_return std::nullopt;
  }
  if (!result.secret) co_return std::optional<auth::Credential>();
  auto credential = auth::parse_credential(*result.secret);
  if (credential) prepare(*credential);
  co_return std::optional<std::optional<auth::Credential>>(credential);
}

asio::awaitable<bool> InstanceAuth::ensure_connection(const std::string& database) {
  if (connection_) co_return true;
  const auto alive = alive_;
  auto connected = co_await connect_server(instance_, instance_tls_);
  if (!*alive) co_return false;
  if (auto* failure = std::get_if<ServerConnectFailure>(&connected)) {
    PGNAP_LOG(kWarning, context(), "cannot connect for the auth_query: " << failure->why);
    co_return false;
  }
  protocol::StartupMessage startup;
  startup.parameters = {{"user", config_.user}, {"database", database}, {"application_name", "pgnap auth_query"}};
  LoginSecret secret;
  if (auto it = file_.find(config_.user); it != file_.end()) secret.credential = it->second;
  auto login = co_await login_to_server(std::move(std::get<ServerConnection>(connected)), startup, secret,
                                        Clock::now() + instance_.config().connect_timeout);
  if (!*alive) co_return false;
  if (auto* failure = std::get_if<LoginFailure>(&login)) {
    PGNAP_LOG(kWarning, context(),
              "auth_user \"" << config_.user << "\" cannot log in for the auth_query: " << failure->error.message
                             << (failure->error.detail.empty() ? "" : ": " + failure->error.detail));
    co_return false;
  }
  connection_ = std::move(std::get<ServerSession>(login));
  co_return true;
}

void InstanceAuth::close_connection() {
  if (!connection_) return;
  // Terminate, best effort and without waiting: five bytes always fit in the socket buffer.
  const std::string terminate = protocol::encode_terminate();
  Socket& socket = connection_->connection.stream.socket();
  if (!connection_->connection.stream.tls()) {
    (void)::send(socket.native_handle(), terminate.data(), terminate.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  boost::system::error_code ignored;
  socket.close(ignored);
  connection_.reset();
}

asio::awaitable<void> InstanceAuth::refresh_learned() {
  const auto alive = alive_;
  std::vector<std::string> users;
  for (const auto& [user, credential] : learned_) users.push_back(user);
  for (const auto& user : users) {
    if (!*alive || instance_.state() != InstanceState::kAwake) co_return;
    // Any database will do for pg_shadow: take the one of a remembered login of this user.
    std::string database = "postgres";
    for (const auto& [key, value] : parameters_) {
      if (key.first == user) database = key.second;
    }
    const auto answer = co_await query(user, database);
    if (!*alive) co_return;
    if (answer) learn(user, *answer);
  }
}

void InstanceAuth::on_state_change(const Instance&, InstanceState, InstanceState to, const std::string&) {
  if (to == InstanceState::kAwake && !config_.user.empty() && config_.mode == "gateway" && !learned_.empty()) {
    // Refreshed at each wake: a role dropped or a password changed while pgnap was not
    // looking is noticed before a client relies on the cache.
    asio::co_spawn(instance_.executor(), refresh_learned(), asio::detached);
  } else if (to != InstanceState::kAwake) {
    close_connection();  // never keeps a server connection across a suspend
  }
}

const Parameters* InstanceAuth::remembered(const std::string& user, const std::string& database) const {
  const auto it = parameters_.find({user, database});
  return it == parameters_.end() ? nullptr : &it->second;
}

void InstanceAuth::remember(const std::string& user, const std::string& database, const Parameters& parameters) {
  auto& known = parameters_[{user, database}];
  if (known == parameters) return;
  known = parameters;
  ledger_.record_session_parameters(instance_.name(), user, database, parameters, accounting::unix_now());
}

}  // namespace pgnap::daemon
