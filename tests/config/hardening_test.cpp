// The production-hardening keys of the configuration: [gateway.tls], an instance's tls,
// max_message_size and its units, TCP keepalive, log_level, shutdown_timeout,
// suspend_on_exit. Their defaults, what they accept, and each error with file, line, column
// and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;

// kMinimal plus a [gateway] table holding `line` (line 8).
std::string gateway_with(std::string_view line) { return minimal_plus("[gateway]\n" + std::string(line) + "\n"); }

// ---- [gateway.tls] ---------------------------------------------------------------------------

TEST(ConfigTlsTest, DisabledByDefaultWithNoFiles) {
  const TlsConfig& tls = parse(kMinimal).gateway.tls;
  EXPECT_EQ(tls.mode, "disable");
  EXPECT_EQ(tls.cert, "");
  EXPECT_EQ(tls.key, "");
  EXPECT_EQ(tls.ca, "");
}

TEST(ConfigTlsTest, EveryModeWithCertAndKeyLoads) {
  for (std::string mode : {"disable", "allow", "require"}) {
    const TlsConfig tls = parse(minimal_plus(R"(
[gateway.tls]
mode = ")" + mode + R"("
cert = "/etc/ssl/pgnap.crt"
key = "/etc/ssl/private/pgnap.key"
)"))
                              .gateway.tls;
    EXPECT_EQ(tls.mode, mode);
    EXPECT_EQ(tls.cert, "/etc/ssl/pgnap.crt");
    EXPECT_EQ(tls.key, "/etc/ssl/private/pgnap.key");
    EXPECT_EQ(tls.ca, "");
  }
}

TEST(ConfigTlsTest, RelativePathsResolveAgainstTheConfigDirectory) {
  const TlsConfig tls = parse(minimal_plus(R"(
[gateway.tls]
mode = "require"
cert = "tls/server.crt"
key = "./tls/../tls/server.key"
ca = "clients-ca.pem"
)"))
                            .gateway.tls;
  EXPECT_EQ(tls.cert, "/etc/pgnap/tls/server.crt");
  EXPECT_EQ(tls.key, "/etc/pgnap/tls/server.key");
  EXPECT_EQ(tls.ca, "/etc/pgnap/clients-ca.pem");
}

TEST(ConfigTlsTest, InlineAndDottedFormsAreTheSameTable) {
  EXPECT_EQ(parse(gateway_with(R"(tls = { mode = "allow", cert = "/c.pem", key = "/k.pem" })")).gateway.tls,
            (TlsConfig{"allow", "/c.pem", "/k.pem", ""}));
  EXPECT_EQ(parse(gateway_with("tls.mode = \"require\"\ntls.cert = \"/c.pem\"\ntls.key = \"/k.pem\"")).gateway.tls,
            (TlsConfig{"require", "/c.pem", "/k.pem", ""}));
}

TEST(ConfigTlsTest, FilesWithoutAModeStayDisabled) {
  // The files alone do not turn TLS on, and "disable" checks nothing about them.
  const TlsConfig tls = parse(minimal_plus("[gateway.tls]\ncert = \"/c.pem\"\n")).gateway.tls;
  EXPECT_EQ(tls.mode, "disable");
  EXPECT_EQ(tls.cert, "/c.pem");
  EXPECT_EQ(tls.key, "");
}

TEST(ConfigTlsTest, UnknownModeIsOneErrorNamingTheChoices) {
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\nmode = \"prefer\"\n")),
            "8:8: gateway.tls.mode: expected one of \"disable\", \"allow\", \"require\", got \"prefer\"");
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\nmode = \"REQUIRE\"\n")),
            "8:8: gateway.tls.mode: expected one of \"disable\", \"allow\", \"require\", got \"REQUIRE\"");
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\nmode = true\n")),
            "8:8: gateway.tls.mode: expected a string, got a boolean");
}

TEST(ConfigTlsTest, EnabledWithoutCertOrKeyPointsAtTheTable) {
  const std::string why = " (mode = \"require\" needs a certificate and its private key)";
  EXPECT_THAT(errors_of(minimal_plus("[gateway.tls]\nmode = \"require\"\n")),
              ElementsAre("7:1: gateway.tls.cert: required key \"cert\" is missing" + why,
                          "7:1: gateway.tls.key: required key \"key\" is missing" + why));
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\nmode = \"allow\"\ncert = \"/c.pem\"\n")),
            "7:1: gateway.tls.key: required key \"key\" is missing (mode = \"allow\" needs a certificate and "
            "its private key)");
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\nmode = \"require\"\nkey = \"/k.pem\"\n")),
            "7:1: gateway.tls.cert: required key \"cert\" is missing" + why);
  // An empty path is no path.
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\nmode = \"require\"\ncert = \"\"\nkey = \"/k.pem\"\n")),
            "7:1: gateway.tls.cert: required key \"cert\" is missing" + why);
  // A ca alone does not stand in for the certificate.
  EXPECT_EQ(errors_of(minimal_plus("[gateway.tls]\nmode = \"require\"\nca = \"/ca.pem\"\n")).size(), 2u);
}

TEST(ConfigTlsTest, MissingFilesOfAnInlineTablePointAtIt) {
  EXPECT_EQ(error_of(gateway_with(R"(tls = { mode = "require", cert = "/c.pem" })")),
            "8:7: gateway.tls.key: required key \"key\" is missing (mode = \"require\" needs a certificate and "
            "its private key)");
}

TEST(ConfigTlsTest, TypesAndUnknownKeys) {
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\ncert = 5\n")),
            "8:8: gateway.tls.cert: expected a path (a string), got an integer");
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\nca = [\"/a.pem\"]\n")),
            "8:6: gateway.tls.ca: expected a path (a string), got an array");
  EXPECT_EQ(error_of(minimal_plus("[gateway.tls]\ncertificate = \"/c.pem\"\n")),
            "8:1: gateway.tls.certificate: unknown key \"certificate\"; valid keys here: mode, cert, key, ca");
  EXPECT_EQ(error_of(gateway_with("tls = \"require\"")), "8:7: gateway.tls: expected a table, got a string");
}

TEST(ConfigTlsTest, AllErrorsOfTheTableAreReportedTogether) {
  EXPECT_THAT(errors_of(minimal_plus("[gateway.tls]\nmode = \"require\"\ncert = 1\nkey = \"/k.pem\"\nsni = 1\n")),
              ElementsAre("7:1: gateway.tls.cert: required key \"cert\" is missing (mode = \"require\" needs a "
                          "certificate and its private key)",
                          "9:8: gateway.tls.cert: expected a path (a string), got an integer",
                          "11:1: gateway.tls.sni: unknown key \"sni\"; valid keys here: mode, cert, key, ca"));
}

TEST(ConfigTlsTest, ErrorStringNamesTheFile) {
  try {
    (void)parse(minimal_plus("[gateway.tls]\nmode = \"on\"\n"));
    FAIL() << "expected an error";
  } catch (const ConfigLoadError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    const ConfigError& error = e.errors()[0];
    EXPECT_EQ(error.file, "pgnap.toml");
    EXPECT_EQ(error.line, 8u);
    EXPECT_EQ(error.column, 8u);
    EXPECT_EQ(error.key, "gateway.tls.mode");
    EXPECT_EQ(error.to_string(),
              "pgnap.toml:8:8: gateway.tls.mode: expected one of \"disable\", \"allow\", \"require\", got \"on\"");
  }
}

// ---- An instance's tls -----------------------------------------------------------------------

std::string instance_at(std::string_view address, std::string_view extra = "") {
  return doc(R"(
[instances.main]
backend = "pg_ctl"
address = ")") +
         std::string(address) + "\"\n" + std::string(extra) + "\n[instances.main.pg_ctl]\ndata_dir = \"/srv/pg\"\n";
}

TEST(ConfigInstanceTlsTest, DefaultIsDisableOnTheMachineAndPreferAcrossANetwork) {
  // Not stored: the default is resolved from the address where it is used.
  EXPECT_EQ(parse(instance_at("127.0.0.1:5432")).instances[0].tls, "");
  EXPECT_EQ(parse(instance_at("127.0.0.1:5432")).instances[0].effective_tls(), "disable");
  EXPECT_EQ(parse(instance_at("127.10.20.30:5432")).instances[0].effective_tls(), "disable");
  EXPECT_EQ(parse(instance_at("localhost:5432")).instances[0].effective_tls(), "disable");
  EXPECT_EQ(parse(instance_at("[::1]:5432")).instances[0].effective_tls(), "disable");
  EXPECT_EQ(parse(instance_at("/var/run/postgresql")).instances[0].effective_tls(), "disable");
  EXPECT_EQ(parse(instance_at("/var/run/postgresql/.s.PGSQL.5433")).instances[0].effective_tls(), "disable");

  EXPECT_EQ(parse(instance_at("10.0.0.5:5432")).instances[0].effective_tls(), "prefer");
  EXPECT_EQ(parse(instance_at("db.internal:5432")).instances[0].effective_tls(), "prefer");
  EXPECT_EQ(parse(instance_at("[2001:db8::1]:5432")).instances[0].effective_tls(), "prefer");
  EXPECT_EQ(parse(instance_at("0.0.0.0:5432")).instances[0].effective_tls(), "prefer");
  // Look-alikes of the loopback names are not on the machine.
  EXPECT_EQ(parse(instance_at("localhost.example.com:5432")).instances[0].effective_tls(), "prefer");
  EXPECT_EQ(parse(instance_at("128.0.0.1:5432")).instances[0].effective_tls(), "prefer");
}

// A host name that starts with the label "127" is a name to resolve, not the loopback
// network.
TEST(ConfigInstanceTlsTest, HostNameStartingWith127IsNotLoopback) {
  EXPECT_EQ(parse(instance_at("127.db.example.com:5432")).instances[0].effective_tls(), "prefer");
}

TEST(ConfigInstanceTlsTest, AnExplicitValueWinsOverTheDefault) {
  for (std::string mode : {"disable", "prefer", "require"}) {
    EXPECT_EQ(parse(instance_at("127.0.0.1:5432", "tls = \"" + mode + "\"")).instances[0].tls, mode);
    EXPECT_EQ(parse(instance_at("db.internal:5432", "tls = \"" + mode + "\"")).instances[0].tls, mode);
  }
}

TEST(ConfigInstanceTlsTest, OnlyTheBackendWordsAreAccepted) {
  const std::string expected = "expected one of \"disable\", \"prefer\", \"require\", got ";
  // "allow" is a [gateway.tls] mode, not an instance's.
  EXPECT_EQ(error_of(minimal_with("tls = \"allow\"")), "4:7: instances.main.tls: " + expected + "\"allow\"");
  EXPECT_EQ(error_of(minimal_with("tls = \"verify-full\"")),
            "4:7: instances.main.tls: " + expected + "\"verify-full\"");
  EXPECT_EQ(error_of(minimal_with("tls = \"\"")), "4:7: instances.main.tls: " + expected + "\"\"");
  EXPECT_EQ(error_of(minimal_with("tls = true")), "4:7: instances.main.tls: expected a string, got a boolean");
}

// ---- max_message_size ------------------------------------------------------------------------

std::uint64_t message_size(std::string_view value) {
  return parse(gateway_with("max_message_size = " + std::string(value))).gateway.max_message_size;
}

TEST(ConfigMessageSizeTest, DefaultIsPostgresqlsOwnLimitOf1GiB) {
  EXPECT_EQ(parse(kMinimal).gateway.max_message_size, kGiB);
  EXPECT_EQ(parse(kMinimal).gateway.max_message_size, 1073741824u);
}

TEST(ConfigMessageSizeTest, PostgresqlUnitsArePowersOf1024) {
  EXPECT_EQ(message_size("\"64kB\""), 64 * kKiB);
  EXPECT_EQ(message_size("\"16MB\""), 16 * kMiB);
  EXPECT_EQ(message_size("\"1GB\""), kGiB);
  EXPECT_EQ(message_size("\"64KiB\""), 64 * kKiB);
  EXPECT_EQ(message_size("\"16MiB\""), 16 * kMiB);
  EXPECT_EQ(message_size("\"1GiB\""), kGiB);
  EXPECT_EQ(message_size("\"1024MB\""), kGiB);
  EXPECT_EQ(message_size("\"1048576kB\""), kGiB);
}

TEST(ConfigMessageSizeTest, BytesAsAnIntegerAStringOrWithB) {
  EXPECT_EQ(message_size("1024"), 1024u);
  EXPECT_EQ(message_size("1073741824"), kGiB);
  EXPECT_EQ(message_size("\"65536\""), 65536u);
  EXPECT_EQ(message_size("\"2048B\""), 2048u);
  EXPECT_EQ(message_size("\"000000001024\""), 1024u);  // 12 digits, leading zeros
  // As postgresql.conf, spaces may separate the number and its unit.
  EXPECT_EQ(message_size("\"64 kB\""), 65536u);
  EXPECT_EQ(message_size("\"1  GB\""), kGiB);
}

TEST(ConfigMessageSizeTest, BoundsAre1KiBTo1GiB) {
  EXPECT_EQ(message_size("\"1kB\""), 1024u);
  EXPECT_EQ(error_of(gateway_with("max_message_size = 1023")),
            "8:20: gateway.max_message_size: expected a size between 1024 and 1073741824 bytes, got 1023");
  EXPECT_EQ(error_of(gateway_with("max_message_size = 0")),
            "8:20: gateway.max_message_size: expected a size between 1024 and 1073741824 bytes, got 0");
  EXPECT_EQ(error_of(gateway_with("max_message_size = \"1073741825\"")),
            "8:20: gateway.max_message_size: expected a size between 1024 and 1073741824 bytes, got 1073741825");
  EXPECT_EQ(error_of(gateway_with("max_message_size = \"2GB\"")),
            "8:20: gateway.max_message_size: expected a size between 1024 and 1073741824 bytes, got 2147483648");
  EXPECT_EQ(error_of(gateway_with("max_message_size = \"1025MiB\"")),
            "8:20: gateway.max_message_size: expected a size between 1024 and 1073741824 bytes, got 1074790400");
}

TEST(ConfigMessageSizeTest, RejectsWhatIsNotASize) {
  const std::string expected =
      "8:20: gateway.max_message_size: expected a size: bytes as an integer, or a string with PostgreSQL's units "
      "(\"64kB\", \"16MB\", \"1GB\"; 1kB = 1024 bytes), got ";
  for (std::string_view bad : {
           "\"64kb\"",           // units are case-sensitive, as in postgresql.conf
           "\"64KB\"",           //
           "\"16mb\"",           //
           "\"1.5MB\"",          // whole numbers only
           "\"MB\"",             // no number
           "\"\"",               //
           "\"-1024\"",          //
           "\"+1024\"",          //
           "\" 1024\"",          //
           "\"1TB\"",            // not a unit here
           "\"1kiB\"",           //
           "\"64k\"",            //
           "\"1000000000000\"",  // more than 12 digits
       }) {
    EXPECT_EQ(error_of(gateway_with("max_message_size = " + std::string(bad))), expected + std::string(bad));
  }
  EXPECT_EQ(error_of(gateway_with("max_message_size = -1")), expected + "-1");
  EXPECT_EQ(error_of(gateway_with("max_message_size = 65536.0")), expected + "65536.0");
  EXPECT_EQ(error_of(gateway_with("max_message_size = true")), expected + "true");
  EXPECT_EQ(error_of(gateway_with("max_message_size = [1024]")), expected + "an array");
}

// 17179869185 x 2^30 is 2^64 + 2^30: a multiplication that wrapped around would give exactly
// 1 GiB, inside the bounds.
TEST(ConfigMessageSizeTest, AHugeCountOfGigabytesIsRejectedNotWrapped) {
  EXPECT_EQ(error_of(gateway_with("max_message_size = \"17179869185GB\"")),
            "8:20: gateway.max_message_size: expected a size between 1024 and 1073741824 bytes, got "
            "\"17179869185GB\"");
  EXPECT_EQ(error_of(gateway_with("max_message_size = \"17179869184GB\"")),
            "8:20: gateway.max_message_size: expected a size between 1024 and 1073741824 bytes, got "
            "\"17179869184GB\"");
}

// ---- TCP keepalive ---------------------------------------------------------------------------

TEST(ConfigKeepaliveTest, DefaultsNoticeAVanishedClientWithinTwoMinutes) {
  const GatewayConfig& g = parse(kMinimal).gateway;
  EXPECT_EQ(g.tcp_keepalive_idle, seconds(60));
  EXPECT_EQ(g.tcp_keepalive_interval, seconds(10));
  EXPECT_EQ(g.tcp_keepalive_count, 6u);
}

TEST(ConfigKeepaliveTest, ValuesAreRead) {
  const GatewayConfig g = parse(minimal_plus(R"(
[gateway]
tcp_keepalive_idle = "5m"
tcp_keepalive_interval = "1500ms"
tcp_keepalive_count = 127
)"))
                              .gateway;
  EXPECT_EQ(g.tcp_keepalive_idle, minutes(5));
  EXPECT_EQ(g.tcp_keepalive_interval, std::chrono::milliseconds(1500));
  EXPECT_EQ(g.tcp_keepalive_count, 127u);
  EXPECT_EQ(parse(gateway_with("tcp_keepalive_count = 1")).gateway.tcp_keepalive_count, 1u);
}

TEST(ConfigKeepaliveTest, Errors) {
  EXPECT_EQ(error_of(gateway_with("tcp_keepalive_idle = \"0s\"")),
            "8:22: gateway.tcp_keepalive_idle: expected a duration greater than 0 and at most 365d, got \"0s\"");
  EXPECT_EQ(error_of(gateway_with("tcp_keepalive_idle = 60")),
            "8:22: gateway.tcp_keepalive_idle: expected a duration with a unit (\"250ms\", \"30s\", \"10m\", "
            "\"2h\"), got 60");
  EXPECT_EQ(error_of(gateway_with("tcp_keepalive_interval = \"0ms\"")),
            "8:26: gateway.tcp_keepalive_interval: expected a duration greater than 0 and at most 365d, got "
            "\"0ms\"");
  EXPECT_EQ(error_of(gateway_with("tcp_keepalive_interval = \"10\"")),
            "8:26: gateway.tcp_keepalive_interval: expected a duration with a unit (\"250ms\", \"30s\", \"10m\", "
            "\"2h\"), got \"10\"");
  EXPECT_EQ(error_of(gateway_with("tcp_keepalive_count = 0")),
            "8:23: gateway.tcp_keepalive_count: expected an integer between 1 and 127, got 0");
  EXPECT_EQ(error_of(gateway_with("tcp_keepalive_count = 128")),
            "8:23: gateway.tcp_keepalive_count: expected an integer between 1 and 127, got 128");
  EXPECT_EQ(error_of(gateway_with("tcp_keepalive_count = \"6\"")),
            "8:23: gateway.tcp_keepalive_count: expected an integer between 1 and 127, got \"6\"");
}

// ---- log_level, shutdown_timeout, suspend_on_exit ------------------------------------------

TEST(ConfigLogLevelTest, TheFourLevelsAndNothingElse) {
  for (std::string level : {"debug", "info", "warning", "error"}) {
    EXPECT_EQ(parse(gateway_with("log_level = \"" + level + "\"")).gateway.log_level, level);
  }
  const std::string expected =
      "8:13: gateway.log_level: expected one of \"debug\", \"info\", \"warning\", \"error\", got ";
  EXPECT_EQ(error_of(gateway_with("log_level = \"warn\"")), expected + "\"warn\"");
  EXPECT_EQ(error_of(gateway_with("log_level = \"INFO\"")), expected + "\"INFO\"");
  EXPECT_EQ(error_of(gateway_with("log_level = \"\"")), expected + "\"\"");
}

TEST(ConfigShutdownTimeoutTest, DefaultZeroAndBounds) {
  EXPECT_EQ(parse(kMinimal).gateway.shutdown_timeout, seconds(30));
  EXPECT_EQ(parse(gateway_with("shutdown_timeout = \"0s\"")).gateway.shutdown_timeout, seconds(0));
  EXPECT_EQ(parse(gateway_with("shutdown_timeout = \"2m\"")).gateway.shutdown_timeout, minutes(2));
  EXPECT_EQ(parse(gateway_with("shutdown_timeout = \"365d\"")).gateway.shutdown_timeout, std::chrono::hours(365 * 24));
  EXPECT_EQ(error_of(gateway_with("shutdown_timeout = \"366d\"")),
            "8:20: gateway.shutdown_timeout: expected a duration of at most 365d, got \"366d\"");
  EXPECT_EQ(error_of(gateway_with("shutdown_timeout = 30")),
            "8:20: gateway.shutdown_timeout: expected a duration with a unit (\"250ms\", \"30s\", \"10m\", \"2h\"), "
            "got 30");
  EXPECT_EQ(error_of(gateway_with("shutdown_timeout = \"-1s\"")),
            "8:20: gateway.shutdown_timeout: expected a duration with a unit (\"250ms\", \"30s\", \"10m\", \"2h\"), "
            "got \"-1s\"");
}

TEST(ConfigSuspendOnExitTest, PerInstanceAndOffByDefault) {
  const Config config = parse(R"(
[instances.a]
databases = ["a"]
backend = "pg_ctl"
address = "127.0.0.1:5432"
suspend_on_exit = true
pg_ctl.data_dir = "/srv/a"

[instances.b]
backend = "pg_ctl"
address = "127.0.0.1:5433"
pg_ctl.data_dir = "/srv/b"

[instances.c]
databases = ["c"]
backend = "pg_ctl"
address = "127.0.0.1:5434"
suspend_on_exit = false
pg_ctl.data_dir = "/srv/c"
)");
  ASSERT_EQ(config.instances.size(), 3u);
  EXPECT_TRUE(config.instances[0].suspend_on_exit);
  EXPECT_FALSE(config.instances[1].suspend_on_exit);
  EXPECT_FALSE(config.instances[2].suspend_on_exit);
  EXPECT_EQ(error_of(minimal_with("suspend_on_exit = 1")),
            "4:19: instances.main.suspend_on_exit: expected true or false, got 1");
}

// ---- Idle sessions (pooled apps) ----------------------------------------------------------

TEST(ConfigIdleSessionTest, DefaultFollowsIdleTimeoutZeroDisablesAndListenersAreKept) {
  const InstanceConfig plain = parse(kMinimal).instances.at(0);
  EXPECT_FALSE(plain.idle_session_timeout.has_value()) << "unset, not stored";
  EXPECT_EQ(plain.effective_idle_session_timeout(), plain.idle_timeout);
  EXPECT_FALSE(plain.close_listeners);
  EXPECT_EQ(parse(minimal_with("idle_timeout = \"3m\"")).instances.at(0).effective_idle_session_timeout(),
            std::chrono::minutes(3));
  EXPECT_EQ(parse(minimal_with("idle_session_timeout = \"0s\"")).instances.at(0).effective_idle_session_timeout(),
            Duration(0));
  EXPECT_TRUE(parse(minimal_with("close_listeners = true")).instances.at(0).close_listeners);
  EXPECT_THAT(error_of(minimal_with("idle_session_timeout = \"-1s\"")),
              HasSubstr("instances.main.idle_session_timeout"));
}

}  // namespace
}  // namespace pgnap::config
