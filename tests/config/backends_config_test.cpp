// The exec and systemd backends' tables: every key, its default, its errors, and what
// `pgnap check` shows for them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;

TEST(ExecConfigTest, EveryKey) {
  const Config config = parse(R"(
[instances.rds]
backend = "exec"
address = "db.example.com:5432"

[instances.rds.exec]
start = ["/usr/bin/aws", "rds", "start-db-instance", "--db-instance-identifier", "shop"]
stop = ["/usr/bin/aws", "rds", "stop-db-instance", "--db-instance-identifier", "shop"]
status = ["sh", "-c", "aws rds describe-db-instances | grep -q available"]
env = { AWS_PROFILE = "pgnap", AWS_REGION = "eu-west-3" }
os_user = "pgnap"
start_timeout = "15m"
stop_timeout = "5m"
status_timeout = "30s"
pid_file = "/srv/pg/data/postmaster.pid"
cgroup = "/sys/fs/cgroup/system.slice/docker-1234.scope"
)");
  const ExecConfig& e = config.instances.at(0).exec;
  EXPECT_THAT(e.start, ElementsAre("/usr/bin/aws", "rds", "start-db-instance", "--db-instance-identifier", "shop"));
  EXPECT_THAT(e.stop, ElementsAre("/usr/bin/aws", "rds", "stop-db-instance", "--db-instance-identifier", "shop"));
  EXPECT_THAT(e.status, ElementsAre("sh", "-c", "aws rds describe-db-instances | grep -q available"));
  EXPECT_THAT(e.env, ElementsAre(std::pair<std::string, std::string>("AWS_PROFILE", "pgnap"),
                                 std::pair<std::string, std::string>("AWS_REGION", "eu-west-3")));
  EXPECT_EQ(e.os_user, "pgnap");
  EXPECT_EQ(e.start_timeout, std::chrono::minutes(15));
  EXPECT_EQ(e.stop_timeout, std::chrono::minutes(5));
  EXPECT_EQ(e.status_timeout, seconds(30));
  EXPECT_EQ(e.pid_file, "/srv/pg/data/postmaster.pid");
  EXPECT_EQ(e.cgroup, "/sys/fs/cgroup/system.slice/docker-1234.scope");
}

TEST(ExecConfigTest, DefaultsAndStartTimeoutFollowsWakeTimeout) {
  const Config config = parse(R"(
[instances.main]
backend = "exec"
address = "127.0.0.1:5432"
wake_timeout = "90s"

[instances.main.exec]
start = ["docker", "start", "pg"]
stop = ["docker", "stop", "pg"]
)");
  const ExecConfig& e = config.instances.at(0).exec;
  EXPECT_TRUE(e.status.empty());
  EXPECT_TRUE(e.env.empty());
  EXPECT_EQ(e.os_user, "");
  EXPECT_EQ(e.start_timeout, seconds(0)) << "unset, not stored";
  EXPECT_EQ(config.instances.at(0).exec_start_timeout(), seconds(90)) << "unset: the instance's wake_timeout";
  EXPECT_EQ(e.stop_timeout, seconds(60));
  EXPECT_EQ(e.status_timeout, seconds(10));
}

TEST(ExecConfigTest, Errors) {
  const std::string head = doc(R"(
[instances.main]
backend = "exec"
address = "127.0.0.1:5432"
[instances.main.exec]
)");
  EXPECT_EQ(error_of(head + "start = \"docker start pg\"\nstop = [\"true\"]\n"),
            "5:9: instances.main.exec.start: expected a command as an array of strings (e.g. "
            "[\"/usr/bin/docker\", \"start\", \"db\"]; for a shell, [\"sh\", \"-c\", \"...\"]), got a string");
  EXPECT_EQ(error_of(head + "start = []\nstop = [\"true\"]\n"),
            "5:9: instances.main.exec.start: expected a command (at least the program to run), got an empty array");
  EXPECT_THAT(error_of(head + "start = [\"docker\", 5]\nstop = [\"true\"]\n"),
              HasSubstr("instances.main.exec.start: expected a non-empty string in the command"));
  EXPECT_THAT(error_of(head + "start = [\"docker\", \"\"]\nstop = [\"true\"]\n"),
              HasSubstr("instances.main.exec.start: expected a non-empty string in the command"));
  EXPECT_EQ(error_of(head + "start = [\"true\"]\n"), "4:1: instances.main.exec.stop: required key \"stop\" is missing");
  EXPECT_EQ(error_of(head + "start = [\"true\"]\nstop = [\"true\"]\nenv = { PORT = 5432 }\n"),
            "7:16: instances.main.exec.env.PORT: expected a string, got an integer");
  EXPECT_THAT(error_of(head + "start = [\"true\"]\nstop = [\"true\"]\nenv = [\"A=b\"]\n"),
              HasSubstr("instances.main.exec.env: expected a table of environment variables"));
  EXPECT_THAT(error_of(head + "start = [\"true\"]\nstop = [\"true\"]\nstart_timeout = \"0s\"\n"),
              HasSubstr("instances.main.exec.start_timeout"));
  EXPECT_THAT(error_of(head + "start = [\"true\"]\nstop = [\"true\"]\ndata_dir = \"/srv\"\n"),
              HasSubstr("unknown key \"data_dir\"; valid keys here: start, stop, status, env, os_user, "
                        "start_timeout, stop_timeout, status_timeout"));
}

TEST(SystemdConfigTest, UnitGetsTheServiceSuffixTheDriverUses) {
  auto unit_of = [](const std::string& unit) {
    return parse(
               "[instances.main]\nbackend = \"systemd\"\naddress = \"/var/run/postgresql\"\n"
               "[instances.main.systemd]\nunit = \"" +
               unit + "\"\n")
        .instances.at(0)
        .systemd.unit;
  };
  EXPECT_EQ(unit_of("postgresql@15-main"), "postgresql@15-main.service");
  EXPECT_EQ(unit_of("postgresql@15-main.service"), "postgresql@15-main.service");
  EXPECT_EQ(unit_of("postgresql.socket"), "postgresql.socket");
  // A dot that is not a unit suffix: still a service, as the driver will ask systemd for it.
  EXPECT_EQ(unit_of("postgresql@15.4-main"), "postgresql@15.4-main.service");
}

TEST(SystemdConfigTest, DefaultsAndErrors) {
  const Config config = parse(R"(
[instances.main]
backend = "systemd"
address = "/var/run/postgresql"
[instances.main.systemd]
unit = "postgresql@15-main"
)");
  EXPECT_EQ(config.instances.at(0).systemd.stop_timeout, seconds(90));

  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "systemd"
address = "/var/run/postgresql"
[instances.main.systemd]
stop_timeout = "2m"
)"),
            "4:1: instances.main.systemd.unit: required key \"unit\" is missing");
  EXPECT_EQ(error_of(R"(
[instances.main]
backend = "systemd"
address = "/var/run/postgresql"
)"),
            "1:1: instances.main.systemd: required key \"systemd\" is missing (backend = \"systemd\" needs a "
            "[instances.main.systemd] table with at least unit)");
  EXPECT_THAT(error_of(R"(
[instances.main]
backend = "systemd"
address = "/var/run/postgresql"
[instances.main.systemd]
unit = ""
)"),
              HasSubstr("instances.main.systemd.unit"));
}

TEST(DescribeConfigTest, ShowsExecCommandsAndSystemdCalls) {
  const Config config = parse(R"(
[instances.site]
databases = ["site"]
backend = "exec"
address = "127.0.0.1:5433"
wake_timeout = "2m"
[instances.site.exec]
start = ["docker", "start", "site db"]
stop = ["docker", "stop", "site db"]
env = { DOCKER_HOST = "unix:///run/docker.sock" }
os_user = "deploy"

[instances.main]
backend = "systemd"
address = "/var/run/postgresql"
[instances.main.systemd]
unit = "postgresql@15-main"
)");
  const std::string text = describe_config(config);
  EXPECT_THAT(text, HasSubstr("  backend           exec\n"));
  EXPECT_THAT(text, HasSubstr("    start: docker start 'site db'  (timeout 2m)\n"));
  EXPECT_THAT(text, HasSubstr("    stop: docker stop 'site db'  (timeout 1m)\n"));
  EXPECT_THAT(text, HasSubstr("    status: (none: the readiness probe decides)\n"));
  EXPECT_THAT(text, HasSubstr("    env: DOCKER_HOST=unix:///run/docker.sock\n"));
  EXPECT_THAT(text, HasSubstr("    as OS user: deploy (when pgnap runs as root)\n"));
  EXPECT_THAT(text, HasSubstr("  backend           systemd\n"));
  EXPECT_THAT(text, HasSubstr("Manager.StartUnit(\"postgresql@15-main.service\", \"replace\")"));
  EXPECT_THAT(text, HasSubstr("Manager.StopUnit(\"postgresql@15-main.service\", \"replace\")"));
  EXPECT_THAT(text, HasSubstr("waiting for its job (timeout 90s)\n"));
  EXPECT_THAT(text, ::testing::ContainsRegex("\n  site +site\n"));
}

TEST(SystemdUnitName, AServiceSuffixIsAddedToABareName) {
  EXPECT_EQ(systemd_unit_name("postgresql@15-main"), "postgresql@15-main.service");
  EXPECT_EQ(systemd_unit_name("postgresql"), "postgresql.service");
  // A dot inside the name is not a suffix.
  EXPECT_EQ(systemd_unit_name("postgresql@15.4-main"), "postgresql@15.4-main.service");
}

TEST(SystemdUnitName, AUnitSuffixIsKept) {
  EXPECT_EQ(systemd_unit_name("postgresql@15-main.service"), "postgresql@15-main.service");
  EXPECT_EQ(systemd_unit_name("postgresql.socket"), "postgresql.socket");
  EXPECT_EQ(systemd_unit_name("databases.target"), "databases.target");
}

}  // namespace
}  // namespace pgnap::config
