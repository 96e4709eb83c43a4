// diff_config and merge_live (of a whole configuration and of one instance): what a SIGHUP
// applies to the running gateway and what waits for a restart, key by key, as the schema
// tables declare it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace test_util;

// Printable, so that ElementsAre shows which change it did not expect.
std::string show(const ConfigChange& c) { return c.key + " " + c.what + (c.needs_restart ? " (restart)" : " (live)"); }
std::vector<std::string> changes(const Config& running, const Config& next) {
  std::vector<std::string> out;
  for (const ConfigChange& c : diff_config(running, next)) out.push_back(show(c));
  return out;
}

// Two instances with every table a reload can touch; the tests edit one line of it.
constexpr std::string_view kRunning = R"(
[gateway]
listen = "127.0.0.1:6432"
max_clients = 100
login_timeout = "15s"
ledger = "/var/lib/pgnap/ledger.db"
ledger_heartbeat = "30s"
shutdown_timeout = "30s"
log_level = "info"
max_message_size = "64MB"
tcp_keepalive_idle = "60s"
tcp_keepalive_interval = "10s"
tcp_keepalive_count = 6
queue_limit_total = "64MB"

[gateway.tls]
mode = "allow"
cert = "/etc/pgnap/server.crt"
key = "/etc/pgnap/server.key"

[metrics]
listen = "127.0.0.1:9932"

[instances.main]
databases = ["*"]
backend = "pg_ctl"
address = "127.0.0.1:5432"
idle_timeout = "10m"
min_awake = "30s"
wake_timeout = "60s"
max_waiting = 200
connect_timeout = "10s"
suspend_on_exit = false
tls = "disable"

[instances.main.pg_ctl]
data_dir = "/srv/pg/main"

[instances.main.accounting]
vcpus = 2

[instances.main.auth]
mode = "gateway"
user = "pgnap_auth"
query = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"
methods = ["scram-sha-256", "md5"]
cache = "ledger"
queue_limit = "1MB"

[instances.blog]
databases = ["blog"]
backend = "exec"
address = "10.0.0.7:5432"
wake_timeout = "60s"

[instances.blog.exec]
start = ["docker", "start", "blog"]
stop = ["docker", "stop", "blog"]
start_timeout = "60s"
)";

// Replaces the first occurrence of `from` in `text` by `to`.
void replace_in(std::string& text, std::string_view from, std::string_view to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
}

// kRunning with the first occurrence of `from` replaced by `to`.
std::string edited(std::string_view from, std::string_view to) {
  std::string text = doc(kRunning);
  replace_in(text, from, to);
  return text;
}

class ConfigReloadTest : public ::testing::Test {
 protected:
  Config running_ = parse(kRunning);
  // The change that editing `from` into `to` makes, with its restart flag.
  std::vector<std::string> change_of(std::string_view from, std::string_view to) {
    return changes(running_, parse(edited(from, to)));
  }
};

// ---- diff_config ----------------------------------------------------------------------------

TEST_F(ConfigReloadTest, SameFileHasNoChanges) {
  EXPECT_THAT(diff_config(running_, parse(kRunning)), IsEmpty());
  // Comments, order and spelling of defaults do not count; only values do.
  EXPECT_THAT(changes(running_, parse(edited("max_clients = 100", "# a comment\nmax_clients = 100"))), IsEmpty());
  EXPECT_THAT(changes(running_, parse(edited("max_message_size = \"64MB\"", "max_message_size = \"65536kB\""))),
              IsEmpty());
  EXPECT_THAT(changes(running_, parse(edited("tcp_keepalive_idle = \"60s\"", "tcp_keepalive_idle = \"1m\""))),
              IsEmpty());
}

TEST_F(ConfigReloadTest, GatewayLimitsTimeoutsAndLoggingApplyLive) {
  EXPECT_THAT(change_of("max_clients = 100", "max_clients = 50"), ElementsAre("gateway.max_clients changed (live)"));
  EXPECT_THAT(change_of("login_timeout = \"15s\"", "login_timeout = \"5s\""),
              ElementsAre("gateway.login_timeout changed (live)"));
  EXPECT_THAT(change_of("ledger_heartbeat = \"30s\"", "ledger_heartbeat = \"10s\""),
              ElementsAre("gateway.ledger_heartbeat changed (live)"));
  EXPECT_THAT(change_of("shutdown_timeout = \"30s\"", "shutdown_timeout = \"0s\""),
              ElementsAre("gateway.shutdown_timeout changed (live)"));
  EXPECT_THAT(change_of("log_level = \"info\"", "log_level = \"debug\""),
              ElementsAre("gateway.log_level changed (live)"));
  EXPECT_THAT(change_of("max_message_size = \"64MB\"", "max_message_size = \"1GB\""),
              ElementsAre("gateway.max_message_size changed (live)"));
  EXPECT_THAT(change_of("tcp_keepalive_idle = \"60s\"", "tcp_keepalive_idle = \"5m\""),
              ElementsAre("gateway.tcp_keepalive_idle changed (live)"));
  EXPECT_THAT(change_of("tcp_keepalive_interval = \"10s\"", "tcp_keepalive_interval = \"5s\""),
              ElementsAre("gateway.tcp_keepalive_interval changed (live)"));
  EXPECT_THAT(change_of("tcp_keepalive_count = 6", "tcp_keepalive_count = 3"),
              ElementsAre("gateway.tcp_keepalive_count changed (live)"));
  EXPECT_THAT(change_of("queue_limit_total = \"64MB\"", "queue_limit_total = \"1GB\""),
              ElementsAre("gateway.queue_limit_total changed (live)"));
}

TEST_F(ConfigReloadTest, ListenersMetricsAndTlsApplyLive) {
  EXPECT_THAT(change_of("listen = \"127.0.0.1:6432\"", "listen = [\"127.0.0.1:6432\", \"[::1]:6432\"]"),
              ElementsAre("gateway.listen changed (live)"));
  EXPECT_THAT(change_of("listen = \"127.0.0.1:9932\"", "listen = \"\""), ElementsAre("metrics.listen changed (live)"));
  // [gateway.tls] is one key: any of its values changes it.
  EXPECT_THAT(change_of("mode = \"allow\"", "mode = \"require\""), ElementsAre("gateway.tls changed (live)"));
  EXPECT_THAT(change_of("mode = \"allow\"", "mode = \"disable\""), ElementsAre("gateway.tls changed (live)"));
  EXPECT_THAT(change_of("cert = \"/etc/pgnap/server.crt\"", "cert = \"/etc/pgnap/renewed.crt\""),
              ElementsAre("gateway.tls changed (live)"));
  EXPECT_THAT(change_of("key = \"/etc/pgnap/server.key\"",
                        "key = \"/etc/pgnap/server.key\"\nca = \"/etc/pgnap/ca.pem\""),
              ElementsAre("gateway.tls changed (live)"));
}

TEST_F(ConfigReloadTest, TheLedgerPathNeedsARestart) {
  EXPECT_THAT(change_of("ledger = \"/var/lib/pgnap/ledger.db\"", "ledger = \"/srv/ledger.db\""),
              ElementsAre("gateway.ledger changed (restart)"));
}

TEST_F(ConfigReloadTest, AnInstancesTimeoutsRoutingTlsAndAccountingApplyLive) {
  EXPECT_THAT(change_of("idle_timeout = \"10m\"", "idle_timeout = \"1m\""),
              ElementsAre("instances.main.idle_timeout changed (live)"));
  EXPECT_THAT(change_of("min_awake = \"30s\"", "min_awake = \"0s\""),
              ElementsAre("instances.main.min_awake changed (live)"));
  EXPECT_THAT(change_of("max_waiting = 200", "max_waiting = 10"),
              ElementsAre("instances.main.max_waiting changed (live)"));
  EXPECT_THAT(change_of("connect_timeout = \"10s\"", "connect_timeout = \"2s\""),
              ElementsAre("instances.main.connect_timeout changed (live)"));
  EXPECT_THAT(change_of("suspend_on_exit = false", "suspend_on_exit = true"),
              ElementsAre("instances.main.suspend_on_exit changed (live)"));
  EXPECT_THAT(change_of("tls = \"disable\"", "tls = \"require\""), ElementsAre("instances.main.tls changed (live)"));
  EXPECT_THAT(change_of("vcpus = 2", "vcpus = 4"), ElementsAre("instances.main.accounting changed (live)"));
  EXPECT_THAT(change_of("databases = [\"*\"]", "databases = [\"*\", \"shop\"]"),
              ElementsAre("instances.main.databases changed (live)"));
  // wake_timeout: see ConfigReloadDerivedTest below.
}

TEST_F(ConfigReloadTest, AnInstancesBackendAndAddressNeedARestart) {
  EXPECT_THAT(change_of("address = \"127.0.0.1:5432\"", "address = \"127.0.0.1:5433\""),
              ElementsAre("instances.main.address changed (restart)"));
  EXPECT_THAT(change_of("data_dir = \"/srv/pg/main\"", "data_dir = \"/srv/pg/main2\""),
              ElementsAre("instances.main.pg_ctl changed (restart)"));
  EXPECT_THAT(change_of("stop = [\"docker\", \"stop\", \"blog\"]", "stop = [\"docker\", \"kill\", \"blog\"]"),
              ElementsAre("instances.blog.exec changed (restart)"));
  // A new backend: see MergeKeepsABackendChangeWhole.
}

// [instances.NAME.auth] is compared key by key: each key is live but cache, whose verifiers
// stay where they are until a restart.
TEST_F(ConfigReloadTest, AuthKeysApplyLiveButTheCacheNeedsARestart) {
  EXPECT_THAT(change_of("mode = \"gateway\"", "mode = \"passthrough\""),
              ElementsAre("instances.main.auth.mode changed (live)"));
  EXPECT_THAT(change_of("user = \"pgnap_auth\"", "user = \"pgnap_lookup\""),
              ElementsAre("instances.main.auth.user changed (live)"));
  EXPECT_THAT(change_of("WHERE usename = $1\"", "WHERE usename = $1 AND NOT rolcanlogin\""),
              ElementsAre("instances.main.auth.query changed (live)"));
  EXPECT_THAT(change_of("methods = [\"scram-sha-256\", \"md5\"]", "methods = [\"scram-sha-256\"]"),
              ElementsAre("instances.main.auth.methods changed (live)"));
  EXPECT_THAT(change_of("queue_limit = \"1MB\"", "queue_limit = \"2MB\""),
              ElementsAre("instances.main.auth.queue_limit changed (live)"));
  EXPECT_THAT(change_of("cache = \"ledger\"", "cache = \"memory\""),
              ElementsAre("instances.main.auth.cache changed (restart)"));
  // Several keys of the table: each is named, in the table's row order.
  std::string text = edited("cache = \"ledger\"", "cache = \"memory\"");
  replace_in(text, "queue_limit = \"1MB\"", "queue_limit = \"8MB\"");
  replace_in(text, "mode = \"gateway\"", "mode = \"passthrough\"");
  EXPECT_THAT(changes(running_, parse(text)),
              ElementsAre("instances.main.auth.mode changed (live)", "instances.main.auth.cache changed (restart)",
                          "instances.main.auth.queue_limit changed (live)"));
}

TEST_F(ConfigReloadTest, MergeTakesTheLiveAuthKeysAndKeepsTheRunningCache) {
  std::string text = edited("cache = \"ledger\"", "cache = \"memory\"");
  replace_in(text, "user = \"pgnap_auth\"", "user = \"pgnap_lookup\"");
  replace_in(text, "methods = [\"scram-sha-256\", \"md5\"]", "methods = [\"scram-sha-256\"]");
  replace_in(text, "queue_limit = \"1MB\"", "queue_limit = \"64kB\"");
  const Config next = parse(text);
  const Config merged = merge_live(running_, next);
  const AuthConfig& auth = merged.instances.at(0).auth;
  EXPECT_EQ(auth.cache, "ledger");
  EXPECT_EQ(auth.user, "pgnap_lookup");
  EXPECT_THAT(auth.methods, ElementsAre("scram-sha-256"));
  EXPECT_EQ(auth.queue_limit, 64u * 1024);
  EXPECT_EQ(auth.mode, "gateway");
  // One instance merged alone gives the same.
  EXPECT_EQ(merge_live(running_.instances[0], next.instances[0]), merged.instances[0]);
  // What stays different from the file is the cache alone, and it needs a restart.
  EXPECT_THAT(changes(merged, next), ElementsAre("instances.main.auth.cache changed (restart)"));
  // An instance added with its own auth takes it whole, cache included.
  Config added = next;
  added.instances[1].name = "shop";
  added.instances[1].auth = next.instances[0].auth;
  EXPECT_EQ(merge_live(running_, added).instances[1].auth.cache, "memory");
}

TEST_F(ConfigReloadTest, AddedAndRemovedInstancesApplyLive) {
  Config next = running_;
  next.instances.erase(next.instances.begin() + 1);  // blog
  InstanceConfig shop = running_.instances[1];
  shop.name = "shop";
  next.instances.push_back(shop);
  EXPECT_THAT(changes(running_, next), ElementsAre("instances.blog removed (live)", "instances.shop added (live)"));
}

TEST_F(ConfigReloadTest, ChangesComeInSchemaOrderGatewayMetricsInstances) {
  std::string text = edited("log_level = \"info\"", "log_level = \"error\"");
  replace_in(text, "max_clients = 100", "max_clients = 99");
  replace_in(text, "listen = \"127.0.0.1:9932\"", "listen = \"\"");
  replace_in(text, "idle_timeout = \"10m\"", "idle_timeout = \"9m\"");
  replace_in(text, "ledger = \"/var/lib/pgnap/ledger.db\"", "ledger = \"/srv/l.db\"");
  EXPECT_THAT(changes(running_, parse(text)),
              ElementsAre("gateway.max_clients changed (live)", "gateway.ledger changed (restart)",
                          "gateway.log_level changed (live)", "metrics.listen changed (live)",
                          "instances.main.idle_timeout changed (live)"));
}

TEST_F(ConfigReloadTest, InstanceNamesThatAreNotBareKeysAreQuoted) {
  Config next = running_;
  next.instances[1].name = "my blog";
  EXPECT_THAT(changes(running_, next),
              ElementsAre("instances.blog removed (live)", "instances.\"my blog\" added (live)"));
}

// ---- merge_live ------------------------------------------------------------------------------

TEST_F(ConfigReloadTest, MergeTakesLiveKeysFromTheNewFile) {
  std::string text = edited("max_clients = 100", "max_clients = 7");
  replace_in(text, "log_level = \"info\"", "log_level = \"debug\"");
  replace_in(text, "mode = \"allow\"", "mode = \"require\"");
  replace_in(text, "idle_timeout = \"10m\"", "idle_timeout = \"3m\"");
  replace_in(text, "suspend_on_exit = false", "suspend_on_exit = true");
  replace_in(text, "tcp_keepalive_count = 6", "tcp_keepalive_count = 9");
  const Config next = parse(text);
  const Config merged = merge_live(running_, next);

  EXPECT_EQ(merged.gateway.max_clients, 7u);
  EXPECT_EQ(merged.gateway.log_level, "debug");
  EXPECT_EQ(merged.gateway.tls.mode, "require");
  EXPECT_EQ(merged.gateway.tcp_keepalive_count, 9u);
  ASSERT_EQ(merged.instances.size(), 2u);
  EXPECT_EQ(merged.instances[0].idle_timeout, minutes(3));
  EXPECT_TRUE(merged.instances[0].suspend_on_exit);
  EXPECT_EQ(merged.text, next.text);
  // Nothing needed a restart: the merge is the new file.
  EXPECT_THAT(diff_config(merged, next), IsEmpty());
}

TEST_F(ConfigReloadTest, MergeKeepsRestartKeysFromTheRunningConfig) {
  std::string text = edited("ledger = \"/var/lib/pgnap/ledger.db\"", "ledger = \"/srv/new.db\"");
  replace_in(text, "address = \"127.0.0.1:5432\"", "address = \"127.0.0.1:5999\"");
  replace_in(text, "data_dir = \"/srv/pg/main\"", "data_dir = \"/srv/pg/other\"");
  replace_in(text, "start = [\"docker\", \"start\", \"blog\"]", "start = [\"podman\", \"start\", \"blog\"]");
  replace_in(text, "max_clients = 100", "max_clients = 42");
  const Config next = parse(text);
  const Config merged = merge_live(running_, next);

  EXPECT_EQ(merged.gateway.ledger, "/var/lib/pgnap/ledger.db");
  EXPECT_EQ(merged.gateway.max_clients, 42u);  // a live key in the same reload still applies
  ASSERT_EQ(merged.instances.size(), 2u);
  EXPECT_EQ(merged.instances[0].address.to_string(), "127.0.0.1:5432");
  EXPECT_EQ(merged.instances[0].pg_ctl.data_dir, "/srv/pg/main");
  EXPECT_EQ(merged.instances[0].pg_ctl.log_file, "/srv/pg/main/pgnap-postgres.log");
  EXPECT_THAT(merged.instances[1].exec.start, ElementsAre("docker", "start", "blog"));

  // What stays different from the file is exactly what needs a restart...
  for (const ConfigChange& c : diff_config(merged, next)) EXPECT_TRUE(c.needs_restart) << show(c);
  EXPECT_EQ(diff_config(merged, next).size(), 4u);
  // ...and what the reload applied is exactly the live part.
  EXPECT_THAT(changes(running_, merged), ElementsAre("gateway.max_clients changed (live)"));
}

TEST_F(ConfigReloadTest, MergeKeepsABackendChangeWhole) {
  // pg_ctl -> exec: backend, pg_ctl and exec all stay as they run, so the instance keeps a
  // coherent driver until the restart.
  std::string text = doc(kRunning);
  replace_in(text, "backend = \"pg_ctl\"", "backend = \"exec\"");
  const std::size_t table_at = text.find("[instances.main.pg_ctl]");
  const std::size_t table_end = text.find("[instances.main.accounting]");
  text.replace(table_at, table_end - table_at,
               "[instances.main.exec]\nstart = [\"/bin/true\"]\nstop = [\"/bin/true\"]\n\n");
  const Config next = parse(text);
  const Config merged = merge_live(running_, next);
  EXPECT_EQ(merged.instances[0].backend, "pg_ctl");
  EXPECT_EQ(merged.instances[0].pg_ctl.data_dir, "/srv/pg/main");
  EXPECT_TRUE(merged.instances[0].exec.start.empty());
  EXPECT_THAT(changes(running_, next),
              ElementsAre("instances.main.backend changed (restart)", "instances.main.pg_ctl changed (restart)",
                          "instances.main.exec changed (restart)"));
}

TEST_F(ConfigReloadTest, MergeTakesAddedInstancesWholeAndDropsRemovedOnes) {
  Config next = running_;
  next.instances.erase(next.instances.begin());  // main
  InstanceConfig shop = running_.instances[1];
  shop.name = "shop";
  shop.address.port = 5999;
  shop.exec.start = {"/usr/local/bin/start-shop"};
  next.instances.push_back(shop);
  const Config merged = merge_live(running_, next);
  ASSERT_EQ(merged.instances.size(), 2u);
  EXPECT_EQ(merged.instances[0].name, "blog");
  EXPECT_EQ(merged.instances[1].name, "shop");
  // A new instance has no running values to keep: its restart-only keys come from the file.
  EXPECT_EQ(merged.instances[1].address.port, 5999);
  EXPECT_THAT(merged.instances[1].exec.start, ElementsAre("/usr/local/bin/start-shop"));
}

TEST_F(ConfigReloadTest, MergeMatchesInstancesByNameNotPosition) {
  Config next = running_;
  std::swap(next.instances[0], next.instances[1]);
  next.instances[0].address.port = 6000;        // blog's, restart-only
  next.instances[1].idle_timeout = minutes(1);  // main's, live
  const Config merged = merge_live(running_, next);
  ASSERT_EQ(merged.instances.size(), 2u);
  EXPECT_EQ(merged.instances[0].name, "blog");
  EXPECT_EQ(merged.instances[0].address.to_string(), "10.0.0.7:5432");
  EXPECT_EQ(merged.instances[1].name, "main");
  EXPECT_EQ(merged.instances[1].idle_timeout, minutes(1));
  EXPECT_THAT(changes(running_, next),
              ElementsAre("instances.main.idle_timeout changed (live)", "instances.blog.address changed (restart)"));
}

// ---- merge_live for one instance -------------------------------------------------------------

TEST_F(ConfigReloadTest, AnInstanceKeepsItsRestartKeysAndTakesItsLiveOnes) {
  std::string text = edited("address = \"127.0.0.1:5432\"", "address = \"127.0.0.1:5999\"");
  replace_in(text, "data_dir = \"/srv/pg/main\"", "data_dir = \"/srv/pg/other\"");
  replace_in(text, "idle_timeout = \"10m\"", "idle_timeout = \"3m\"");
  replace_in(text, "max_waiting = 200", "max_waiting = 5");
  const Config next = parse(text);
  const InstanceConfig merged = merge_live(running_.instances[0], next.instances[0]);

  EXPECT_EQ(merged.name, "main");
  EXPECT_EQ(merged.address.to_string(), "127.0.0.1:5432");
  EXPECT_EQ(merged.pg_ctl.data_dir, "/srv/pg/main");
  EXPECT_EQ(merged.idle_timeout, minutes(3));
  EXPECT_EQ(merged.max_waiting, 5u);
  // The same instance as the whole-config merge makes.
  EXPECT_EQ(merged, merge_live(running_, next).instances[0]);
}

TEST_F(ConfigReloadTest, AnInstanceKeepsItsBackendWhole) {
  InstanceConfig next = running_.instances[0];
  next.backend = "exec";
  next.exec.start = {"/bin/true"};
  next.exec.stop = {"/bin/true"};
  next.pg_ctl = PgCtlConfig{};
  next.wake_timeout = minutes(2);
  const InstanceConfig merged = merge_live(running_.instances[0], next);
  EXPECT_EQ(merged.backend, "pg_ctl");
  EXPECT_EQ(merged.pg_ctl, running_.instances[0].pg_ctl);
  EXPECT_EQ(merged.exec, running_.instances[0].exec);
  EXPECT_EQ(merged.wake_timeout, minutes(2));
}

TEST_F(ConfigReloadTest, AnInstanceWithNothingRestartOnlyChangedIsTheNewOne) {
  InstanceConfig next = running_.instances[1];  // blog
  next.idle_timeout = seconds(45);
  next.databases = {"blog", "wiki"};
  next.accounting.vcpus = 8;
  EXPECT_EQ(merge_live(running_.instances[1], next), next);
}

// ---- Keys whose default derives from another key ---------------------------------------------

// exec.start_timeout defaults to wake_timeout, and the loader fills it in for every instance,
// whatever its backend. So a new wake_timeout (live) also changes the exec table (restart):
// the reload logs "instances.NAME.exec changed: needs a restart" for an edit that needs none,
// even on a pg_ctl or systemd instance that has no exec table at all.
constexpr std::string_view kPgCtl = R"(
[instances.app]
backend = "pg_ctl"
address = "127.0.0.1:5432"
wake_timeout = "60s"
pg_ctl.data_dir = "/srv/pg"
)";
constexpr std::string_view kExec = R"(
[instances.app]
backend = "exec"
address = "127.0.0.1:5432"
wake_timeout = "60s"

[instances.app.exec]
start = ["/bin/true"]
stop = ["/bin/true"]
)";

std::string with_wake_timeout_2m(std::string_view text) {
  std::string out = doc(text);
  replace_in(out, "\"60s\"", "\"2m\"");
  return out;
}

TEST(ConfigReloadDerivedTest, WakeTimeoutAppliesLive) {
  for (std::string_view text : {kPgCtl, kExec}) {
    const Config running = parse(text);
    const Config next = parse(with_wake_timeout_2m(text));
    EXPECT_THAT(changes(running, next), ::testing::Contains("instances.app.wake_timeout changed (live)"));
    EXPECT_EQ(merge_live(running, next).instances[0].wake_timeout, minutes(2));
  }
}

TEST(ConfigReloadDerivedTest, WakeTimeoutAloneNeedsNoRestart) {
  for (std::string_view text : {kPgCtl, kExec}) {
    EXPECT_THAT(changes(parse(text), parse(with_wake_timeout_2m(text))),
                ElementsAre("instances.app.wake_timeout changed (live)"))
        << text;
  }
}

// An instance's tls defaults from its address (disable on the machine, prefer across a
// network). address needs a restart but tls is live: moving the address to loopback must not
// apply tls = "disable" at once to connections that still go to the remote address.
TEST(ConfigReloadDerivedTest, AddressChangeDoesNotDowngradeTheRunningTls) {
  constexpr std::string_view kRemote = R"(
[instances.app]
backend = "pg_ctl"
address = "db.internal:5432"
pg_ctl.data_dir = "/srv/pg"
)";
  std::string text = doc(kRemote);
  replace_in(text, "db.internal", "127.0.0.1");
  const Config running = parse(kRemote);
  const Config merged = merge_live(running, parse(text));
  EXPECT_EQ(merged.instances[0].address.to_string(), "db.internal:5432");
  EXPECT_EQ(merged.instances[0].effective_tls(), "prefer");
  EXPECT_THAT(changes(running, parse(text)), ElementsAre("instances.app.address changed (restart)"));
}

}  // namespace
}  // namespace pgnap::config
