// The configuration loader's errors: each kind, with its exact message, line, column and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;

TEST(ConfigErrorTest, SyntaxErrorIsOneErrorWithTheParsersPosition) {
  try {
    (void)parse(R"(
[gateway]
max_clients = 
)");
    FAIL() << "expected a syntax error";
  } catch (const ConfigLoadError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    const ConfigError& error = e.errors()[0];
    EXPECT_EQ(error.file, "pgnap.toml");
    EXPECT_EQ(error.line, 2u);
    EXPECT_GT(error.column, 0u);
    EXPECT_EQ(error.key, "");
    EXPECT_THAT(error.message, HasSubstr("expected value"));
    EXPECT_EQ(error.to_string(), "pgnap.toml:2:" + std::to_string(error.column) + ": " + error.message);
  }
  EXPECT_THAT(error_of("[gateway\n"), ::testing::StartsWith("1:"));
  EXPECT_THAT(error_of("a = 1\na = 2\n"), ::testing::StartsWith("2:"));
}

// Non-ASCII text is TOML only inside strings and comments; elsewhere it is refused before
// toml++ 3.3 reads it (its whitespace check is undefined behaviour for many such characters;
// tests/fuzz/regressions/config/ has the inputs that found it).
TEST(ConfigErrorTest, NonAsciiOutsideStringsAndCommentsIsRefusedWithItsPosition) {
  EXPECT_EQ(error_of("\xc3\xa9 = 1\n"), "1:1: non-ASCII character outside a string or a comment");
  EXPECT_EQ(error_of("[gateway]\nmax_clients = 1\xc3\xa9\n"),
            "2:16: non-ASCII character outside a string or a comment");
  EXPECT_THAT(error_of("[gateway]\nlog_level = \"\"\"\\\n  \xc3\xa9\"\"\"\n"),
              HasSubstr("the first character after a line-ending backslash must be ASCII"));
  // Inside strings and comments it is ordinary text.
  const Config config = parse(std::string(kMinimal) +
                              "# Donn\xc3\xa9"
                              "es de production\n"
                              "[instances.main.accounting]\n"
                              "grid_source = \"RTE \xc3\xa9"
                              "CO2mix, France\"  # \xe2\x82\xac\n"
                              "currency = 'EUR'\n");
  EXPECT_EQ(config.instances.at(0).accounting.grid_source,
            "RTE \xc3\xa9"
            "CO2mix, France");
}

TEST(ConfigErrorTest, UnknownKeysAtEveryLevelListTheValidOnes) {
  EXPECT_EQ(error_of("gatway = {}\n" + doc(kMinimal)),
            "1:1: gatway: unknown key \"gatway\"; valid keys here: gateway, metrics, instances");
  EXPECT_EQ(
      error_of(minimal_plus("[gateway]\nmax_client = 5\n")),
      "8:1: gateway.max_client: unknown key \"max_client\"; valid keys here: listen, "
      "max_clients, login_timeout, ledger, ledger_heartbeat, shutdown_timeout, log_level, "
      "max_message_size, tcp_keepalive_idle, tcp_keepalive_interval, tcp_keepalive_count, queue_limit_total, tls, "
      "control_socket, relay");
  EXPECT_EQ(error_of(minimal_plus("[metrics]\nport = 9\n")),
            "8:1: metrics.port: unknown key \"port\"; valid keys here: listen");
  EXPECT_EQ(error_of(minimal_with("idle_timout = \"5m\"")),
            "4:1: instances.main.idle_timout: unknown key \"idle_timout\"; valid keys here: "
            "databases, backend, address, idle_timeout, min_awake, wake_timeout, max_waiting, "
            "connect_timeout, suspend_on_exit, idle_session_timeout, close_listeners, park_sessions, "
            "park_custom_settings, tls, pool_size, "
            "min_pool_size, "
            "server_idle_timeout, server_lifetime, pool_wait_timeout, server_reset_query, pg_ctl, exec, systemd, "
            "accounting, auth, wake, maintenance");
  EXPECT_EQ(error_of(minimal_plus("bindir = \"/usr/bin\"\n")),
            "7:1: instances.main.pg_ctl.bindir: unknown key \"bindir\"; valid keys here: "
            "data_dir, bin_dir, os_user, log_file");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.accounting]\nvcpu = 2\n")),
            "8:1: instances.main.accounting.vcpu: unknown key \"vcpu\"; valid keys here: vcpus, "
            "memory_gb, idle_watts_per_vcpu, busy_watts_per_vcpu, watts_per_gb, residual_watts, "
            "power_watts, busy_power_watts, pue, grid_intensity, grid_source, grid_year, price_per_hour, currency, "
            "wake_billed_minimum, embodied_g_per_hour, measure, measure_interval, price_per_gb_hour");
}

TEST(ConfigErrorTest, WrongTypes) {
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nledger = 5\n")),
            "8:10: gateway.ledger: expected a path (a string), got an integer");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nlog_level = true\n")),
            "8:13: gateway.log_level: expected a string, got a boolean");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nmax_clients = \"100\"\n")),
            "8:15: gateway.max_clients: expected an integer between 1 and 1000000, got \"100\"");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nlisten = 6432\n")),
            "8:10: gateway.listen: expected a listen address or an array of them (e.g. "
            "[\"127.0.0.1:6432\"]), got an integer");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nlisten = [\"127.0.0.1:6432\", 6433]\n")),
            "8:29: gateway.listen: expected a listen address (a string), got an integer");
  EXPECT_EQ(error_of(minimal_plus("[metrics]\nlisten = false\n")),
            "8:10: metrics.listen: expected a string, got a boolean");
  EXPECT_EQ(error_of("gateway = \"x\"\n" + doc(kMinimal)), "1:11: gateway: expected a table, got a string");
  EXPECT_EQ(error_of(minimal_with("suspend_on_exit = \"yes\"")),
            "4:19: instances.main.suspend_on_exit: expected true or false, got \"yes\"");
  EXPECT_EQ(error_of(minimal_with("databases = \"app\"")),
            "4:13: instances.main.databases: expected an array of database names (e.g. "
            "[\"app\"], or [\"*\"] for any), got a string");
  EXPECT_EQ(error_of(minimal_with("accounting = 1")),
            "4:14: instances.main.accounting: expected a table, got an integer");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.accounting]\ngrid_source = 1990-01-01\n")),
            "8:15: instances.main.accounting.grid_source: expected a string, got a date");
}

TEST(ConfigErrorTest, BadDurations) {
  const std::string expected = R"(expected a duration with a unit ("250ms", "30s", "10m", "2h"), got )";
  EXPECT_EQ(error_of(minimal_with("idle_timeout = \"10\"")),
            "4:16: instances.main.idle_timeout: " + expected + "\"10\"");
  EXPECT_EQ(error_of(minimal_with("idle_timeout = \"10 s\"")),
            "4:16: instances.main.idle_timeout: " + expected + "\"10 s\"");
  EXPECT_EQ(error_of(minimal_with("idle_timeout = \"-5s\"")),
            "4:16: instances.main.idle_timeout: " + expected + "\"-5s\"");
  EXPECT_EQ(error_of(minimal_with("idle_timeout = \"1.5s\"")),
            "4:16: instances.main.idle_timeout: " + expected + "\"1.5s\"");
  EXPECT_EQ(error_of(minimal_with("idle_timeout = \"10y\"")),
            "4:16: instances.main.idle_timeout: " + expected + "\"10y\"");
  EXPECT_EQ(error_of(minimal_with("idle_timeout = 600")), "4:16: instances.main.idle_timeout: " + expected + "600");
  EXPECT_EQ(error_of(minimal_with("idle_timeout = \"\"")), "4:16: instances.main.idle_timeout: " + expected + "\"\"");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.accounting]\nwake_billed_minimum = \"10min\"\n")),
            "8:23: instances.main.accounting.wake_billed_minimum: " + expected + "\"10min\"");

  EXPECT_EQ(error_of(minimal_with("wake_timeout = \"0s\"")),
            "4:16: instances.main.wake_timeout: expected a duration greater than 0 and at most "
            "365d, got \"0s\"");
  EXPECT_EQ(error_of(minimal_with("min_awake = \"25h\"")),
            "4:13: instances.main.min_awake: expected a duration of at most 1d, got \"25h\"");
  EXPECT_EQ(error_of(minimal_with("connect_timeout = \"366d\"")),
            "4:19: instances.main.connect_timeout: expected a duration greater than 0 and at "
            "most 365d, got \"366d\"");
  // Zero is fine where it means "at once".
  EXPECT_EQ(parse(minimal_with("min_awake = \"0s\"")).instances[0].min_awake, seconds(0));
  EXPECT_EQ(parse(minimal_plus("[gateway]\nshutdown_timeout = \"0ms\"\n")).gateway.shutdown_timeout, seconds(0));
}

TEST(ConfigErrorTest, NumbersOutOfRange) {
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nmax_clients = 0\n")),
            "8:15: gateway.max_clients: expected an integer between 1 and 1000000, got 0");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nmax_clients = 1000001\n")),
            "8:15: gateway.max_clients: expected an integer between 1 and 1000000, got 1000001");
  EXPECT_EQ(error_of(minimal_with("max_waiting = -1")),
            "4:15: instances.main.max_waiting: expected an integer between 0 and 1000000, got -1");
  EXPECT_EQ(parse(minimal_with("max_waiting = 1000000")).instances[0].max_waiting, 1'000'000u);

  auto accounting = [](std::string_view line) {
    return error_of(minimal_plus("[instances.main.accounting]\n" + std::string(line) + "\n"));
  };
  EXPECT_EQ(accounting("grid_year = 1989"),
            "8:13: instances.main.accounting.grid_year: expected an integer between 1990 and "
            "2100, got 1989");
  EXPECT_EQ(accounting("pue = 0.9"), "8:7: instances.main.accounting.pue: expected a number >= 1, got 0.9");
  EXPECT_EQ(accounting("vcpus = 0"), "8:9: instances.main.accounting.vcpus: expected a number > 0, got 0");
  EXPECT_EQ(accounting("memory_gb = -0.5"),
            "8:13: instances.main.accounting.memory_gb: expected a number >= 0, got -0.5");
  EXPECT_EQ(accounting("power_watts = 0"), "8:15: instances.main.accounting.power_watts: expected a number > 0, got 0");
  EXPECT_EQ(accounting("price_per_hour = nan"),
            "8:18: instances.main.accounting.price_per_hour: expected a number >= 0, got nan");
  EXPECT_EQ(accounting("grid_intensity = inf"),
            "8:18: instances.main.accounting.grid_intensity: expected a number >= 0, got inf");
  EXPECT_EQ(accounting("currency = \"usd\""),
            "8:12: instances.main.accounting.currency: expected a currency code of three "
            "upper-case letters (ISO 4217, e.g. \"USD\", \"EUR\"), got \"usd\"");
  EXPECT_EQ(accounting("vcpus = \"2\""), "8:9: instances.main.accounting.vcpus: expected a number > 0, got \"2\"");
}

TEST(ConfigErrorTest, BadChoices) {
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nlog_level = \"verbose\"\n")),
            "8:13: gateway.log_level: expected one of \"debug\", \"info\", \"warning\", "
            "\"error\", got \"verbose\"");
  EXPECT_EQ(error_of(minimal_plus("os_user = \"\"\n")),
            "7:11: instances.main.pg_ctl.os_user: expected a non-empty string, got \"\"");
  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"
pg_ctl.data_dir = ""
)"),
            "4:19: instances.main.pg_ctl.data_dir: expected a path, got \"\"");
}

TEST(ConfigErrorTest, MissingRequiredKeysPointAtTheirTable) {
  EXPECT_EQ(error_of(R"(
[instances.main]
address = "127.0.0.1:5432"
)"),
            "1:1: instances.main.backend: required key \"backend\" is missing");
  EXPECT_EQ(error_of(R"(
# comment

[instances.main]
backend = "pg_ctl"

[instances.main.pg_ctl]
data_dir = "/srv/pg"
)"),
            "3:1: instances.main.address: required key \"address\" is missing");
  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"

[instances.main.pg_ctl]
bin_dir = "/usr/bin"
)"),
            "5:1: instances.main.pg_ctl.data_dir: required key \"data_dir\" is missing");
  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"
)"),
            "1:1: instances.main.pg_ctl: required key \"pg_ctl\" is missing (backend = "
            "\"pg_ctl\" needs a [instances.main.pg_ctl] table with at least data_dir)");
}

TEST(ConfigErrorTest, UnsupportedBackends) {
  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "kubernetes"
address = "127.0.0.1:5432"
)"),
            "2:11: instances.main.backend: backend \"kubernetes\" is not supported yet; supported "
            "backends: \"pg_ctl\", \"exec\", \"systemd\"");
  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "docker"
address = "127.0.0.1:5432"
)"),
            "2:11: instances.main.backend: unknown backend \"docker\"; supported backends: "
            "\"pg_ctl\", \"exec\", \"systemd\"");
  // A backend's sub-table without that backend is a mistake, reported besides the missing
  // table of the backend chosen.
  EXPECT_THAT(errors_of(R"(
[instances.x]
backend = "exec"
address = "127.0.0.1:5432"

[instances.x.pg_ctl]
data_dir = "/srv/pg"
)"),
              ElementsAre("1:1: instances.x.exec: required key \"exec\" is missing (backend = \"exec\" needs "
                          "a [instances.x.exec] table with at least start and stop)",
                          "5:1: instances.x.pg_ctl: [instances.x.pg_ctl] applies only to "
                          "backend = \"pg_ctl\", but this instance's backend is \"exec\""));
}

TEST(ConfigErrorTest, BadAddresses) {
  auto listen = [](std::string_view value) {
    return error_of(minimal_plus("[gateway]\nlisten = \"" + std::string(value) + "\"\n"));
  };
  EXPECT_EQ(listen("127.0.0.1"),
            "8:10: gateway.listen: expected host:port (e.g. \"127.0.0.1:6432\") or a Unix socket "
            "path (e.g. \"/run/pgnap/.s.PGSQL.6432\"), got \"127.0.0.1\"");
  EXPECT_EQ(listen("127.0.0.1:70000"),
            "8:10: gateway.listen: expected a port between 0 and 65535, got \"70000\" in "
            "\"127.0.0.1:70000\"");
  EXPECT_EQ(listen("127.0.0.1:"),
            "8:10: gateway.listen: expected host:port (e.g. \"127.0.0.1:6432\") or a Unix socket "
            "path (e.g. \"/run/pgnap/.s.PGSQL.6432\"), got \"127.0.0.1:\"");
  EXPECT_EQ(listen("::1:6432"),
            "8:10: gateway.listen: expected an IPv6 address in brackets, e.g. \"[::1]:6432\", "
            "got \"::1:6432\"");
  EXPECT_EQ(listen("[::g]:6432"),
            "8:10: gateway.listen: expected a valid IPv6 address in brackets, got \"[::g]:6432\"");
  EXPECT_EQ(listen("300.0.0.1:6432"),
            "8:10: gateway.listen: expected a valid IPv4 address, got \"300.0.0.1\" in "
            "\"300.0.0.1:6432\"");
  EXPECT_EQ(listen("my host:6432"),
            "8:10: gateway.listen: expected a host name, an IPv4 address or an [IPv6] address "
            "before the port, got \"my host\" in \"my host:6432\"");
  EXPECT_EQ(listen("/run/pgnap/pgnap.sock"),
            "8:10: gateway.listen: expected a Unix socket path whose file name is "
            "\".s.PGSQL.<port>\" (the name libpq looks for, e.g. \"/run/pgnap/.s.PGSQL.6432\"), "
            "got \"/run/pgnap/pgnap.sock\"");
  EXPECT_EQ(listen("run/.s.PGSQL.6432"),
            "8:10: gateway.listen: expected an absolute Unix socket path (e.g. "
            "\"/run/pgnap/.s.PGSQL.6432\"), got \"run/.s.PGSQL.6432\"");
  EXPECT_THAT(listen("/" + std::string(120, 'd') + "/.s.PGSQL.6432"),
              HasSubstr("is too long (135 bytes; the kernel allows at most 107)"));
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nlisten = [\"127.0.0.1:6432\", \"127.0.0.1:6432\"]\n")),
            "8:29: gateway.listen: listen address \"127.0.0.1:6432\" is given twice");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nlisten = []\n")),
            "8:10: gateway.listen: expected at least one listen address, got an empty array");

  auto backend = [](std::string_view value) {
    return error_of(R"(
[instances.main]
backend = "pg_ctl"
address = ")" + std::string(value) +
                    R"("
pg_ctl.data_dir = "/srv/pg"
)");
  };
  EXPECT_EQ(backend("localhost"),
            "3:11: instances.main.address: expected host:port (e.g. \"127.0.0.1:5432\") or an "
            "absolute Unix socket directory (e.g. \"/var/run/postgresql\"), got \"localhost\"");
  EXPECT_EQ(backend("var/run/postgresql"),
            "3:11: instances.main.address: expected host:port (e.g. \"127.0.0.1:5432\") or an "
            "absolute Unix socket directory (e.g. \"/var/run/postgresql\"); a socket directory "
            "must be absolute, got \"var/run/postgresql\"");
  EXPECT_EQ(backend("/tmp/.s.PGSQL.x"),
            "3:11: instances.main.address: expected a socket file named \".s.PGSQL.<port>\" "
            "with a port between 1 and 65535, got \"/tmp/.s.PGSQL.x\"");

  EXPECT_EQ(error_of(minimal_plus("[metrics]\nlisten = \"9932\"\n")),
            "8:10: metrics.listen: expected host:port (e.g. \"127.0.0.1:9932\") or \"\" to "
            "disable, got \"9932\"");
}

TEST(ConfigErrorTest, DatabaseLists) {
  EXPECT_EQ(error_of(minimal_with("databases = []")),
            "4:13: instances.main.databases: expected at least one database name (or \"*\" for "
            "any), got an empty array");
  EXPECT_EQ(error_of(minimal_with("databases = [\"app\", \"\"]")),
            "4:21: instances.main.databases: expected a database name (a non-empty string), "
            "got \"\"");
  EXPECT_EQ(error_of(minimal_with("databases = [\"app\", 1]")),
            "4:21: instances.main.databases: expected a database name (a non-empty string), "
            "got 1");
  EXPECT_EQ(error_of(minimal_with("databases = [\"app\", \"app\"]")),
            "4:21: instances.main.databases: database \"app\" is listed twice");
}

TEST(ConfigErrorTest, DuplicateRoutesNameBothInstances) {
  EXPECT_EQ(error_of(R"(
[instances.a]
databases = ["app", "blog"]
backend = "pg_ctl"
address = "127.0.0.1:5432"
pg_ctl.data_dir = "/srv/a"

[instances.b]
databases = ["wiki", "blog"]
backend = "pg_ctl"
address = "127.0.0.1:5433"
pg_ctl.data_dir = "/srv/b"
)"),
            "8:22: instances.b.databases: database \"blog\" is routed to both instance \"a\" and "
            "instance \"b\"");

  // Both default to databases = ["*"].
  EXPECT_EQ(error_of(R"(
[instances.zeta]
backend = "pg_ctl"
address = "127.0.0.1:5432"
pg_ctl.data_dir = "/srv/a"

[instances.alpha]
backend = "pg_ctl"
address = "127.0.0.1:5433"
pg_ctl.data_dir = "/srv/b"
)"),
            "6:1: instances.alpha.databases: \"*\" (any other database) is routed to both "
            "instance \"zeta\" and instance \"alpha\"; only one instance may have \"*\"");
}

TEST(ConfigErrorTest, NoInstances) {
  EXPECT_EQ(error_of(""), "1:1: instances: at least one instance is required: add an [instances.NAME] table");
  EXPECT_EQ(error_of("[gateway]\nmax_clients = 10\n[instances]\n"),
            "3:1: instances: at least one instance is required: add an [instances.NAME] table");
  EXPECT_EQ(error_of("instances = 5\n"),
            "1:13: instances: expected a table of instances ([instances.NAME]), got an integer");
  EXPECT_EQ(error_of("[[instances]]\nbackend = \"pg_ctl\"\n"),
            "1:1: instances: expected a table of instances ([instances.NAME]), got an array");
}

TEST(ConfigErrorTest, InstanceNames) {
  EXPECT_EQ(error_of(R"(
[instances."my db"]
backend = "pg_ctl"
address = "127.0.0.1:5432"
pg_ctl.data_dir = "/srv/a"
)"),
            "1:12: instances.\"my db\": invalid instance name \"my db\": use only letters, "
            "digits, \"_\" and \"-\"");
  EXPECT_EQ(error_of("[instances]\nmain = \"pg_ctl\"\n"),
            "2:8: instances.main: expected a table ([instances.main]), got a string");
}

TEST(ConfigErrorTest, SeveralErrorsAreReportedTogetherInFileOrder) {
  EXPECT_THAT(
      errors_of(R"(
[gateway]
listen = "localhost"
max_clients = 0
login_timout = "5s"

[instances.main]
backend = "pg_ctl"
idle_timeout = "10"
max_waiting = 10.5

[instances.main.pg_ctl]
os_user = 0
)"),
      ElementsAre(
          "2:10: gateway.listen: expected host:port (e.g. \"127.0.0.1:6432\") or a Unix "
          "socket path (e.g. \"/run/pgnap/.s.PGSQL.6432\"), got \"localhost\"",
          "3:15: gateway.max_clients: expected an integer between 1 and 1000000, got 0",
          "4:1: gateway.login_timout: unknown key \"login_timout\"; valid keys here: "
          "listen, max_clients, login_timeout, ledger, ledger_heartbeat, shutdown_timeout, log_level, "
          "max_message_size, tcp_keepalive_idle, tcp_keepalive_interval, tcp_keepalive_count, queue_limit_total, tls, "
          "control_socket, relay",
          "6:1: instances.main.address: required key \"address\" is missing",
          "8:16: instances.main.idle_timeout: expected a duration with a unit (\"250ms\", "
          "\"30s\", \"10m\", \"2h\"), got \"10\"",
          "9:15: instances.main.max_waiting: expected an integer between 0 and 1000000, "
          "got 10.5",
          "11:1: instances.main.pg_ctl.data_dir: required key \"data_dir\" is missing",
          "12:11: instances.main.pg_ctl.os_user: expected a string, got an integer"));
}

TEST(ConfigErrorTest, ToStringOmitsUnknownParts) {
  EXPECT_EQ((ConfigError{"a.toml", 3, 7, "gateway.ledger", "bad"}).to_string(), "a.toml:3:7: gateway.ledger: bad");
  EXPECT_EQ((ConfigError{"a.toml", 3, 0, "gateway.ledger", "bad"}).to_string(), "a.toml:3: gateway.ledger: bad");
  EXPECT_EQ((ConfigError{"a.toml", 0, 0, "", "cannot read: Permission denied"}).to_string(),
            "a.toml: cannot read: Permission denied");
  EXPECT_EQ((ConfigError{"a.toml", 2, 1, "", "syntax"}).to_string(), "a.toml:2:1: syntax");

  ConfigLoadError error({ConfigError{"a.toml", 1, 1, "x", "one"}, ConfigError{"a.toml", 2, 1, "y", "two"}});
  EXPECT_STREQ(error.what(), "a.toml:1:1: x: one\na.toml:2:1: y: two");
}

}  // namespace
}  // namespace pgnap::config
