// The configuration loader on valid input: every key, every default, path resolution,
// durations in both formats, describe_config and files on disk. Errors are in error_test.cpp.
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using namespace test_util;
namespace fs = std::filesystem;

// ---- Valid documents -----------------------------------------------------------------------

TEST(ConfigTest, FullConfigSetsEveryKey) {
  Config config = parse(R"(
[gateway]
listen = ["127.0.0.1:6432", "[::1]:6433", "/run/pgnap/.s.PGSQL.6432"]
max_clients = 500
login_timeout = "5s"
ledger = "/srv/pgnap/ledger.db"
shutdown_timeout = "0s"
log_level = "debug"

[metrics]
listen = "0.0.0.0:9100"

[instances.shop]
databases = ["shop", "shop_test"]
backend = "pg_ctl"
address = "/var/run/postgresql/.s.PGSQL.5433"
idle_timeout = "2h"
min_awake = "250ms"
wake_timeout = "90s"
max_waiting = 0
connect_timeout = "3s"
suspend_on_exit = true

[instances.shop.pg_ctl]
data_dir = "/srv/pg/shop"
bin_dir = "/usr/lib/postgresql/16/bin"
os_user = "pgshop"
log_file = "/var/log/pgnap/shop.log"

[instances.shop.accounting]
vcpus = 4
memory_gb = 8.5
idle_watts_per_vcpu = 0.5
busy_watts_per_vcpu = 4
watts_per_gb = 0.4
residual_watts = 1.5
power_watts = 35
pue = 1.2
grid_intensity = 56
grid_source = "RTE eco2mix"
grid_year = 2023
price_per_hour = 0.017
currency = "EUR"
wake_billed_minimum = "10m"
embodied_g_per_hour = 2.5
measure = false
measure_interval = "30s"
price_per_gb_hour = 0.004

[instances.main]
databases = ["*"]
backend = "pg_ctl"
address = "db.internal:5432"

[instances.main.pg_ctl]
data_dir = "/srv/pg/main"
)");

  EXPECT_EQ(config.source, "pgnap.toml");
  const GatewayConfig& g = config.gateway;
  ASSERT_EQ(g.listen.size(), 3u);
  EXPECT_EQ(g.listen[0].kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(g.listen[0].host, "127.0.0.1");
  EXPECT_EQ(g.listen[0].port, 6432);
  EXPECT_EQ(g.listen[1].host, "::1");
  EXPECT_EQ(g.listen[1].port, 6433);
  EXPECT_EQ(g.listen[1].to_string(), "[::1]:6433");
  EXPECT_EQ(g.listen[2].kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(g.listen[2].path, "/run/pgnap/.s.PGSQL.6432");
  EXPECT_EQ(g.listen[2].port, 6432);
  EXPECT_EQ(g.max_clients, 500u);
  EXPECT_EQ(g.login_timeout, seconds(5));
  EXPECT_EQ(g.ledger, "/srv/pgnap/ledger.db");
  EXPECT_EQ(g.shutdown_timeout, seconds(0));
  EXPECT_EQ(g.log_level, "debug");
  EXPECT_EQ(config.metrics.listen, "0.0.0.0:9100");

  // File order, not toml++'s sorted order.
  ASSERT_EQ(config.instances.size(), 2u);
  const InstanceConfig& shop = config.instances[0];
  EXPECT_EQ(shop.name, "shop");
  EXPECT_THAT(shop.databases, ElementsAre("shop", "shop_test"));
  EXPECT_EQ(shop.backend, "pg_ctl");
  EXPECT_EQ(shop.address.kind, BackendAddress::Kind::kUnix);
  EXPECT_EQ(shop.address.socket_dir, "/var/run/postgresql");
  EXPECT_EQ(shop.address.port, 5433);
  EXPECT_EQ(shop.idle_timeout, hours(2));
  EXPECT_EQ(shop.min_awake, milliseconds(250));
  EXPECT_EQ(shop.wake_timeout, seconds(90));
  EXPECT_EQ(shop.max_waiting, 0u);
  EXPECT_EQ(shop.connect_timeout, seconds(3));
  EXPECT_TRUE(shop.suspend_on_exit);
  EXPECT_EQ(shop.pg_ctl.data_dir, "/srv/pg/shop");
  EXPECT_EQ(shop.pg_ctl.bin_dir, "/usr/lib/postgresql/16/bin");
  EXPECT_EQ(shop.pg_ctl.os_user, "pgshop");
  EXPECT_EQ(shop.pg_ctl.log_file, "/var/log/pgnap/shop.log");

  const AccountingConfig& a = shop.accounting;
  EXPECT_DOUBLE_EQ(a.vcpus, 4);
  EXPECT_DOUBLE_EQ(a.memory_gb, 8.5);
  EXPECT_DOUBLE_EQ(a.idle_watts_per_vcpu, 0.5);
  EXPECT_DOUBLE_EQ(a.busy_watts_per_vcpu, 4);
  EXPECT_DOUBLE_EQ(a.watts_per_gb, 0.4);
  EXPECT_DOUBLE_EQ(a.residual_watts, 1.5);
  ASSERT_TRUE(a.power_watts.has_value());
  EXPECT_DOUBLE_EQ(*a.power_watts, 35);
  EXPECT_DOUBLE_EQ(a.pue, 1.2);
  EXPECT_DOUBLE_EQ(a.grid_intensity, 56);
  EXPECT_EQ(a.grid_source, "RTE eco2mix");
  EXPECT_EQ(a.grid_year, 2023);
  EXPECT_DOUBLE_EQ(a.price_per_hour, 0.017);
  EXPECT_EQ(a.currency, "EUR");
  EXPECT_EQ(a.wake_billed_minimum, minutes(10));
  EXPECT_DOUBLE_EQ(a.embodied_g_per_hour, 2.5);
  EXPECT_FALSE(a.measure);
  EXPECT_EQ(a.measure_interval, seconds(30));
  EXPECT_DOUBLE_EQ(a.price_per_gb_hour, 0.004);

  const InstanceConfig& main = config.instances[1];
  EXPECT_EQ(main.name, "main");
  EXPECT_THAT(main.databases, ElementsAre("*"));
  EXPECT_EQ(main.address.kind, BackendAddress::Kind::kTcp);
  EXPECT_EQ(main.address.host, "db.internal");
  EXPECT_EQ(main.address.port, 5432);
}

TEST(ConfigTest, MinimalConfigGetsEveryDocumentedDefault) {
  Config config = parse(kMinimal);
  const GatewayConfig& g = config.gateway;
  ASSERT_EQ(g.listen.size(), 1u);
  EXPECT_EQ(g.listen[0].to_string(), "127.0.0.1:6432");
  EXPECT_EQ(g.listen[0].kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(g.max_clients, 1000u);
  EXPECT_EQ(g.login_timeout, seconds(15));
  EXPECT_EQ(g.ledger, "/var/lib/pgnap/ledger.db");
  EXPECT_EQ(g.shutdown_timeout, seconds(30));
  EXPECT_EQ(g.log_level, "info");
  EXPECT_EQ(config.metrics.listen, "127.0.0.1:9932");

  ASSERT_EQ(config.instances.size(), 1u);
  const InstanceConfig& i = config.instances[0];
  EXPECT_EQ(i.name, "main");
  EXPECT_THAT(i.databases, ElementsAre("*"));
  EXPECT_EQ(i.backend, "pg_ctl");
  EXPECT_EQ(i.address.to_string(), "127.0.0.1:5432");
  EXPECT_EQ(i.idle_timeout, minutes(10));
  EXPECT_EQ(i.min_awake, seconds(30));
  EXPECT_EQ(i.wake_timeout, seconds(60));
  EXPECT_EQ(i.max_waiting, 200u);
  EXPECT_EQ(i.connect_timeout, seconds(10));
  EXPECT_FALSE(i.suspend_on_exit);
  EXPECT_EQ(i.pg_ctl.data_dir, "/var/lib/postgresql/15/main");
  EXPECT_EQ(i.pg_ctl.bin_dir, "");
  EXPECT_EQ(i.pg_ctl.os_user, "postgres");
  EXPECT_EQ(i.pg_ctl.log_file, "/var/lib/postgresql/15/main/pgnap-postgres.log");

  const AccountingConfig& a = i.accounting;
  EXPECT_DOUBLE_EQ(a.vcpus, 2);
  EXPECT_DOUBLE_EQ(a.memory_gb, 1);
  EXPECT_DOUBLE_EQ(a.idle_watts_per_vcpu, 0.74);
  EXPECT_DOUBLE_EQ(a.busy_watts_per_vcpu, 3.5);
  EXPECT_DOUBLE_EQ(a.watts_per_gb, 0.392);
  EXPECT_DOUBLE_EQ(a.residual_watts, 0);
  EXPECT_FALSE(a.power_watts.has_value());
  EXPECT_DOUBLE_EQ(a.pue, 1.135);
  EXPECT_DOUBLE_EQ(a.grid_intensity, 473);
  EXPECT_EQ(a.grid_year, 2024);
  EXPECT_DOUBLE_EQ(a.price_per_hour, 0);
  EXPECT_EQ(a.currency, "USD");
  EXPECT_EQ(a.wake_billed_minimum, seconds(0));
  EXPECT_DOUBLE_EQ(a.embodied_g_per_hour, 0);
  EXPECT_TRUE(a.measure);
  EXPECT_EQ(a.measure_interval, seconds(10));
  EXPECT_DOUBLE_EQ(a.price_per_gb_hour, 0);

  // [instances.NAME.auth] and queue_limit_total: see auth_config_test.cpp.
  EXPECT_EQ(i.auth, AuthConfig{});
  EXPECT_EQ(g.queue_limit_total, 64u * 1024 * 1024);
}

TEST(ConfigTest, ListenAcceptsASingleString) {
  Config config = parse(minimal_plus(R"(
[gateway]
listen = "/tmp/.s.PGSQL.6543"
)"));
  ASSERT_EQ(config.gateway.listen.size(), 1u);
  EXPECT_EQ(config.gateway.listen[0].kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(config.gateway.listen[0].path, "/tmp/.s.PGSQL.6543");
  EXPECT_EQ(config.gateway.listen[0].port, 6543);
}

TEST(ConfigTest, PortZeroIsAllowedForListenersOnly) {
  Config config = parse(minimal_plus(R"(
[gateway]
listen = "127.0.0.1:0"
[metrics]
listen = "localhost:0"
)"));
  EXPECT_EQ(config.gateway.listen[0].port, 0);
  EXPECT_EQ(config.metrics.listen, "localhost:0");

  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:0"
[instances.main.pg_ctl]
data_dir = "/srv/pg"
)"),
            "3:11: instances.main.address: expected a port between 1 and 65535, got \"0\" in "
            "\"127.0.0.1:0\"");
}

TEST(ConfigTest, EmptyMetricsListenDisablesMetrics) {
  Config config = parse(minimal_plus(R"(
[metrics]
listen = ""
)"));
  EXPECT_EQ(config.metrics.listen, "");
  EXPECT_THAT(describe_config(config), HasSubstr("disabled"));
}

TEST(ConfigTest, FloatKeysAcceptIntegersAndIntegerKeysRejectFloats) {
  Config config = parse(minimal_plus(R"(
[instances.main.accounting]
vcpus = 1
pue = 1
)"));
  EXPECT_DOUBLE_EQ(config.instances[0].accounting.vcpus, 1);
  EXPECT_DOUBLE_EQ(config.instances[0].accounting.pue, 1);

  EXPECT_EQ(error_of(minimal_with("max_waiting = 10.0")),
            "4:15: instances.main.max_waiting: expected an integer between 0 and 1000000, got 10.0");
}

TEST(ConfigTest, BackendAddressForms) {
  auto parse_address = [](std::string_view text) {
    return parse(R"(
[instances.main]
backend = "pg_ctl"
address = ")" + std::string(text) +
                 R"("
[instances.main.pg_ctl]
data_dir = "/srv/pg"
)")
        .instances[0]
        .address;
  };

  BackendAddress dir = parse_address("/var/run/postgresql/");
  EXPECT_EQ(dir.kind, BackendAddress::Kind::kUnix);
  EXPECT_EQ(dir.socket_dir, "/var/run/postgresql");
  EXPECT_EQ(dir.port, 5432);
  EXPECT_EQ(dir.socket_path(), "/var/run/postgresql/.s.PGSQL.5432");
  EXPECT_EQ(dir.to_string(), "/var/run/postgresql/.s.PGSQL.5432");

  BackendAddress file = parse_address("/tmp/pg/.s.PGSQL.5433");
  EXPECT_EQ(file.kind, BackendAddress::Kind::kUnix);
  EXPECT_EQ(file.socket_dir, "/tmp/pg");
  EXPECT_EQ(file.port, 5433);

  BackendAddress v6 = parse_address("[fd00::5]:6000");
  EXPECT_EQ(v6.kind, BackendAddress::Kind::kTcp);
  EXPECT_EQ(v6.host, "fd00::5");
  EXPECT_EQ(v6.port, 6000);
  EXPECT_EQ(v6.to_string(), "[fd00::5]:6000");

  BackendAddress named = parse_address("postgres_1.internal:5432");
  EXPECT_EQ(named.host, "postgres_1.internal");
}

TEST(ConfigTest, RoutesWithoutADefaultInstanceAreFine) {
  Config config = parse(R"(
[instances.a]
databases = ["app"]
backend = "pg_ctl"
address = "127.0.0.1:5432"
pg_ctl.data_dir = "/srv/a"

[instances.b]
databases = ["blog", "wiki"]
backend = "pg_ctl"
address = "127.0.0.1:5433"
pg_ctl.data_dir = "/srv/b"
)");
  ASSERT_EQ(config.instances.size(), 2u);
  EXPECT_THAT(describe_config(config), HasSubstr("not served by this gateway"));
}

TEST(ConfigTest, RelativePathsResolveAgainstTheConfigDirectory) {
  Config config = parse(R"(
[gateway]
ledger = "state/ledger.db"

[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"

[instances.main.pg_ctl]
data_dir = "./data/main/"
bin_dir = "../pg/bin"
log_file = "logs//main.log"
)",
                        "/etc/pgnap");
  EXPECT_EQ(config.gateway.ledger, "/etc/pgnap/state/ledger.db");
  const PgCtlConfig& pg_ctl = config.instances[0].pg_ctl;
  EXPECT_EQ(pg_ctl.data_dir, "/etc/pgnap/data/main");
  EXPECT_EQ(pg_ctl.bin_dir, "/etc/pg/bin");
  EXPECT_EQ(pg_ctl.log_file, "/etc/pgnap/logs/main.log");

  // Absolute paths are only normalised; the default log file follows data_dir.
  Config absolute = parse(R"(
[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"
pg_ctl.data_dir = "/srv//pg/./main/"
)");
  EXPECT_EQ(absolute.instances[0].pg_ctl.data_dir, "/srv/pg/main");
  EXPECT_EQ(absolute.instances[0].pg_ctl.log_file, "/srv/pg/main/pgnap-postgres.log");
}

// ---- Durations ---------------------------------------------------------------------------------

TEST(DurationTest, ParsesEveryUnit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("30s"), seconds(30));
  EXPECT_EQ(parse_duration("10m"), minutes(10));
  EXPECT_EQ(parse_duration("2h"), hours(2));
  EXPECT_EQ(parse_duration("1d"), hours(24));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
  EXPECT_EQ(parse_duration("007s"), seconds(7));
}

TEST(DurationTest, RejectsEverythingElse) {
  for (std::string_view bad : {"", "10", "s", "10 s", " 10s", "10s ", "-5s", "+5s", "1.5s", "10y", "10S", "10sec",
                               "1h30m", "5ms5", "99999999999999999999s", "9223372036854775807d"}) {
    EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
  }
}

TEST(DurationTest, FormatsWithTheLargestExactUnitAndRoundTrips) {
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(seconds(30)), "30s");
  EXPECT_EQ(format_duration(seconds(90)), "90s");
  EXPECT_EQ(format_duration(seconds(60)), "1m");
  EXPECT_EQ(format_duration(minutes(10)), "10m");
  EXPECT_EQ(format_duration(hours(2)), "2h");
  EXPECT_EQ(format_duration(hours(48)), "2d");
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(seconds(-5)), "-5s");
  for (std::int64_t ms : {1LL, 999LL, 1000LL, 61'000LL, 3'600'000LL, 86'400'000LL, 90'061'001LL}) {
    std::string text = format_duration(milliseconds(ms));
    EXPECT_EQ(parse_duration(text), milliseconds(ms)) << text;
  }
  for (std::string_view text : {"250ms", "30s", "10m", "2h", "3d"}) {
    EXPECT_EQ(format_duration(*parse_duration(text)), text);
  }
}

TEST(ElapsedTest, EachRangeHasItsUnitAndPrecision) {
  EXPECT_EQ(format_elapsed(milliseconds(250)), "250 ms");
  EXPECT_EQ(format_elapsed(milliseconds(12'300)), "12.3 s");
  EXPECT_EQ(format_elapsed(seconds(270)), "4.5 min");
  EXPECT_EQ(format_elapsed(seconds(7'380)), "2.05 h");
  EXPECT_EQ(format_elapsed(hours(47)), "47.00 h");
  EXPECT_EQ(format_elapsed(hours(60)), "2.5 days");  // a report's window
}

TEST(ElapsedTest, Boundaries) {
  EXPECT_EQ(format_elapsed(milliseconds(0)), "0 ms");
  EXPECT_EQ(format_elapsed(milliseconds(999)), "999 ms");
  EXPECT_EQ(format_elapsed(seconds(1)), "1.0 s");
  EXPECT_EQ(format_elapsed(std::chrono::duration<double>(59.9)), "59.9 s");
  EXPECT_EQ(format_elapsed(seconds(60)), "1.0 min");
  // The unit follows the exact value and the figure is rounded: 59.98 min, still below an hour.
  EXPECT_EQ(format_elapsed(seconds(3'599)), "60.0 min");
  EXPECT_EQ(format_elapsed(seconds(3'600)), "1.00 h");
}

TEST(ElapsedTest, MillisecondsAreRoundedNotTruncated) {
  EXPECT_EQ(format_elapsed(std::chrono::microseconds(250'600)), "251 ms");
  EXPECT_EQ(format_elapsed(std::chrono::microseconds(250'400)), "250 ms");
  EXPECT_EQ(format_elapsed(std::chrono::microseconds(400)), "0 ms");
}

TEST(ElapsedTest, ANegativeDurationIsNoTime) {
  // A deadline already past: what is left of it is nothing, not "-5.0 s".
  EXPECT_EQ(format_elapsed(seconds(-5)), "0 ms");
  EXPECT_EQ(format_elapsed(milliseconds(-1)), "0 ms");
  EXPECT_EQ(format_elapsed(std::chrono::duration<double>(-0.0)), "0 ms");
}

TEST(ElapsedTest, TakesAnyClocksDuration) {
  // What the daemon passes: steady_clock differences, in nanoseconds.
  EXPECT_EQ(format_elapsed(std::chrono::nanoseconds(1'500'000'000)), "1.5 s");
  EXPECT_EQ(format_elapsed(std::chrono::steady_clock::duration::zero()), "0 ms");
}

// ---- describe_config
// -----------------------------------------------------------------------------

TEST(DescribeConfigTest, ShowsRoutingAndPgCtlCommands) {
  Config config = parse(R"(
[gateway]
listen = ["127.0.0.1:6432", "/run/pgnap/.s.PGSQL.6432"]

[metrics]
listen = ""

[instances.main]
backend = "pg_ctl"
address = "/var/run/postgresql"
wake_timeout = "1500ms"

[instances.main.pg_ctl]
data_dir = "/etc/postgresql/15/main"
bin_dir = "/usr/lib/postgresql/15/bin"
log_file = "/var/log/postgresql/pgnap main.log"

[instances.blog]
databases = ["wordpress", "blog"]
backend = "pg_ctl"
address = "127.0.0.1:5433"
max_waiting = 0

[instances.blog.pg_ctl]
data_dir = "/srv/blog"
os_user = "blog"
)");
  std::string text = describe_config(config);
  EXPECT_THAT(text, HasSubstr("Configuration pgnap.toml\n"));
  EXPECT_THAT(text, HasSubstr("  listen            127.0.0.1:6432\n"));
  EXPECT_THAT(text, HasSubstr("  listen            /run/pgnap/.s.PGSQL.6432 (Unix socket)\n"));
  EXPECT_THAT(text, HasSubstr("  max_clients       1000\n"));
  EXPECT_THAT(text, HasSubstr("  login_timeout     15s\n"));
  EXPECT_THAT(text, HasSubstr("  shutdown_timeout  30s\n"));
  EXPECT_THAT(text, HasSubstr("  ledger            /var/lib/pgnap/ledger.db (heartbeat every 30s)\n"));
  EXPECT_THAT(text, HasSubstr("Metrics\n  listen            disabled\n"));
  EXPECT_THAT(text, HasSubstr("Routing (database -> instance)\n"
                              "  blog                   blog\n"
                              "  wordpress              blog\n"
                              "  (any other database)   main\n"));
  EXPECT_THAT(text, HasSubstr("Instance main\n"
                              "  backend           pg_ctl\n"
                              "  address           /var/run/postgresql/.s.PGSQL.5432 (Unix socket)\n"
                              "  idle_timeout      10m\n"
                              "  min_awake         30s\n"
                              "  wake_timeout      1500ms\n"
                              "  max_waiting       200\n"
                              "  connect_timeout   10s\n"));
  EXPECT_THAT(text, HasSubstr("    start: /usr/lib/postgresql/15/bin/pg_ctl start -D /etc/postgresql/15/main "
                              "-l '/var/log/postgresql/pgnap main.log' -w -t 2 -s\n"
                              "    stop: /usr/lib/postgresql/15/bin/pg_ctl stop -D /etc/postgresql/15/main "
                              "-m fast -w -t 60 -s\n"
                              "    status: /usr/lib/postgresql/15/bin/pg_ctl status -D "
                              "/etc/postgresql/15/main\n"
                              "    as OS user: postgres (when pgnap runs as root)\n"));
  EXPECT_THAT(text, HasSubstr("  max_waiting       0 (never queue)\n"));
  EXPECT_THAT(text, HasSubstr("    start: (auto: PATH, then the newest /usr/lib/postgresql/*/bin)"
                              "/pg_ctl start -D /srv/blog -l /srv/blog/pgnap-postgres.log -w -t 60 -s\n"));
  EXPECT_THAT(text, HasSubstr("    as OS user: blog (when pgnap runs as root)\n"));
  // Instances in file order.
  EXPECT_LT(text.find("Instance main"), text.find("Instance blog"));
}

// ---- Files on disk
// --------------------------------------------------------------------------------

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pgnap-config-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string write(const std::string& name, std::string_view text) {
    fs::path path = dir_ / name;
    std::ofstream(path) << doc(text);
    return path.string();
  }
  fs::path dir_;
};

TEST_F(ConfigFileTest, LoadsAFileAndResolvesPathsAgainstItsDirectory) {
  std::string path = write("pgnap.toml", R"(
[gateway]
ledger = "ledger.db"

[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"
pg_ctl.data_dir = "pgdata"
)");
  Config config = load_config(path);
  EXPECT_EQ(config.source, path);
  EXPECT_EQ(config.gateway.ledger, (dir_ / "ledger.db").string());
  EXPECT_EQ(config.instances[0].pg_ctl.data_dir, (dir_ / "pgdata").string());
  EXPECT_EQ(config.instances[0].pg_ctl.log_file, (dir_ / "pgdata/pgnap-postgres.log").string());
}

TEST_F(ConfigFileTest, ErrorsNameTheFile) {
  std::string path = write("bad.toml", "[gateway]\nmax_clients = -1\n");
  try {
    (void)load_config(path);
    FAIL() << "expected an error";
  } catch (const ConfigLoadError& e) {
    ASSERT_EQ(e.errors().size(), 2u);
    EXPECT_EQ(e.errors()[0].to_string(), path +
                                             ":1:1: instances: at least one instance is required: add an "
                                             "[instances.NAME] table");
    EXPECT_EQ(e.errors()[1].to_string(),
              path + ":2:15: gateway.max_clients: expected an integer between 1 and 1000000, got -1");
  }
}

TEST_F(ConfigFileTest, UnreadableFile) {
  std::string missing = (dir_ / "missing.toml").string();
  try {
    (void)load_config(missing);
    FAIL() << "expected an error";
  } catch (const ConfigLoadError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].to_string(), missing + ": cannot read: No such file or directory");
  }
  try {
    (void)load_config(dir_.string());
    FAIL() << "expected an error";
  } catch (const ConfigLoadError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].to_string(), dir_.string() + ": cannot read: Is a directory");
  }
}

TEST(ExampleConfigTest, ExamplesPgnapTomlLoads) {
  Config config = load_config(PGNAP_SOURCE_DIR "/examples/pgnap.toml");
  ASSERT_EQ(config.instances.size(), 1u);
  const InstanceConfig& main = config.instances[0];
  EXPECT_EQ(main.name, "main");
  EXPECT_THAT(main.databases, ElementsAre("*"));
  EXPECT_EQ(main.backend, "pg_ctl");
  EXPECT_EQ(main.address.kind, BackendAddress::Kind::kUnix);
  EXPECT_EQ(main.address.socket_dir, "/var/run/postgresql");
  EXPECT_EQ(main.pg_ctl.data_dir, "/etc/postgresql/15/main");
  ASSERT_EQ(config.gateway.listen.size(), 1u);
  EXPECT_EQ(config.gateway.listen[0].to_string(), "127.0.0.1:6432");
}

// The complete example of docs/configuration.md must stay valid and use every backend.
TEST(ExampleConfigTest, DocsCompleteExampleLoads) {
  std::ifstream file(PGNAP_SOURCE_DIR "/docs/configuration.md");
  std::string markdown((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::size_t section = markdown.find("## A complete example");
  ASSERT_NE(section, std::string::npos);
  std::size_t begin = markdown.find("```toml\n", section);
  ASSERT_NE(begin, std::string::npos);
  begin += std::string_view("```toml\n").size();
  std::size_t end = markdown.find("```", begin);
  ASSERT_NE(end, std::string::npos);

  Config config = parse_config(markdown.substr(begin, end - begin), "configuration.md", "/etc/pgnap");
  ASSERT_EQ(config.instances.size(), 3u);
  EXPECT_EQ(config.instances[0].name, "shop");
  EXPECT_EQ(config.instances[0].backend, "pg_ctl");
  EXPECT_TRUE(config.instances[0].accounting.power_watts.has_value());
  EXPECT_EQ(config.instances[0].wake.ignore.size(), 2u);
  EXPECT_EQ(config.instances[0].wake.time_zone, "Europe/Paris");
  EXPECT_EQ(config.instances[0].maintenance.at, "03:00");
  EXPECT_EQ(config.gateway.control_socket, "/run/pgnap/control.sock");
  EXPECT_EQ(config.instances[1].name, "reports");
  EXPECT_EQ(config.instances[1].backend, "exec");
  EXPECT_EQ(config.instances[1].exec.env.size(), 1u);
  EXPECT_EQ(config.instances[1].auth.mode, "gateway");
  EXPECT_EQ(config.instances[1].auth.user, "pgnap_auth");
  EXPECT_EQ(config.gateway.queue_limit_total, 64u * 1024 * 1024);
  EXPECT_EQ(config.instances[2].name, "main");
  EXPECT_EQ(config.instances[2].backend, "systemd");
  EXPECT_EQ(config.instances[2].systemd.unit, "postgresql@15-main.service");
}

// Every key the loader accepts has its row in docs/configuration.md, the source of the man page
// pgnap.toml(5) (scripts/md2man.py): the key lists come from the loader itself, from the
// "valid keys here" of an unknown key in each table.
TEST(ExampleConfigTest, EveryKeyHasItsRowInConfigurationMd) {
  std::ifstream file(PGNAP_SOURCE_DIR "/docs/configuration.md");
  const std::string markdown((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(markdown.empty());
  const std::string instance = "[instances.main]\naddress = \"127.0.0.1:5432\"\n";
  const std::string pg_ctl = instance + "backend = \"pg_ctl\"\n[instances.main.pg_ctl]\ndata_dir = \"/d\"\n";
  // Each document: a valid configuration with an unknown key in the table under test.
  const std::vector<std::pair<std::string, std::string>> tables = {
      {"gateway", "[gateway]\nno_such_key = 1\n" + pg_ctl},
      {"gateway.tls", "[gateway.tls]\nno_such_key = 1\n" + pg_ctl},
      {"metrics", "[metrics]\nno_such_key = 1\n" + pg_ctl},
      {"instances.main", pg_ctl + "[instances.main.accounting]\n" + "[instances.main.auth]\n" +
                             "[instances.main.wake]\n[instances.main.maintenance]\n" +
                             "[instances.main.x]\n"},
      {"instances.main.pg_ctl", pg_ctl + "no_such_key = 1\n"},
      {"instances.main.exec", instance + "backend = \"exec\"\n[instances.main.exec]\nstart = [\"a\"]\n" +
                                  "stop = [\"b\"]\nno_such_key = 1\n"},
      {"instances.main.systemd",
       instance + "backend = \"systemd\"\n[instances.main.systemd]\nunit = \"u\"\nno_such_key = 1\n"},
      {"instances.main.accounting", pg_ctl + "[instances.main.accounting]\nno_such_key = 1\n"},
      {"instances.main.auth", pg_ctl + "[instances.main.auth]\nno_such_key = 1\n"},
      {"instances.main.wake", pg_ctl + "[instances.main.wake]\nno_such_key = 1\n"},
      {"instances.main.maintenance", pg_ctl + "[instances.main.maintenance]\nno_such_key = 1\n"},
  };
  // Names of sub-tables, documented by their headings rather than by a row.
  const std::vector<std::string> sub_tables = {"tls", "pg_ctl", "exec", "systemd", "accounting", "auth", "wake",
                                               "maintenance"};
  int keys = 0;
  for (const auto& [table, text] : tables) {
    std::string listed;
    try {
      (void)parse_config(text, "pgnap.toml", "/etc/pgnap");
    } catch (const ConfigLoadError& e) {
      for (const ConfigError& error : e.errors()) {
        const std::size_t at = error.message.find("valid keys here: ");
        if (at != std::string::npos) listed = error.message.substr(at + std::string_view("valid keys here: ").size());
      }
    }
    ASSERT_FALSE(listed.empty()) << table << ": no unknown-key error listing the valid keys";
    std::size_t begin = 0;
    while (begin < listed.size()) {
      std::size_t end = listed.find(", ", begin);
      if (end == std::string::npos) end = listed.size();
      const std::string key = listed.substr(begin, end - begin);
      begin = end + 2;
      if (std::find(sub_tables.begin(), sub_tables.end(), key) != sub_tables.end()) continue;
      ++keys;
      EXPECT_NE(markdown.find("| `" + key + "` |"), std::string::npos)
          << table << "." << key << " has no row in docs/configuration.md (nor in man pgnap.toml)";
    }
  }
  EXPECT_GT(keys, 80);
}

}  // namespace
}  // namespace pgnap::config
