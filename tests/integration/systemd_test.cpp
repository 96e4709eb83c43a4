// The systemd backend against a real D-Bus: a private dbus-daemon standing in for the system
// bus, and fake_systemd (fake_systemd.cpp) on it owning org.freedesktop.systemd1 and running
// pg_ctl for one unit. pgnap reaches it through $DBUS_SYSTEM_BUS_ADDRESS, as it would reach
// the real one at /run/dbus/system_bus_socket: the same sd-bus calls, the same signals.
#include "tests/integration/harness.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A shell command line for argv (run by fake_systemd with sh -c).
std::string sh_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + sh_quote(a);
  return line;
}

std::string dbus_daemon_binary() {
  if (::access("/usr/bin/dbus-daemon", X_OK) == 0) return "/usr/bin/dbus-daemon";
  return "dbus-daemon";
}

// A dbus-daemon of the test's own, configured as a system bus that allows everything, on a
// Unix socket in its own directory.
class PrivateSystemBus {
 public:
  PrivateSystemBus() {
    const std::string config = dir_.path() + "/bus.conf";
    write_file(config,
               "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
               " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
               "<busconfig>\n"
               "  <type>system</type>\n"
               "  <listen>unix:path=" +
                   dir_.path() +
                   "/system_bus_socket</listen>\n"
                   "  <auth>EXTERNAL</auth>\n"
                   "  <policy context=\"default\">\n"
                   "    <allow user=\"*\"/>\n"
                   "    <allow own=\"*\"/>\n"
                   "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                   "    <allow eavesdrop=\"true\"/>\n"
                   "  </policy>\n"
                   "</busconfig>\n");
    daemon_ = std::make_unique<BackgroundProcess>(
        "dbus-daemon",
        std::vector<std::string>{dbus_daemon_binary(), "--config-file=" + config, "--print-address", "--nofork"},
        dir_.path() + "/dbus-daemon.log");
    if (!daemon_->wait_for_log("unix:path=", 10s)) {
      throw std::runtime_error(
          "dbus-daemon did not print its address (is the dbus-daemon package installed? "
          "scripts/install-deps.sh installs it):\n" +
          daemon_->log());
    }
    // --print-address: "unix:path=...,guid=..." on the first line.
    const std::string log = daemon_->log();
    const auto start = log.find("unix:path=");
    address_ = log.substr(start, log.find('\n', start) - start);
  }

  [[nodiscard]] const std::string& address() const { return address_; }
  [[nodiscard]] EnvVars env() const { return {{"DBUS_SYSTEM_BUS_ADDRESS", address_}}; }

 private:
  TempDir dir_{false};
  std::unique_ptr<BackgroundProcess> daemon_;
  std::string address_;
};

// fake_systemd on `bus`, serving `unit` with shell commands.
class FakeSystemd {
 public:
  struct Commands {
    std::string start;
    std::string stop;
    std::string status;
    std::string cgroup{};  // the unit's ControlGroup, relative to the cgroup v2 root
  };

  FakeSystemd(const PrivateSystemBus& bus, const std::string& unit, const Commands& commands, bool deny = false) {
    std::vector<std::string> argv{PGNAP_FAKE_SYSTEMD, "--unit",      unit,       "--start",      commands.start,
                                  "--stop",           commands.stop, "--status", commands.status};
    if (!commands.cgroup.empty()) argv.insert(argv.end(), {"--cgroup", commands.cgroup});
    if (deny) argv.push_back("--deny");
    process_ = std::make_unique<BackgroundProcess>("fake systemd", argv, dir_.path() + "/fake-systemd.log", bus.env());
    if (!process_->wait_for_log("fake-systemd: ready", 10s)) {
      throw std::runtime_error("fake_systemd did not get ready:\n" + process_->log());
    }
  }

  // pg_ctl for `cluster`, as its owner.
  static Commands for_cluster(const Cluster& cluster) {
    const std::string pg_ctl = pg_bin_dir() + "/pg_ctl";
    return {sh_line(as_postgres({pg_ctl, "start", "-D", cluster.data_dir(), "-l", cluster.log_file(), "-w", "-t", "30",
                                 "-s"})),
            sh_line(as_postgres({pg_ctl, "stop", "-D", cluster.data_dir(), "-m", "fast", "-w", "-t", "30", "-s"})),
            sh_line(as_postgres({pg_ctl, "status", "-D", cluster.data_dir()})) + " >/dev/null"};
  }

  [[nodiscard]] std::string log() const { return process_->log(); }
  [[nodiscard]] std::size_t count(std::string_view call) const { return count_lines_containing(log(), call); }

 private:
  TempDir dir_{false};
  std::unique_ptr<BackgroundProcess> process_;
};

std::string systemd_instance(const std::string& name, const std::string& databases, const std::string& address,
                             const std::string& unit) {
  return "[instances." + name +
         "]\n"
         "databases = " +
         databases +
         "\n"
         "backend = \"systemd\"\n"
         "address = " +
         toml_quote(address) +
         "\n"
         "idle_timeout = \"1s\"\n"
         "min_awake = \"0s\"\n"
         "wake_timeout = \"30s\"\n"
         "[instances." +
         name +
         ".systemd]\n"
         "unit = " +
         toml_quote(unit) + "\n";
}

GatewayOptions on_bus(const PrivateSystemBus& bus, const std::string& instances_toml) {
  GatewayOptions options;
  options.instances_toml = instances_toml;
  options.env = bus.env();
  return options;
}

constexpr const char* kUnit = "postgresql@15-pgnaptest.service";

TEST(SystemdTest, WakesIdlesAndWakesAgainThroughSystemdsDBusApi) {
  Cluster cluster;
  PrivateSystemBus bus;
  FakeSystemd systemd(bus, kUnit, FakeSystemd::for_cluster(cluster));
  // The unit as a Debian user writes it: no suffix.
  Gateway gateway(on_bus(bus, systemd_instance("main", R"(["*"])", cluster.address(), "postgresql@15-pgnaptest")),
                  &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  EXPECT_THAT(gateway.log(), Not(HasSubstr("state is unclear"))) << "LoadUnit and ActiveState answered";
  EXPECT_EQ(systemd.count(std::string("LoadUnit ") + kUnit), 1u) << systemd.log();
  EXPECT_EQ(systemd.count("Get ActiveState of postgresql@15-pgnaptest.service: inactive"), 1u) << systemd.log();

  const auto first = psql(gateway.conninfo(), "select 'woken by systemd'");
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  EXPECT_EQ(first.out, "woken by systemd\n");
  EXPECT_TRUE(cluster.is_running());
  EXPECT_EQ(systemd.count("Subscribe"), 1u) << systemd.log();
  EXPECT_EQ(systemd.count(std::string("StartUnit ") + kUnit + " replace"), 1u) << systemd.log();
  // The probe, not the job, decides readiness: the job may end just after the first query.
  EXPECT_TRUE(wait_until([&] { return systemd.count("StartUnit postgresql@15-pgnaptest.service: done") == 1; }, 10s))
      << systemd.log();

  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 20s)) << gateway.log();
  EXPECT_FALSE(cluster.is_running()) << "StopUnit stopped it";
  EXPECT_EQ(systemd.count(std::string("StopUnit ") + kUnit + " replace"), 1u) << systemd.log();
  EXPECT_EQ(systemd.count("StopUnit postgresql@15-pgnaptest.service: done"), 1u) << systemd.log();

  const auto second = psql(gateway.conninfo(), "select 'woken again'");
  ASSERT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_EQ(systemd.count(std::string("StartUnit ") + kUnit + " replace"), 2u) << systemd.log();
  EXPECT_EQ(cluster.ready_count(), 2);
}

TEST(SystemdTest, PermissionDeniedReachesTheClientWithThePolkitHint) {
  TempDir nowhere(false);
  PrivateSystemBus bus;
  FakeSystemd systemd(bus, kUnit, {"true", "true", "false"}, /*deny=*/true);
  Gateway gateway(on_bus(bus, systemd_instance("main", R"(["*"])", nowhere.path(), kUnit)));
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto c = connect(gateway.conninfo(), 30s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.server.sqlstate, "57P03") << c.error;
  EXPECT_THAT(c.server.detail, HasSubstr(std::string("permission denied to start ") + kUnit));
  EXPECT_THAT(c.server.detail, HasSubstr("Access denied"));
  EXPECT_THAT(c.server.detail, HasSubstr("polkit"));
  EXPECT_THAT(c.server.detail, HasSubstr("org.freedesktop.systemd1.manage-units"));
  EXPECT_EQ(systemd.count("StartUnit"), 1u) << systemd.log();
}

// A job that fails, a unit systemd does not know, and a bus without systemd: each says so.
TEST(SystemdTest, AFailedJobAnUnknownUnitAndAMissingSystemdAreExplained) {
  TempDir nowhere(false);
  PrivateSystemBus bus;
  FakeSystemd systemd(bus, "pgnap-failing.service", {"echo starting; exit 1", "true", "exit 3"});
  Gateway gateway(on_bus(bus, systemd_instance("failing", R"(["failing"])", nowhere.path(), "pgnap-failing") +
                                  systemd_instance("unknown", R"(["unknown"])", nowhere.path(), "pgnap-unknown")));
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s, 2)) << gateway.log();
  // LoadUnit of the unknown unit failed: its state is unclear, and the log says why.
  EXPECT_EQ(count_lines_with_all(gateway.log(), {"instance=unknown", "state is unclear", "systemd has no unit"}), 1u)
      << gateway.log();

  const auto failing = connect(gateway.conninfo("failing"), 30s);
  ASSERT_FALSE(failing.ok());
  EXPECT_EQ(failing.server.sqlstate, "57P03") << failing.error;
  EXPECT_THAT(failing.server.detail,
              HasSubstr("systemd could not start pgnap-failing.service (job result \"failed\")"));
  EXPECT_THAT(failing.server.detail, HasSubstr("journalctl -u pgnap-failing.service"));

  const auto unknown = connect(gateway.conninfo("unknown"), 30s);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.server.sqlstate, "57P03") << unknown.error;
  EXPECT_THAT(unknown.server.detail, HasSubstr("systemd has no unit pgnap-unknown.service"));
  EXPECT_THAT(unknown.server.detail, HasSubstr("Unit pgnap-unknown.service not found."));
}

TEST(SystemdTest, ABusWithoutSystemdIsReported) {
  TempDir nowhere(false);
  PrivateSystemBus bus;  // and no fake_systemd on it
  Gateway gateway(on_bus(bus, systemd_instance("main", R"(["*"])", nowhere.path(), kUnit)));
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("systemd did not answer on the system bus"));

  const auto c = connect(gateway.conninfo(), 30s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.server.sqlstate, "57P03") << c.error;
  EXPECT_THAT(c.server.detail, HasSubstr("systemd did not answer on the system bus"));
  EXPECT_THAT(c.server.detail, HasSubstr("org.freedesktop.DBus.Error.ServiceUnknown"));
}

// A cgroup v2 directory of the test's own, as systemd makes one per unit: under the v2 root
// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid hierarchy). Removed at the end, once
// the processes in it are gone.
class TestCgroup {
 public:
  TestCgroup() {
    for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      if (::access((std::string(root) + "/cgroup.controllers").c_str(), R_OK) != 0) continue;
      relative_ = "/pgnap-it-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
      dir_ = root + relative_;
      std::error_code ec;
      if (std::filesystem::create_directory(dir_, ec)) return;
      dir_.clear();
    }
  }
  ~TestCgroup() {
    // The cluster (declared after, destroyed before) has stopped; its last processes may take a moment.
    for (int i = 0; i < 50 && !dir_.empty() && ::rmdir(dir_.c_str()) != 0; ++i) {
      std::this_thread::sleep_for(100ms);
    }
  }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  [[nodiscard]] bool ok() const { return !dir_.empty(); }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] const std::string& relative() const { return relative_; }  // as systemd's ControlGroup

 private:
  static inline int counter_ = 0;
  std::string dir_;
  std::string relative_;
};

// The systemd backend's measured basis: pgnap asks systemd for the unit's ControlGroup and
// reads its cpu.stat (and memory.current, where the memory controller is enabled) while the
// instance is awake. The fake unit's start command puts itself into a real cgroup before it
// runs pg_ctl, so the postmaster and every process it forks are charged there, as systemd
// does for a service.
TEST(SystemdTest, TheUnitsCgroupIsMeasuredWhileAwake) {
  TestCgroup cgroup;
  if (!cgroup.ok()) GTEST_SKIP() << "cannot create a cgroup v2 directory (needs root and a cgroup2 mount)";
  Cluster cluster;
  PrivateSystemBus bus;
  FakeSystemd::Commands commands = FakeSystemd::for_cluster(cluster);
  commands.start = "echo $$ > " + sh_quote(cgroup.dir() + "/cgroup.procs") + " && " + commands.start;
  commands.cgroup = cgroup.relative();
  FakeSystemd systemd(bus, kUnit, commands);
  std::string toml = systemd_instance("main", R"(["*"])", cluster.address(), kUnit);
  const std::string one_second = "idle_timeout = \"1s\"";
  toml.replace(toml.find(one_second), one_second.size(), "idle_timeout = \"3s\"");
  toml += "[instances.main.accounting]\nmeasure_interval = \"1s\"\n";
  Gateway gateway(on_bus(bus, toml), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto r = psql(gateway.conninfo(), "select 'measured'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();
  EXPECT_GE(systemd.count("Get ControlGroup of postgresql@15-pgnaptest.service: " + cgroup.relative()), 1u)
      << systemd.log();
  ASSERT_EQ(gateway.terminate(), 0) << gateway.log();

  const auto report = run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--format", "json"});
  ASSERT_EQ(report.exit_code, 0) << report.describe();
  const auto main = boost::json::parse(report.out).at("instances").at(0).as_object();
  const auto& m = main.at("measured").as_object();
  ASSERT_TRUE(m.at("available").as_bool()) << boost::json::serialize(m) << gateway.log();
  EXPECT_EQ(main.at("basis").as_string(), "measured");
  EXPECT_EQ(m.at("cpu_source").as_string(), "cgroup");
  EXPECT_GT(m.at("idle_cpu_utilisation").to_number<double>(), 0) << boost::json::serialize(m);
  if (std::filesystem::exists(cgroup.dir() + "/memory.current")) {
    EXPECT_EQ(m.at("memory_source").as_string(), "cgroup");
    EXPECT_GT(m.at("idle_memory_bytes").to_number<double>(), 1e6);
  } else {
    // No memory controller in this hierarchy (systemd's hybrid one): said, and counted as 0.
    EXPECT_TRUE(m.at("memory_source").is_null());
    EXPECT_THAT(std::string(m.at("note").as_string()), HasSubstr("memory unreadable"));
  }
}

}  // namespace
}  // namespace pgnap::it
