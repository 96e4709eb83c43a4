// A cluster whose roles log in with passwords, for the authenticating mode's tests:
//
//   alice       SCRAM-SHA-256 (password_encryption's default)
//   bob         an md5 hash
//   pgnap_auth  a superuser with a SCRAM verifier, for the auth_query (pg_shadow needs it)
//   postgres    trust over the Unix socket (the harness's own administration)
//
// pg_hba says "md5" for everyone else, which PostgreSQL checks with SCRAM when the stored
// password is a SCRAM verifier (as pgnap does). The cluster is left stopped.
#pragma once

#include <string>

#include "tests/integration/harness.h"

namespace pgnap::it {

inline constexpr const char* kAlicePassword = "alice-pw";
inline constexpr const char* kBobPassword = "bob-pw";
inline constexpr const char* kAuthUserPassword = "auth-pw";

class AuthCluster {
 public:
  explicit AuthCluster(ClusterOptions options = {});

  [[nodiscard]] Cluster& cluster() { return cluster_; }
  // Real starts of the server since the set-up, not counting the admin() ones: pgnap's.
  [[nodiscard]] int starts() const { return cluster_.ready_count() - own_starts_; }
  [[nodiscard]] const std::string& alice_verifier() const { return alice_verifier_; }
  [[nodiscard]] const std::string& bob_hash() const { return bob_hash_; }
  // Runs SQL as postgres on the cluster directly (starts it for that, stops it after, when
  // it was stopped): a change made behind pgnap's back.
  void admin(const std::string& sql);

  // An auth_file in PgBouncer's format with `lines` (each already `"user" "secret"`), in a
  // directory of its own; returns its path.
  [[nodiscard]] std::string write_auth_file(const std::string& lines);

  // GatewayOptions for the cluster in the authenticating mode: `auth_toml` is the body of
  // [instances.main.auth] after `mode = "gateway"`.
  [[nodiscard]] GatewayOptions gateway_options(const std::string& auth_toml);
  // gateway_options() with alice's verifier and bob's md5 hash (as PostgreSQL holds them) in
  // an auth_file, and `more_auth_toml` after it: their logins need no auth_query, so nothing
  // but a query wakes the instance.
  [[nodiscard]] GatewayOptions file_options(const std::string& more_auth_toml = {});

 private:
  Cluster cluster_;
  TempDir files_;
  std::string alice_verifier_;
  std::string bob_hash_;
  int own_starts_ = 0;  // starts by the set-up and admin()
};

// "host=127.0.0.1 port=P user=USER password=PW dbname=postgres" for a gateway.
[[nodiscard]] std::string password_conninfo(const Gateway& gateway, const std::string& user,
                                            const std::string& password, const std::string& extra = {});

// One login and query as `user` through `gateway`, so that pgnap remembers the session
// parameters of (user, postgres), then the suspend that follows (idle_timeout). Throws when
// either does not happen.
void log_in_once_then_sleep(Gateway& gateway, const std::string& user, const std::string& password);

}  // namespace pgnap::it
