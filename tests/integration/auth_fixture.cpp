#include "tests/integration/auth_fixture.h"

#include <stdexcept>

namespace pgnap::it {

AuthCluster::AuthCluster(ClusterOptions options) : cluster_(options), files_(/*for_postgres=*/false) {
  cluster_.start();
  const auto created = psql(cluster_.conninfo_direct(),
                            "CREATE ROLE alice LOGIN PASSWORD 'alice-pw';"
                            "SET password_encryption = 'md5';"
                            "CREATE ROLE bob LOGIN PASSWORD 'bob-pw';"
                            "RESET password_encryption;"
                            "CREATE ROLE pgnap_auth LOGIN SUPERUSER PASSWORD 'auth-pw';"
                            "GRANT CREATE ON SCHEMA public TO alice;");
  if (created.exit_code != 0) throw std::runtime_error("creating the roles failed: " + created.describe());
  const auto alice = psql(cluster_.conninfo_direct(), "SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'");
  const auto bob = psql(cluster_.conninfo_direct(), "SELECT rolpassword FROM pg_authid WHERE rolname = 'bob'");
  alice_verifier_ = alice.out.substr(0, alice.out.find('\n'));
  bob_hash_ = bob.out.substr(0, bob.out.find('\n'));
  if (alice_verifier_.rfind("SCRAM-SHA-256$", 0) != 0 || bob_hash_.rfind("md5", 0) != 0) {
    throw std::runtime_error("unexpected stored passwords: " + alice_verifier_ + " / " + bob_hash_);
  }
  write_file(cluster_.data_dir() + "/pg_hba.conf",
             "local all postgres trust\n"
             "local all all md5\n"
             "host all all 127.0.0.1/32 md5\n");
  chown_to_postgres(cluster_.data_dir() + "/pg_hba.conf");
  cluster_.stop();
  own_starts_ = cluster_.ready_count();
}

void AuthCluster::admin(const std::string& sql) {
  const bool was_running = cluster_.is_running();
  if (!was_running) {
    cluster_.start();
    ++own_starts_;
  }
  const auto r = psql(cluster_.conninfo_direct(), sql);
  if (!was_running) cluster_.stop();
  if (r.exit_code != 0) throw std::runtime_error("admin SQL failed: " + r.describe());
}

std::string AuthCluster::write_auth_file(const std::string& lines) {
  const std::string path = files_.path() + "/users.txt";
  write_file(path, lines);
  return path;
}

GatewayOptions AuthCluster::gateway_options(const std::string& auth_toml) {
  auto options = GatewayOptions::for_cluster(cluster_);
  options.extra_toml = "[instances.main.auth]\nmode = \"gateway\"\n" + auth_toml + "\n";
  return options;
}

GatewayOptions AuthCluster::file_options(const std::string& more_auth_toml) {
  const std::string file = write_auth_file("\"alice\" \"" + alice_verifier_ + "\"\n\"bob\" \"" + bob_hash_ + "\"\n");
  return gateway_options("file = " + toml_quote(file) + "\n" + more_auth_toml);
}

void log_in_once_then_sleep(Gateway& gateway, const std::string& user, const std::string& password) {
  const std::size_t suspends = gateway.count_in_log("asleep (was awake");
  auto conn = connect_or_throw(password_conninfo(gateway, user, password), 60s);
  const auto r = query(conn.get(), "select 1");
  if (!r.ok) throw std::runtime_error("the warm-up query failed: " + r.error.message);
  conn.reset();
  if (!gateway.wait_for_log("asleep (was awake", 30s, suspends + 1)) {
    throw std::runtime_error("the instance did not go back to sleep after the warm-up:\n" + gateway.log());
  }
}

std::string password_conninfo(const Gateway& gateway, const std::string& user, const std::string& password,
                              const std::string& extra) {
  return "host=127.0.0.1 port=" + std::to_string(gateway.port()) + " user=" + user + " password=" + password +
         " dbname=postgres " + extra;
}

}  // namespace pgnap::it
