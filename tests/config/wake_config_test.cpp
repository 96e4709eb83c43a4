// The keys of issue 16: [gateway] control_socket, [instances.NAME.wake] (ignore rules, keep-warm
// windows, time zone) and [instances.NAME.maintenance]: their defaults, every error with its
// exact text, line and key, their reload classes, and what `pgnap check` says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using namespace test_util;
using namespace std::chrono;

system_clock::time_point utc_time(int y, unsigned m, unsigned d, int hh = 0) {
  return sys_days{year{y} / month{m} / day{d}} + hours{hh};
}

WakeIgnoreRule rule(std::string user, std::string application_name, std::string address) {
  return WakeIgnoreRule{std::move(user), std::move(application_name), std::move(address)};
}

// ---- Defaults and values ------------------------------------------------------------------

TEST(ConfigWakeTest, DefaultsAreNoRulesNoWindowsUtcNoMaintenanceAndTheRunSocket) {
  const Config config = parse(kMinimal);
  EXPECT_EQ(config.gateway.control_socket, "/run/pgnap/control.sock");
  const InstanceConfig& i = config.instances.at(0);
  EXPECT_THAT(i.wake.ignore, IsEmpty());
  EXPECT_THAT(i.wake.awake_during, IsEmpty());
  EXPECT_EQ(i.wake.time_zone, "UTC");
  EXPECT_EQ(i.maintenance.every, Duration(0));
  EXPECT_EQ(i.maintenance.at, "");
  EXPECT_EQ(i.maintenance.stay_awake, minutes(15));
  EXPECT_THAT(i.maintenance.command, IsEmpty());
  EXPECT_EQ(i.maintenance.command_timeout, hours(1));
  EXPECT_EQ(i.maintenance.os_user, "");
  EXPECT_THAT(i.maintenance.env, IsEmpty());
}

constexpr std::string_view kFull = R"(
[gateway]
control_socket = "/run/pgnap//control.sock"

[instances.main.wake]
ignore = [ { user = "monitor" }, { application_name = "uptime*" }, { address = "10.0.0.0/8", user = "x" } ]
awake_during = ["Mon-Fri 08:00-18:00", "Sat 10:00-12:30"]
time_zone = "Europe/Berlin"

[instances.main.maintenance]
every = "7d"
at = "03:00"
stay_awake = "15m"
command = ["vacuumdb", "--all", "--analyze-in-stages"]
command_timeout = "1h"
os_user = "postgres"
env = { PGUSER = "postgres" }
)";

TEST(ConfigWakeTest, EveryKeyIsRead) {
  const Config config = parse(minimal_plus(kFull));
  EXPECT_EQ(config.gateway.control_socket, "/run/pgnap/control.sock") << "normalised";
  const InstanceConfig& i = config.instances.at(0);
  EXPECT_THAT(i.wake.ignore,
              ElementsAre(rule("monitor", "", ""), rule("", "uptime*", ""), rule("x", "", "10.0.0.0/8")));
  EXPECT_THAT(i.wake.awake_during, ElementsAre("Mon-Fri 08:00-18:00", "Sat 10:00-12:30"));
  EXPECT_EQ(i.wake.time_zone, "Europe/Berlin");
  EXPECT_EQ(i.maintenance.every, hours(7 * 24));
  EXPECT_EQ(i.maintenance.at, "03:00");
  EXPECT_EQ(i.maintenance.stay_awake, minutes(15));
  EXPECT_THAT(i.maintenance.command, ElementsAre("vacuumdb", "--all", "--analyze-in-stages"));
  EXPECT_EQ(i.maintenance.command_timeout, hours(1));
  EXPECT_EQ(i.maintenance.os_user, "postgres");
  EXPECT_THAT(i.maintenance.env, ElementsAre(std::pair<std::string, std::string>("PGUSER", "postgres")));
}

TEST(ConfigWakeTest, RulesAsAnArrayOfTablesAndEmptyArrays) {
  const InstanceConfig i = parse(minimal_plus(R"(
[[instances.main.wake.ignore]]
user = "monitor"
address = "unix"

[[instances.main.wake.ignore]]
address = "::1"
)"))
                               .instances.at(0);
  EXPECT_THAT(i.wake.ignore, ElementsAre(rule("monitor", "", "unix"), rule("", "", "::1")));
  const InstanceConfig empty =
      parse(minimal_plus("[instances.main.wake]\nignore = []\nawake_during = []\n")).instances.at(0);
  EXPECT_THAT(empty.wake.ignore, IsEmpty());
  EXPECT_THAT(empty.wake.awake_during, IsEmpty());
}

TEST(ConfigWakeTest, NoSocketAndMaintenanceWithNothingToDoAreFine) {
  EXPECT_EQ(parse(minimal_plus("[gateway]\ncontrol_socket = \"\"\n")).gateway.control_socket, "");
  // A wake that only lets autovacuum run: no command, and even no stay beyond min_awake.
  const InstanceConfig i =
      parse(minimal_plus("[instances.main.maintenance]\nevery = \"6d\"\nstay_awake = \"0s\"\n")).instances.at(0);
  EXPECT_EQ(i.maintenance.every, hours(6 * 24));
  EXPECT_EQ(i.maintenance.stay_awake, Duration(0));
  EXPECT_THAT(i.maintenance.command, IsEmpty());
  // `at` = "" is the same as no `at`, with or without `every`.
  EXPECT_EQ(parse(minimal_plus("[instances.main.maintenance]\nat = \"\"\n")).instances.at(0).maintenance.at, "");
}

// ---- Errors, with their line, column and key --------------------------------------------------

TEST(ConfigWakeErrorTest, UnknownKeysInARuleAndInTheSections) {
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = [ { usr = \"monitor\" } ]\n")),
            "8:14: instances.main.wake.ignore[0].usr: unknown key \"usr\"; valid keys here: user, application_name, "
            "address");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nawake = [\"daily 08:00-09:00\"]\n")),
            "8:1: instances.main.wake.awake: unknown key \"awake\"; valid keys here: ignore, awake_during, time_zone");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\nevery = \"7d\"\ncommmand = [\"vacuumdb\"]\n")),
            "9:1: instances.main.maintenance.commmand: unknown key \"commmand\"; valid keys here: every, at, "
            "stay_awake, command, command_timeout, os_user, env");
}

TEST(ConfigWakeErrorTest, RulesMustSetAFieldAndBeTables) {
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = [ { user = \"a\" }, {} ]\n")),
            "8:28: instances.main.wake.ignore[1]: an ignore rule must set user, application_name or address");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = [ \"monitor\" ]\n")),
            "8:12: instances.main.wake.ignore[0]: expected a rule (a table such as { user = \"monitor\" }), got a "
            "string");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = { user = \"monitor\" }\n")),
            "8:10: instances.main.wake.ignore: expected an array of rules (e.g. [{ user = \"monitor\" }, { "
            "application_name = \"uptime*\" }]), got a table");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = [ { user = \"\" } ]\n")),
            "8:21: instances.main.wake.ignore[0].user: expected a non-empty string, got \"\"");
}

TEST(ConfigWakeErrorTest, BadAddressesInRules) {
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = [ { address = \"10.0.0.0/33\" } ]\n")),
            "8:24: instances.main.wake.ignore[0].address: expected a prefix length between 0 and 32 in "
            "\"10.0.0.0/33\", got \"33\"");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = [ { address = \"fd00::/200\" } ]\n")),
            "8:24: instances.main.wake.ignore[0].address: expected a prefix length between 0 and 128 in "
            "\"fd00::/200\", got \"200\"");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nignore = [ { address = \"db.internal\" } ]\n")),
            "8:24: instances.main.wake.ignore[0].address: expected \"unix\", an IP address or a CIDR such as "
            "\"10.0.0.0/8\" or \"fd00::/8\", got \"db.internal\"");
}

TEST(ConfigWakeErrorTest, BadWindowsEachNamedAtTheirLine) {
  EXPECT_THAT(errors_of(minimal_plus(R"(
[instances.main.wake]
awake_during = [
  "Mon-Fri 08:00-18:00",
  "Mnd 08:00-10:00",
  "Sat 25:00-26:00",
  7,
]
)")),
              ElementsAre("10:3: instances.main.wake.awake_during: unknown day or day range \"Mnd\" in \"Mnd "
                          "08:00-10:00\": days are Mon, Tue, Wed, Thu, Fri, Sat, Sun (\"Mon-Fri\", \"Sat,Sun\"), "
                          "or \"daily\"",
                          "11:3: instances.main.wake.awake_during: expected times HH:MM (00:00 to 23:59; 24:00 as "
                          "an end), got \"25:00\" in \"Sat 25:00-26:00\"",
                          "12:3: instances.main.wake.awake_during: expected a window (a string such as \"Mon-Fri "
                          "08:00-18:00\"), got an integer"));
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\nawake_during = \"Mon-Fri 08:00-18:00\"\n")),
            "8:16: instances.main.wake.awake_during: expected an array of windows (e.g. [\"Mon-Fri 08:00-18:00\", "
            "\"Sat 10:00-12:30\"]), got a string");
}

TEST(ConfigWakeErrorTest, UnknownTimeZone) {
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\ntime_zone = \"Europe/Berln\"\n")),
            "8:13: instances.main.wake.time_zone: unknown time zone \"Europe/Berln\" (IANA names, from "
            "/usr/share/zoneinfo)");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.wake]\ntime_zone = \"/etc/localtime\"\n")),
            "8:13: instances.main.wake.time_zone: unknown time zone \"/etc/localtime\" (IANA names, from "
            "/usr/share/zoneinfo)");
}

TEST(ConfigWakeErrorTest, MaintenanceAtMustBeHhMmAndNeedsEvery) {
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\nevery = \"7d\"\nat = \"3am\"\n")),
            "9:6: instances.main.maintenance.at: expected a time of day \"HH:MM\" (00:00 to 23:59), got \"3am\"");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\nat = \"03:00\"\n")),
            "8:6: instances.main.maintenance.at: maintenance.at needs maintenance.every (how often to wake, e.g. "
            "\"7d\")");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\nevery = \"0s\"\nat = \"03:00\"\n")),
            "9:6: instances.main.maintenance.at: maintenance.at needs maintenance.every (how often to wake, e.g. "
            "\"7d\")");
}

TEST(ConfigWakeErrorTest, MaintenanceBounds) {
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\nevery = \"7d\"\ncommand_timeout = \"0s\"\n")),
            "9:19: instances.main.maintenance.command_timeout: expected a duration greater than 0 and at most 365d, "
            "got \"0s\"");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\nstay_awake = \"2d\"\n")),
            "8:14: instances.main.maintenance.stay_awake: expected a duration of at most 1d, got \"2d\"");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\nevery = 7\n")),
            "8:9: instances.main.maintenance.every: expected a duration with a unit (\"250ms\", \"30s\", \"10m\", "
            "\"2h\"), got 7");
  EXPECT_EQ(error_of(minimal_plus("[instances.main.maintenance]\ncommand = []\n")),
            "8:11: instances.main.maintenance.command: expected a command (at least the program to run), got an "
            "empty array");
}

TEST(ConfigWakeErrorTest, ControlSocketMustBeAbsoluteAndShortEnough) {
  EXPECT_EQ(error_of("[gateway]\ncontrol_socket = \"run/control.sock\"\n" + doc(kMinimal)),
            "2:18: gateway.control_socket: expected an absolute path (or \"\" for none), got \"run/control.sock\"");
  const std::string long_path = "/" + std::string(120, 'x');
  EXPECT_EQ(error_of("[gateway]\ncontrol_socket = \"" + long_path + "\"\n" + doc(kMinimal)),
            "2:18: gateway.control_socket: the Unix socket path \"" + long_path +
                "\" is too long (121 bytes; the kernel allows at most 107)");
  EXPECT_EQ(error_of("[gateway]\ncontrol_socket = false\n" + doc(kMinimal)),
            "2:18: gateway.control_socket: expected a path (a string), got a boolean");
}

// ---- Reload -----------------------------------------------------------------------------------

std::vector<std::string> changes(const Config& running, const Config& next) {
  std::vector<std::string> out;
  for (const ConfigChange& c : diff_config(running, next)) {
    out.push_back(c.key + " " + c.what + (c.needs_restart ? " (restart)" : " (live)"));
  }
  return out;
}

// kFull after kMinimal, with the first occurrence of each `from` replaced by its `to`.
std::string full_with(std::initializer_list<std::pair<std::string_view, std::string_view>> edits) {
  std::string text = minimal_plus(kFull);
  for (auto [from, to] : edits) {
    const std::size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  return text;
}

TEST(ConfigWakeReloadTest, WakeAndMaintenanceApplyLiveTheControlSocketNeedsARestart) {
  const Config running = parse(minimal_plus(kFull));
  auto change_of = [&running](std::string_view from, std::string_view to) {
    return changes(running, parse(full_with({{from, to}})));
  };
  EXPECT_THAT(changes(running, parse(minimal_plus(kFull))), IsEmpty());
  EXPECT_THAT(change_of("user = \"monitor\"", "user = \"nagios\""),
              ElementsAre("instances.main.wake.ignore changed (live)"));
  EXPECT_THAT(change_of("\"Sat 10:00-12:30\"", "\"Sat 10:00-13:00\""),
              ElementsAre("instances.main.wake.awake_during changed (live)"));
  EXPECT_THAT(change_of("Europe/Berlin", "America/New_York"),
              ElementsAre("instances.main.wake.time_zone changed (live)"));
  EXPECT_THAT(change_of("every = \"7d\"", "every = \"6d\""),
              ElementsAre("instances.main.maintenance.every changed (live)"));
  EXPECT_THAT(change_of("at = \"03:00\"", "at = \"04:00\""),
              ElementsAre("instances.main.maintenance.at changed (live)"));
  EXPECT_THAT(change_of("stay_awake = \"15m\"", "stay_awake = \"1h\""),
              ElementsAre("instances.main.maintenance.stay_awake changed (live)"));
  EXPECT_THAT(change_of("\"--analyze-in-stages\"", "\"--analyze\""),
              ElementsAre("instances.main.maintenance.command changed (live)"));
  EXPECT_THAT(change_of("command_timeout = \"1h\"", "command_timeout = \"2h\""),
              ElementsAre("instances.main.maintenance.command_timeout changed (live)"));
  EXPECT_THAT(change_of("os_user = \"postgres\"", "os_user = \"vacuum\""),
              ElementsAre("instances.main.maintenance.os_user changed (live)"));
  EXPECT_THAT(change_of("PGUSER = \"postgres\"", "PGUSER = \"vacuum\""),
              ElementsAre("instances.main.maintenance.env changed (live)"));
  EXPECT_THAT(change_of("/run/pgnap//control.sock", "/run/pgnap/other.sock"),
              ElementsAre("gateway.control_socket changed (restart)"));
}

TEST(ConfigWakeReloadTest, MergeTakesWakeAndMaintenanceAndKeepsTheRunningSocket) {
  const Config running = parse(minimal_plus(kFull));
  const Config next = parse(full_with({{"/run/pgnap//control.sock", "/tmp/c.sock"},
                                       {"Europe/Berlin", "America/New_York"},
                                       {"every = \"7d\"", "every = \"1d\""}}));
  const Config merged = merge_live(running, next);
  EXPECT_EQ(merged.gateway.control_socket, "/run/pgnap/control.sock");
  EXPECT_EQ(merged.instances.at(0).wake.time_zone, "America/New_York");
  EXPECT_EQ(merged.instances.at(0).maintenance.every, hours(24));
  const InstanceConfig instance = merge_live(running.instances.at(0), next.instances.at(0));
  EXPECT_EQ(instance.wake, next.instances.at(0).wake);
  EXPECT_EQ(instance.maintenance, next.instances.at(0).maintenance);
}

// ---- pgnap check --------------------------------------------------------------------------------

TEST(ConfigWakeCheckTest, DefaultsSayNoneAndOff) {
  const std::string text = describe_config(parse(kMinimal), utc_time(2026, 3, 2, 12));
  EXPECT_THAT(text, HasSubstr("  control_socket    /run/pgnap/control.sock (pgnap status, wake, sleep, reload)\n"));
  EXPECT_THAT(text, HasSubstr("  wake ignores      none (every client may wake it)\n"
                              "  keep-warm         none (awake_during)\n"
                              "  maintenance       off (every = 0s)\n"));
  EXPECT_THAT(describe_config(parse(minimal_plus("[gateway]\ncontrol_socket = \"\"\n")), utc_time(2026, 3, 2)),
              HasSubstr("  control_socket    none (pgnap status, wake, sleep and reload cannot reach it)\n"));
}

TEST(ConfigWakeCheckTest, RulesWindowsWithTheNextStartAndMaintenance) {
  // Saturday 2026-03-07 13:00 UTC is 14:00 CET: after Saturday's window, so Monday's is next.
  const std::string text = describe_config(parse(minimal_plus(kFull)), utc_time(2026, 3, 7, 13));
  EXPECT_THAT(text, HasSubstr("  wake ignores      user = \"monitor\"\n"
                              "                    application_name = \"uptime*\"\n"
                              "                    user = \"x\", address = \"10.0.0.0/8\"\n"
                              "  keep-warm         Mon-Fri 08:00-18:00, Sat 10:00-12:30 (Europe/Berlin)\n"
                              "  keep-warm next    2026-03-09 08:00:00 CET to 2026-03-09 18:00:00 CET\n"
                              "  maintenance       after 7d asleep, woken at the next 03:00 (Europe/Berlin), then "
                              "awake at least 15m\n"
                              "  maintenance cmd   vacuumdb --all --analyze-in-stages  (timeout 1h, as OS user "
                              "postgres when pgnap runs as root)\n"
                              "  maintenance env   PGUSER=postgres\n"));
  // Inside a window: until when.
  EXPECT_THAT(describe_config(parse(minimal_plus(kFull)), utc_time(2026, 3, 7, 10)),
              HasSubstr("  keep-warm now     in a window, awake until 2026-03-07 12:30:00 CET\n"));
}

TEST(ConfigWakeCheckTest, MaintenanceWithoutAtOrCommand) {
  const std::string text = describe_config(parse(minimal_plus("[instances.main.maintenance]\nevery = \"6d\"\n")),
                                           utc_time(2026, 3, 2));
  EXPECT_THAT(text, HasSubstr("  maintenance       after 6d asleep, woken at once, then awake at least 15m\n"
                              "  maintenance cmd   none\n"));
  EXPECT_THAT(text, Not(HasSubstr("maintenance env")));
}

}  // namespace
}  // namespace pgnap::config
