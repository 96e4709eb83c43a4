// The command line, as an operator meets it: `pgnap check` on good and bad configs, usage
// errors, --version and --help, and the checked-in demo config. (The config parser's error
// kinds one by one are unit tests in tests/daemon/.)
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

CommandResult pgnap(const std::vector<std::string>& args) {
  std::vector<std::string> argv{pgnap_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, 30s);
}

// The 1-based line of `text` that starts with `prefix`, within the section `[section]`.
int line_of(const std::string& text, const std::string& section, const std::string& prefix) {
  std::istringstream in(text);
  int n = 0;
  bool in_section = false;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.starts_with("[")) in_section = line == "[" + section + "]";
    if (in_section && line.starts_with(prefix)) return n;
  }
  return 0;
}

class CliTest : public ::testing::Test {
 protected:
  // Writes a config for `options` (no ledger or listener is ever created by `check`).
  std::string write_config(const GatewayOptions& options, const std::string& name = "pgnap.toml") {
    const std::string path = dir_.path() + "/" + name;
    write_file(path, render_config(options, dir_.path() + "/ledger.db"));
    return path;
  }

  TempDir dir_{false};
};

TEST_F(CliTest, CheckAcceptsAGoodConfigAndPrintsTheRoutingTable) {
  Cluster main_cluster;
  Cluster shop_cluster;
  auto options = GatewayOptions::for_cluster(main_cluster);
  options.extra_toml =
      "\n[instances.shop]\n"
      "databases = [\"shop\", \"shop_staging\"]\n"
      "backend = \"pg_ctl\"\n"
      "address = \"" +
      shop_cluster.address() +
      "\"\n"
      "[instances.shop.pg_ctl]\n"
      "data_dir = \"" +
      shop_cluster.data_dir() +
      "\"\n"
      "bin_dir = \"" +
      pg_bin_dir() + "\"\n";
  const std::string path = write_config(options);

  const auto r = pgnap({"check", "-c", path});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  // The routing table: which database names go to which instance. (How "*" is shown is the
  // gateway's choice: no line of it is asserted.)
  for (const char* expected : {"main", "shop", "shop_staging"}) {
    EXPECT_THAT(r.out, HasSubstr(expected)) << r.describe();
  }
  // check only looks: nothing started, no ledger written.
  EXPECT_FALSE(main_cluster.is_running());
  EXPECT_FALSE(shop_cluster.is_running());
  EXPECT_TRUE(read_file(dir_.path() + "/ledger.db").empty());
}

TEST_F(CliTest, CheckRejectsABadValueNamingFileLineAndKey) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "10";  // a duration without its unit
  const std::string path = write_config(options);
  const int line = line_of(read_file(path), "instances.main", "idle_timeout");
  ASSERT_GT(line, 0);

  const auto r = pgnap({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_THAT(r.err, HasSubstr(path + ":" + std::to_string(line) + ":")) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("instances.main.idle_timeout")) << r.describe();
}

TEST_F(CliTest, CheckRejectsAnUnknownKeyNamingFileLineAndKey) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.instance_extra = "idle_timout = \"5m\"\n";  // misspelt
  const std::string path = write_config(options);
  const int line = line_of(read_file(path), "instances.main", "idle_timout");
  ASSERT_GT(line, 0);

  const auto r = pgnap({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_THAT(r.err, HasSubstr(path + ":" + std::to_string(line) + ":")) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("instances.main.idle_timout")) << r.describe();
}

TEST_F(CliTest, CheckOfAMissingFileExitsOneNamingIt) {
  const std::string path = dir_.path() + "/no-such.toml";
  const auto r = pgnap({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_THAT(r.err, HasSubstr(path)) << r.describe();
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {}, {"run", "-c"}, {"frobnicate"}, {"run", "--no-such-flag"}, {"check", "extra"}}) {
    const auto r = pgnap(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.describe();
    EXPECT_FALSE(r.err.empty()) << ::testing::PrintToString(args) << ": says nothing";
  }
}

TEST_F(CliTest, VersionPrintsTheVersionAndTheGitRevision) {
  const auto r = pgnap({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "pgnap " + pgnap_version() + " (git " + pgnap_revision() + ")\n") << r.describe();
  // This build's source is a git checkout: the revision is its commit, not "unknown".
  EXPECT_THAT(pgnap_revision(), ::testing::MatchesRegex("[0-9a-f]{12}(-dirty)?")) << r.describe();
}

// Without -c every command reads the packaged configuration file, as the unit does.
TEST_F(CliTest, WithoutDashCCommandsReadEtcPgnapPgnapToml) {
  const auto r = pgnap({"check"});
  EXPECT_THAT(r.out + r.err, HasSubstr("/etc/pgnap/pgnap.toml")) << r.describe();
  EXPECT_NE(r.exit_code, 2) << r.describe();
}

TEST_F(CliTest, HelpExitsZeroAndNamesTheCommands) {
  const auto r = pgnap({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("run")) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("check")) << r.describe();
}

// examples/demo.toml is what `make demo` runs: it must stay valid. scripts/demo.sh fills in
// its @DEMO_DIR@ and @PG_BIN_DIR@ placeholders the same way.
TEST_F(CliTest, DemoConfigIsValid) {
  const std::string templ = read_file(source_dir() + "/examples/demo.toml");
  ASSERT_FALSE(templ.empty()) << "no examples/demo.toml";
  const std::string demo_dir = dir_.path() + "/demo";
  std::filesystem::create_directories(demo_dir + "/data");
  std::filesystem::create_directories(demo_dir + "/run");
  std::string text = std::regex_replace(templ, std::regex("@DEMO_DIR@"), demo_dir);
  text = std::regex_replace(text, std::regex("@PG_BIN_DIR@"), pg_bin_dir());
  const std::string path = demo_dir + "/pgnap.toml";
  write_file(path, text);
  // scripts/demo.sh writes the demo role's verifier there, from pg_authid.
  write_file(demo_dir + "/userlist.txt", "\"demo\" \"md5" + std::string(32, '0') + "\"\n");

  const auto r = pgnap({"check", "-c", path});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("6432")) << r.describe();
}

}  // namespace
}  // namespace pgnap::it
