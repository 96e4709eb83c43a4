// SIGHUP: pgnap re-reads its configuration and applies what can change live (limits, an
// instance added), keeps the running configuration when the new file is broken (logging every
// error), and `pgnap check` tells which edits need a restart.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <regex>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

// Replaces the first `key = ...` line in the config file.
void set_key(const Gateway& gateway, const std::string& key, const std::string& value) {
  std::string text = read_file(gateway.config_path());
  const std::regex line("(^|\n)" + key + " = [^\n]*");
  ASSERT_TRUE(std::regex_search(text, line)) << key << " not in " << text;
  text = std::regex_replace(text, line, "$1" + key + " = " + value, std::regex_constants::format_first_only);
  write_file(gateway.config_path(), text);
}

void sighup(const Gateway& gateway) { ASSERT_EQ(::kill(gateway.pid(), SIGHUP), 0); }

TEST(ReloadTest, SighupRaisesMaxClientsAndAddsAnInstanceWithoutDroppingSessions) {
  Cluster cluster;
  Cluster second_cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.gateway_extra = "max_clients = 1\n";
  options.databases = R"(["postgres"])";
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &cluster);

  auto held = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(held.get(), "select 1").ok);
  const auto refused = connect(gateway.conninfo(), 30s);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.server.sqlstate, "53300");

  // max_clients 1 -> 3, and a second instance for database "template1".
  set_key(gateway, "max_clients", "3");
  auto added = GatewayOptions::for_cluster(second_cluster);
  append_file(gateway.config_path(),
              "\n[instances.second]\ndatabases = [\"template1\"]\nbackend = \"pg_ctl\"\naddress = " +
                  toml_quote(added.address) + "\nidle_timeout = \"1m\"\n[instances.second.pg_ctl]\nbin_dir = " +
                  toml_quote(added.bin_dir) + "\ndata_dir = " + toml_quote(added.data_dir) +
                  "\nos_user = " + toml_quote(added.os_user) + "\nlog_file = " + toml_quote(added.log_file) + "\n");
  sighup(gateway);
  ASSERT_TRUE(gateway.wait_for_log("configuration reloaded", 10s)) << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("max_clients"));
  EXPECT_THAT(gateway.log(), HasSubstr("added by a reload"));

  // The held session is untouched; a second client now gets in; the new instance serves.
  EXPECT_TRUE(query(held.get(), "select 1").ok) << "the reload dropped a session";
  auto second = connect(gateway.conninfo(), 60s);
  EXPECT_TRUE(second.ok()) << second.error;
  second.conn.reset();
  const auto r = psql(gateway.conninfo("template1"), "select current_setting('data_directory')");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, second_cluster.data_dir() + "\n") << "template1 was not routed to the added instance";

  const auto m = http_get(gateway.metrics_port(), "/metrics");
  ASSERT_EQ(m.status, 200) << m.error;
  EXPECT_EQ(metric_value(m.body, R"(pgnap_config_reloads_total{outcome="ok"})"), 1) << m.body;
  EXPECT_EQ(metric_value(m.body, R"(pgnap_limit_hits_total{limit="max_clients"})"), 1) << m.body;
}

// Listeners and instances follow the file: a new Unix-socket listener opens and the old TCP
// one closes, a removed instance takes no new clients while its session goes on, and its
// database is then routed as the new file says.
TEST(ReloadTest, SighupMovesTheListenerAndRemovesAnInstanceWhileItsSessionGoesOn) {
  Cluster cluster;
  Cluster second_cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  auto added = GatewayOptions::for_cluster(second_cluster);
  options.extra_toml = "\n[instances.second]\ndatabases = [\"template1\"]\nbackend = \"pg_ctl\"\naddress = " +
                       toml_quote(added.address) +
                       "\nidle_timeout = \"1m\"\n[instances.second.pg_ctl]\nbin_dir = " + toml_quote(added.bin_dir) +
                       "\ndata_dir = " + toml_quote(added.data_dir) + "\nos_user = " + toml_quote(added.os_user) +
                       "\nlog_file = " + toml_quote(added.log_file) + "\n";
  Gateway gateway(options, &cluster);
  auto held = connect_or_throw(gateway.conninfo("template1"), 60s);
  const auto on_second = query(held.get(), "select current_setting('data_directory')");
  ASSERT_TRUE(on_second.ok);

  TempDir sockets(false);
  const std::string file = read_file(gateway.config_path());
  const auto second_at = file.find("\n[instances.second]");
  ASSERT_NE(second_at, std::string::npos);
  write_file(gateway.config_path(), file.substr(0, second_at) + "\n");
  set_key(gateway, "listen", "[" + toml_quote(sockets.path() + "/.s.PGSQL.6432") + "]");
  sighup(gateway);
  ASSERT_TRUE(gateway.wait_for_log("configuration reloaded", 10s)) << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("stopped listening on 127.0.0.1:" + std::to_string(gateway.port())));
  EXPECT_THAT(gateway.log(), HasSubstr("instance=second: removed from the configuration"));

  // The session on the removed instance, over the closed listener, goes on.
  const auto still = query(held.get(), "select current_setting('data_directory')");
  ASSERT_TRUE(still.ok) << "the reload dropped a session";
  EXPECT_EQ(still.value, second_cluster.data_dir());
  EXPECT_EQ(on_second.value, second_cluster.data_dir());
  // The old listener is closed; the new one serves, and template1 now goes to "*" (main).
  EXPECT_FALSE(connect(gateway.conninfo(), 10s).ok()) << "the removed TCP listener still accepts";
  const auto r = psql("host=" + sockets.path() + " port=6432 user=postgres dbname=template1",
                      "select current_setting('data_directory')");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, cluster.data_dir() + "\n") << "template1 still routed to the removed instance";
}

TEST(ReloadTest, SighupWithABrokenFileKeepsTheRunningConfigurationAndLogsEveryError) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.gateway_extra = "max_clients = 5\n";
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &cluster);
  const std::string good = read_file(gateway.config_path());

  // Two errors in one file: both are logged, nothing is applied.
  set_key(gateway, "max_clients", "-1");
  set_key(gateway, "idle_timeout", "\"soon\"");
  sighup(gateway);
  ASSERT_TRUE(gateway.wait_for_log("keeping the running configuration", 10s)) << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("max_clients"));
  EXPECT_THAT(gateway.log(), HasSubstr("idle_timeout"));
  EXPECT_THAT(gateway.log(), HasSubstr("2 error(s)"));
  EXPECT_TRUE(gateway.running());

  const auto r = psql(gateway.conninfo(), "select 'old config serves'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "old config serves\n");

  // Not TOML at all: the same.
  write_file(gateway.config_path(), "[gateway\nlisten = \n");
  sighup(gateway);
  ASSERT_TRUE(gateway.wait_for_log("keeping the running configuration", 10s, 2)) << gateway.log();
  EXPECT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0);

  const auto m = http_get(gateway.metrics_port(), "/metrics");
  ASSERT_EQ(m.status, 200) << m.error;
  EXPECT_EQ(metric_value(m.body, R"(pgnap_config_reloads_total{outcome="failed"})"), 2) << m.body;
  EXPECT_EQ(metric_value(m.body, R"(pgnap_config_reloads_total{outcome="ok"})"), 0) << m.body;

  // Fixed again: the next SIGHUP applies it.
  write_file(gateway.config_path(), good);
  sighup(gateway);
  ASSERT_TRUE(gateway.wait_for_log("configuration reloaded", 10s)) << gateway.log();
}

TEST(ReloadTest, CheckTellsWhichChangesNeedARestart) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  Gateway gateway(options, &cluster);

  // Edited but not reloaded: one change a reload applies, one that needs a restart.
  set_key(gateway, "idle_timeout", "\"7m\"");
  std::string text = read_file(gateway.config_path());
  const auto at = text.find("[gateway]\n");
  ASSERT_NE(at, std::string::npos);
  text.insert(at + 10, "max_message_size = \"64MB\"\n");
  write_file(gateway.config_path(), text);
  set_key(gateway, "address", "\"127.0.0.1:5999\"");

  const auto r = run_command({pgnap_binary(), "check", "-c", gateway.config_path()}, 30s);
  EXPECT_THAT(r.out, HasSubstr("Compared with the configuration the gateway runs"));
  EXPECT_THAT(r.out, testing::ContainsRegex("idle_timeout[^\n]*applied by a reload"));
  EXPECT_THAT(r.out, testing::ContainsRegex("max_message_size[^\n]*applied by a reload"));
  EXPECT_THAT(r.out, testing::ContainsRegex("instances.main.address[^\n]*needs a restart"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

}  // namespace
}  // namespace pgnap::it
