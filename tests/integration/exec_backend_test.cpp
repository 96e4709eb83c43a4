// The exec backend end to end: pgnap runs the user's own commands (here small shell scripts
// calling pg_ctl, as a user would write them) to start, stop and inspect a real cluster; a
// start command that fails, hangs or does not exist reaches the client as 57P03 with the
// reason in its DETAIL, and leaves nothing running behind.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

namespace pgnap::it {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// A TOML array of strings: ["a", "b"].
std::string toml_array(const std::vector<std::string>& words) {
  std::string out = "[";
  for (const auto& w : words) out += (out.size() > 1 ? ", " : "") + toml_quote(w);
  return out + "]";
}

struct ExecInstance {
  std::string name = "main";
  std::string databases = R"(["*"])";
  std::string address;
  std::string idle_timeout = "1s";
  std::string wake_timeout = "30s";
  std::vector<std::string> start;
  std::vector<std::string> stop;
  std::vector<std::string> status;  // empty: no status key
  std::string exec_extra;           // more lines of [instances.NAME.exec]
};

// One exec instance as TOML. Its commands run as postgres when pgnap runs as root (os_user),
// as the scripts' pg_ctl must.
std::string exec_toml(const ExecInstance& i) {
  std::ostringstream s;
  s << "[instances." << i.name << "]\n"
    << "databases = " << i.databases << "\n"
    << "backend = \"exec\"\n"
    << "address = " << toml_quote(i.address) << "\n"
    << "idle_timeout = " << toml_quote(i.idle_timeout) << "\n"
    << "min_awake = \"0s\"\n"
    << "wake_timeout = " << toml_quote(i.wake_timeout) << "\n"
    << "[instances." << i.name << ".exec]\n"
    << "start = " << toml_array(i.start) << "\n"
    << "stop = " << toml_array(i.stop) << "\n";
  if (!i.status.empty()) s << "status = " << toml_array(i.status) << "\n";
  s << "os_user = \"postgres\"\n" << i.exec_extra << "\n";
  return s.str();
}

// Scripts a user might write for the exec backend, each logging its call (with $MARKER, set
// only through the instance's `env`) to calls.log before running the real pg_ctl. A file
// `hang` in the directory makes `start` hang first (a cloud API that never answers): it
// records its shell's and its sleep's pids, then waits for the sleep.
class Scripts {
 public:
  explicit Scripts(const Cluster& cluster) {
    const std::string pg_ctl = sh_quote(pg_bin_dir() + "/pg_ctl");
    const std::string data = sh_quote(cluster.data_dir());
    const std::string log = dir_.path() + "/calls.log";
    write_script("start.sh", "echo \"start $MARKER\" >>" + sh_quote(log) +
                                 "\n"
                                 "if [ -f " +
                                 sh_quote(path("hang")) +
                                 " ]; then\n"
                                 "  echo $$ >>" +
                                 sh_quote(path("hung.pids")) +
                                 "\n"
                                 "  sleep 1000 &\n"
                                 "  echo $! >>" +
                                 sh_quote(path("hung.pids")) +
                                 "\n"
                                 "  wait\n"
                                 "fi\n"
                                 "exec " +
                                 pg_ctl + " start -D " + data + " -l " + sh_quote(cluster.log_file()) +
                                 " -w -t 30 -s\n");
    write_script("stop.sh",
                 "echo stop >>" + sh_quote(log) + "\nexec " + pg_ctl + " stop -D " + data + " -m fast -w -t 30 -s\n");
    write_script("status.sh", "echo status >>" + sh_quote(log) + "\nexec " + pg_ctl + " status -D " + data + "\n");
    chown_to_postgres(dir_.path());
  }

  [[nodiscard]] const std::string& dir() const { return dir_.path(); }
  [[nodiscard]] std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  [[nodiscard]] std::string calls() const { return read_file(path("calls.log")); }
  [[nodiscard]] std::size_t count(std::string_view call) const { return count_lines_containing(calls(), call); }
  void set_hang(bool hang) {
    if (hang) {
      write_file(path("hang"), "");
    } else {
      fs::remove(path("hang"));
    }
  }
  [[nodiscard]] std::vector<pid_t> hung_pids() const {
    std::vector<pid_t> pids;
    std::istringstream in(read_file(path("hung.pids")));
    for (long pid; in >> pid;) pids.push_back(static_cast<pid_t>(pid));
    return pids;
  }

 private:
  void write_script(const std::string& name, const std::string& body) {
    write_file(path(name), "#!/bin/sh\n# an exec-backend command written by exec_backend_test.cpp\n" + body);
    fs::permissions(path(name), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                    fs::perms::others_read | fs::perms::others_exec);
  }

  TempDir dir_{true};
};

ExecInstance scripted(const Cluster& cluster, const Scripts& scripts) {
  ExecInstance i;
  i.address = cluster.address();
  i.start = {scripts.path("start.sh")};
  i.stop = {scripts.path("stop.sh")};
  i.status = {scripts.path("status.sh")};
  i.exec_extra = "env = { MARKER = \"pgnap-exec-marker-7f3a\" }\n";
  return i;
}

GatewayOptions with_instances(const std::string& instances_toml) {
  GatewayOptions options;
  options.instances_toml = instances_toml;
  return options;
}

// A connect that pgnap refuses; returns the server's error.
ServerError refused(const Gateway& gateway, const std::string& dbname, Millis timeout = 30s) {
  auto c = connect(gateway.conninfo(dbname), timeout);
  EXPECT_FALSE(c.ok()) << "pgnap served database " << dbname;
  return c.server;
}

// pgnap's pg_ctl-free path through user commands: status says stopped, start wakes it (and
// sees the instance's env), idle stops it, the next client starts it again.
// `pgnap report --format json`'s object for the only instance, read once pgnap has stopped.
boost::json::object reported_instance(const Gateway& gateway) {
  const auto r = run_command({pgnap_binary(), "report", "-c", gateway.config_path(), "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  return boost::json::parse(r.out).at("instances").at(0).as_object();
}

TEST(ExecBackendTest, ScriptsStartStopAndRestartARealCluster) {
  Cluster cluster;
  Scripts scripts(cluster);
  Gateway gateway(with_instances(exec_toml(scripted(cluster, scripts))), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  EXPECT_THAT(gateway.log(), Not(HasSubstr("state is unclear"))) << "status.sh exits 3: stopped, not unknown";
  EXPECT_GE(scripts.count("status"), 1u);
  EXPECT_EQ(scripts.count("start"), 0u);

  const auto first = psql(gateway.conninfo(), "select 'woken by exec'");
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  EXPECT_EQ(first.out, "woken by exec\n");
  EXPECT_TRUE(cluster.is_running());
  // The start script saw the variable from [instances.main.exec] env.
  EXPECT_EQ(scripts.count("start pgnap-exec-marker-7f3a"), 1u) << scripts.calls();

  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 20s)) << gateway.log();
  EXPECT_FALSE(cluster.is_running()) << "idle_timeout ran stop.sh";
  EXPECT_EQ(scripts.count("stop"), 1u) << scripts.calls();

  const auto second = psql(gateway.conninfo(), "select 'woken again'");
  ASSERT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_EQ(second.out, "woken again\n");
  EXPECT_EQ(scripts.count("start pgnap-exec-marker-7f3a"), 2u) << scripts.calls();
  EXPECT_EQ(cluster.ready_count(), 2);
  EXPECT_EQ(count_lines_with_all(gateway.log(), {"instance=main", "ready after"}), 2u) << gateway.log();

  // Without pid_file or cgroup pgnap cannot know the server's processes: the report keeps the
  // model for it, and says why.
  ASSERT_EQ(gateway.terminate(), 0) << gateway.log();
  const auto main = reported_instance(gateway);
  EXPECT_EQ(main.at("basis").as_string(), "model");
  EXPECT_FALSE(main.at("measured").at("available").as_bool());
  EXPECT_THAT(std::string(main.at("measured").at("note").as_string()),
              HasSubstr("nothing to measure: an exec instance with neither pid_file nor cgroup"));
}


// An exec instance is measured when its pid_file says where the postmaster is (the scripts run
// pg_ctl on a local cluster). Without one, see ScriptsStartStopAndRestartARealCluster.
TEST(ExecBackendTest, APidFileLetsItsProcessesBeMeasured) {
  Cluster cluster;
  Scripts scripts(cluster);
  ExecInstance i = scripted(cluster, scripts);
  i.idle_timeout = "3s";
  i.exec_extra += "pid_file = " + toml_quote(cluster.data_dir() + "/postmaster.pid") + "\n";
  Gateway gateway(with_instances(exec_toml(i) + "[instances.main.accounting]\nmeasure_interval = \"1s\"\n"), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const auto r = psql(gateway.conninfo(), "select 1");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 30s)) << gateway.log();
  ASSERT_EQ(gateway.terminate(), 0) << gateway.log();

  const auto main = reported_instance(gateway);
  const auto& m = main.at("measured").as_object();
  ASSERT_TRUE(m.at("available").as_bool()) << boost::json::serialize(m) << gateway.log();
  EXPECT_EQ(main.at("basis").as_string(), "measured");
  EXPECT_EQ(m.at("cpu_source").as_string(), "proc");
  EXPECT_GT(m.at("idle_memory_bytes").to_number<double>(), 1e6);
}

TEST(ExecBackendTest, AFailingStartCommandsOutputAndStatusReachTheClient) {
  TempDir nowhere(false);  // an address where nothing listens
  ExecInstance i;
  i.address = nowhere.path();
  i.start = {"sh", "-c", "echo 'pgnap-test: the cloud said no (quota exceeded)' >&2; exit 3"};
  i.stop = {"true"};
  i.status = {"false"};
  Gateway gateway(with_instances(exec_toml(i)));
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto t0 = std::chrono::steady_clock::now();
  const ServerError e = refused(gateway, "postgres");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "a failed start is reported when it fails";
  EXPECT_EQ(e.severity, "FATAL");
  EXPECT_EQ(e.sqlstate, "57P03") << e.message;
  EXPECT_THAT(e.message, HasSubstr("\"main\""));
  EXPECT_THAT(e.detail, HasSubstr("pgnap-test: the cloud said no (quota exceeded)"));
  EXPECT_THAT(e.detail, HasSubstr("exited with status 3"));
  EXPECT_THAT(gateway.log(), HasSubstr("the cloud said no")) << "the output is logged too";
}

// The start command hangs (a script whose API call never returns). `timeouts` is the TOML
// that bounds it; the client is refused soon after, the command and the child it started are
// killed, and once the cause is gone the next wake works.
void hanging_start(const std::string& wake_timeout, const std::string& exec_extra, Millis expect_within) {
  Cluster cluster;
  Scripts scripts(cluster);
  scripts.set_hang(true);
  auto instance = scripted(cluster, scripts);
  instance.wake_timeout = wake_timeout;
  instance.exec_extra += exec_extra;
  Gateway gateway(with_instances(exec_toml(instance)), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto t0 = std::chrono::steady_clock::now();
  const ServerError e = refused(gateway, "postgres");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(e.sqlstate, "57P03") << e.message;
  EXPECT_THAT(e.detail, HasSubstr("killed"));
  EXPECT_GE(took, 1500ms);
  EXPECT_LT(took, expect_within);

  const auto pids = scripts.hung_pids();
  ASSERT_EQ(pids.size(), 2u) << "the start script did not record its shell and its sleep";
  for (pid_t pid : pids) {
    EXPECT_TRUE(wait_until([&] { return process_gone(pid); }, 2s))
        << "pid " << pid << " of the hung start command is still there";
  }
  EXPECT_FALSE(cluster.is_running());

  // The cause fixed, pgnap serves again (after its 1 s back-off).
  scripts.set_hang(false);
  CommandResult later;
  EXPECT_TRUE(wait_until(
      [&] {
        later = psql(gateway.conninfo(), "select 'after the hang'", 30s);
        return later.exit_code == 0;
      },
      20s, 300ms))
      << later.describe();
  EXPECT_EQ(later.out, "after the hang\n");
  EXPECT_TRUE(gateway.running());
}

TEST(ExecBackendTest, AHangingStartIsKilledAtItsStartTimeout) { hanging_start("30s", "start_timeout = \"2s\"\n", 8s); }

TEST(ExecBackendTest, AHangingStartIsKilledAtTheWakeTimeout) {
  // start_timeout defaults to wake_timeout.
  hanging_start("2s", "", 8s);
}

TEST(ExecBackendTest, AMissingProgramIsReportedByTheWakeAndByCheck) {
  TempDir nowhere(false);
  ExecInstance absolute;
  absolute.name = "abs";
  absolute.databases = R"(["abs"])";
  absolute.address = nowhere.path();
  absolute.start = {"/nonexistent/pgnap-start"};
  absolute.stop = {"true"};
  ExecInstance bare = absolute;
  bare.name = "bare";
  bare.databases = R"(["bare"])";
  bare.start = {"pgnap-no-such-start-program", "--now"};
  Gateway gateway(with_instances(exec_toml(absolute) + exec_toml(bare)));
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s, 2)) << gateway.log();

  const ServerError a = refused(gateway, "abs");
  EXPECT_EQ(a.sqlstate, "57P03") << a.message;
  EXPECT_THAT(a.detail, HasSubstr("/nonexistent/pgnap-start"));
  EXPECT_THAT(a.detail, HasSubstr("could not be started"));
  EXPECT_THAT(a.detail, HasSubstr("No such file or directory"));

  const ServerError b = refused(gateway, "bare");
  EXPECT_EQ(b.sqlstate, "57P03") << b.message;
  EXPECT_THAT(b.detail, HasSubstr("\"pgnap-no-such-start-program\" not found on PATH"));

  const auto check = run_command({pgnap_binary(), "check", "-c", gateway.config_path()}, 30s);
  EXPECT_EQ(check.exit_code, 1) << check.describe();
  EXPECT_THAT(check.err, HasSubstr("instance \"abs\": start command's program \"/nonexistent/pgnap-start\""));
  EXPECT_THAT(check.err, HasSubstr("instance \"bare\": start command's program \"pgnap-no-such-start-program\""));
  EXPECT_THAT(check.err, Not(HasSubstr("stop command"))) << "`true` is on PATH";
}

// pgnap never runs a command as root that the configuration did not ask for: as root, an exec
// instance without os_user is refused by `check` and by `run`; os_user = "root" says it is meant.
TEST(ExecBackendTest, AsRootAnExecInstanceWithoutOsUserIsRefused) {
  TempDir dir(false);
  ExecInstance instance;
  instance.address = dir.path();
  instance.start = {"true"};
  instance.stop = {"true"};
  std::string toml = exec_toml(instance);
  const std::string os_user_line = "os_user = \"postgres\"\n";
  toml.erase(toml.find(os_user_line), os_user_line.size());
  const std::string config = dir.path() + "/pgnap.toml";
  write_file(config, render_config(with_instances(toml), dir.path() + "/ledger.db"));

  const auto check = run_command({pgnap_binary(), "check", "-c", config}, 30s);
  const auto run = run_command({pgnap_binary(), "run", "-c", config}, 30s);
  if (::geteuid() != 0) {
    // Not root: commands run as pgnap's own user and os_user does not matter.
    EXPECT_EQ(check.exit_code, 0) << check.describe();
    return;
  }
  const std::string why = "instance \"main\": pgnap runs as root and [instances.main.exec] has no os_user";
  EXPECT_EQ(check.exit_code, 1) << check.describe();
  EXPECT_THAT(check.err, HasSubstr(why));
  EXPECT_FALSE(run.timed_out) << "pgnap run went on as root with commands that would run as root";
  EXPECT_EQ(run.exit_code, 1) << run.describe();
  EXPECT_THAT(run.err, HasSubstr(why));

  // Said on purpose: accepted.
  write_file(config, render_config(with_instances(toml + "os_user = \"root\"\n"), dir.path() + "/ledger.db"));
  const auto meant = run_command({pgnap_binary(), "check", "-c", config}, 30s);
  EXPECT_EQ(meant.exit_code, 0) << meant.describe();
}

// A bare program name is looked up on the PATH the command runs with: the instance's env may
// set its own (a tool installed off pgnap's PATH), and `pgnap check` must look there too.
TEST(ExecBackendTest, ABareProgramIsFoundOnThePathSetInEnv) {
  Cluster cluster;
  Scripts scripts(cluster);
  auto instance = scripted(cluster, scripts);
  instance.start = {"start.sh"};
  instance.stop = {"stop.sh"};
  instance.status = {"status.sh"};
  instance.exec_extra = "env = { MARKER = \"on-path\", PATH = " + toml_quote(scripts.dir() + ":/usr/bin:/bin") + " }\n";
  Gateway gateway(with_instances(exec_toml(instance)), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  const auto check = run_command({pgnap_binary(), "check", "-c", gateway.config_path()}, 30s);
  EXPECT_EQ(check.exit_code, 0) << check.describe();
  EXPECT_THAT(check.err, Not(HasSubstr("start.sh")));

  const auto r = psql(gateway.conninfo(), "select 'found on env PATH'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(scripts.count("start on-path"), 1u) << scripts.calls();
}

// Without a status command the probe decides: a running server is adopted awake (no start),
// a stopped one is started by the first client.
TEST(ExecBackendTest, WithoutAStatusCommandTheProbeDecides) {
  Cluster cluster;
  cluster.start();
  Scripts scripts(cluster);
  auto instance = scripted(cluster, scripts);
  instance.status.clear();
  Gateway gateway(with_instances(exec_toml(instance)), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted awake", 10s)) << gateway.log();

  const auto served = psql(gateway.conninfo(), "select 'adopted'");
  ASSERT_EQ(served.exit_code, 0) << served.describe();
  EXPECT_EQ(scripts.count("start"), 0u) << "a running server is not started again";

  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 20s)) << gateway.log();
  EXPECT_FALSE(cluster.is_running());

  const auto woken = psql(gateway.conninfo(), "select 'woken without status'");
  ASSERT_EQ(woken.exit_code, 0) << woken.describe();
  EXPECT_EQ(woken.out, "woken without status\n");
  EXPECT_EQ(scripts.count("start"), 1u) << scripts.calls();
  EXPECT_EQ(scripts.count("status"), 0u) << "no status command was configured";
  EXPECT_EQ(cluster.ready_count(), 2);
}

}  // namespace
}  // namespace pgnap::it
