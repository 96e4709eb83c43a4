// What an instance in the authenticating mode knows about its users, so that clients
// authenticate while the database sleeps:
//
// - verifiers: from the auth_file (the operator's, read at start and on SIGHUP), or learned
//   by the auth_query as the auth_user while the instance is awake, kept in the ledger (or in
//   memory only: auth.cache) and refreshed at every wake;
// - the ParameterStatus values of the last real login per user and database, which the
//   instant greeting repeats.
//
// While awake, the auth_query runs on one connection of the auth_user's, one lookup at a
// time, so a changed password or a new role works at once; the connection closes before
// every suspend. A user the instance does not know while asleep wakes it to be looked up.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "accounting/ledger.h"
#include "auth/credential.h"
#include "config/config.h"
#include "daemon/instance.h"
#include "daemon/server_login.h"
#include "daemon/tls.h"

namespace pgnap::daemon {

class InstanceAuth final : public InstanceObserver {
 public:
  // `ledger`: where learned verifiers (with cache = "ledger") and parameters are kept.
  // `cached_*`: what the ledger held at start-up, this instance's rows among them.
  InstanceAuth(Instance& instance, accounting::Ledger& ledger, std::shared_ptr<ssl::context> instance_tls,
               const std::vector<accounting::CachedCredential>& cached_credentials,
               const std::vector<accounting::CachedParameters>& cached_parameters);
  ~InstanceAuth() override;
  InstanceAuth(const InstanceAuth&) = delete;
  InstanceAuth& operator=(const InstanceAuth&) = delete;

  // Start-up and SIGHUP: takes the instance's [auth] settings and (re)reads the auth_file.
  // Problems are logged; a file that cannot be read keeps the entries read before.
  void configure(const config::AuthConfig& auth);
  [[nodiscard]] const config::AuthConfig& config() const { return config_; }

  struct Lookup {
    std::optional<auth::Credential> credential;  // nullopt: no such user, as far as pgnap can tell
    std::optional<Refusal> refusal;              // the wake needed to look the user up failed
  };
  // The credential of `user`: the auth_file's; else the auth_query's (asked now while awake,
  // the cache while asleep, a wake for a user the cache does not know). The client's database
  // is where the auth_user connects; the client is who the wake is for (and the wake rules'
  // subject). `client` must outlive the call.
  [[nodiscard]] asio::awaitable<Lookup> lookup(const ClientIdentity& client);

  // The ParameterStatus values of the last real login of `user` to `database`.
  [[nodiscard]] const Parameters* remembered(const std::string& user, const std::string& database) const;
  void remember(const std::string& user, const std::string& database, const Parameters& parameters);

  // Keeps an unknown user's mock SCRAM salt the same from one attempt to the next.
  [[nodiscard]] const std::string& mock_secret() const { return mock_secret_; }

  void on_state_change(const Instance& instance, InstanceState from, InstanceState to,
                       const std::string& reason) override;
  void on_wake(const Instance&, const Wake&) override {}

 private:
  // The auth_query for `user` on the auth_user's connection (made if need be). Outer nullopt:
  // it could not run; inner: the user's credential, or nullopt when PostgreSQL has none.
  asio::awaitable<std::optional<std::optional<auth::Credential>>> query(const std::string& user,
                                                                        const std::string& database);
  asio::awaitable<bool> ensure_connection(const std::string& database);
  void learn(const std::string& user, const std::optional<auth::Credential>& credential);
  asio::awaitable<void> refresh_learned();
  void close_connection();
  // A plaintext password gets a SCRAM verifier of its own (random salt), for SCRAM with clients.
  static void prepare(auth::Credential& credential);
  [[nodiscard]] std::string context() const { return "instance=" + instance_.name() + " auth"; }

  Instance& instance_;
  accounting::Ledger& ledger_;
  std::shared_ptr<ssl::context> instance_tls_;
  config::AuthConfig config_;
  std::string mock_secret_;
  std::map<std::string, auth::Credential> file_;     // from the auth_file
  std::map<std::string, auth::Credential> learned_;  // from the auth_query
  std::map<std::pair<std::string, std::string>, Parameters> parameters_;
  std::optional<ServerSession> connection_;  // the auth_user's, while awake
  bool querying_ = false;                    // one lookup at a time on the connection
  std::list<asio::steady_timer*> waiting_;   // lookups waiting for their turn
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pgnap::daemon
