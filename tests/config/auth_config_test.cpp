// [instances.NAME.auth] and [gateway] queue_limit_total: who authenticates clients, from
// which password sources, and how much a session may queue while its instance wakes. Their
// defaults, what they accept, each error with its exact text, and what `pgnap check` says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace test_util;
namespace fs = std::filesystem;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;

// kMinimal plus an [instances.main.auth] table holding `lines` (from line 8).
std::string auth_with(std::string_view lines) {
  return minimal_plus("[instances.main.auth]\n" + std::string(lines) + "\n");
}

// The one error of `text` parsed against `base_dir`.
std::string error_in(const std::string& text, const std::string& base_dir) {
  try {
    (void)parse(text, base_dir);
  } catch (const ConfigLoadError& e) {
    EXPECT_EQ(e.errors().size(), 1u) << e.what();
    return e.errors().front().to_string().substr(std::string("pgnap.toml:").size());
  }
  ADD_FAILURE() << "expected the document to be rejected:\n" << text;
  return "";
}

// A directory with an auth_file in it, parsed as the configuration's directory.
class AuthFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pgnap-auth-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    std::ofstream(dir_ / "userlist.txt") << "\"app\" \"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\"\n";
  }
  void TearDown() override {
    std::error_code ignored;
    fs::permissions(dir_ / "userlist.txt", fs::perms::owner_all, ignored);
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
};

// ---- Defaults and values ---------------------------------------------------------------------

TEST(ConfigAuthTest, PassthroughByDefaultWithPgBouncersQuery) {
  const Config config = parse(kMinimal);
  const AuthConfig& auth = config.instances.at(0).auth;
  EXPECT_EQ(auth.mode, "passthrough");
  EXPECT_EQ(auth.file, "");
  EXPECT_EQ(auth.query, "SELECT usename, passwd FROM pg_shadow WHERE usename = $1");
  EXPECT_EQ(auth.user, "");
  EXPECT_THAT(auth.methods, ElementsAre("scram-sha-256", "md5"));
  EXPECT_EQ(auth.cache, "ledger");
  EXPECT_EQ(auth.queue_limit, 1 * kMiB);
  EXPECT_EQ(auth, AuthConfig{});
  EXPECT_EQ(config.gateway.queue_limit_total, 64 * kMiB);
}

TEST_F(AuthFileTest, GatewayModeReadsEveryKeyAndResolvesTheFileAgainstTheConfigDirectory) {
  const Config config = parse(auth_with(R"toml(mode = "gateway"
file = "./userlist.txt"
query = "SELECT usename, passwd FROM pgnap.lookup($1)"
user = "pgnap_auth"
methods = ["md5", "scram-sha-256", "trust"]
cache = "memory"
queue_limit = "256kB"
[gateway]
queue_limit_total = "1GB")toml"),
                              dir_.string());
  const AuthConfig& auth = config.instances.at(0).auth;
  EXPECT_EQ(auth.mode, "gateway");
  EXPECT_EQ(auth.file, (dir_ / "userlist.txt").string());
  EXPECT_EQ(auth.query, "SELECT usename, passwd FROM pgnap.lookup($1)");
  EXPECT_EQ(auth.user, "pgnap_auth");
  EXPECT_THAT(auth.methods, ElementsAre("md5", "scram-sha-256", "trust"));
  EXPECT_EQ(auth.cache, "memory");
  EXPECT_EQ(auth.queue_limit, 256 * kKiB);
  EXPECT_EQ(config.gateway.queue_limit_total, kGiB);
}

TEST(ConfigAuthTest, GatewayModeWithAuthQueryAloneOrTrustAloneLoads) {
  const AuthConfig query = parse(auth_with("mode = \"gateway\"\nuser = \"pgnap_auth\"")).instances.at(0).auth;
  EXPECT_EQ(query.user, "pgnap_auth");
  EXPECT_EQ(query.file, "");
  const AuthConfig trust = parse(auth_with("mode = \"gateway\"\nmethods = [\"trust\"]")).instances.at(0).auth;
  EXPECT_THAT(trust.methods, ElementsAre("trust"));
  // The dotted and inline forms are the same table.
  EXPECT_EQ(parse(minimal_with("auth.mode = \"gateway\"\nauth.user = \"pgnap_auth\"")).instances.at(0).auth, query);
  EXPECT_EQ(parse(minimal_with("auth = { mode = \"gateway\", user = \"pgnap_auth\" }")).instances.at(0).auth, query);
}

TEST(ConfigAuthTest, PassthroughAcceptsTheOtherKeysAndChecksNothingAcrossThem) {
  // No password source, a file that does not exist, a user without a query: nothing reads
  // them in passthrough mode.
  const AuthConfig auth = parse(auth_with("file = \"/nonexistent/userlist.txt\"\nuser = \"pgnap_auth\"\nquery = \"\""))
                              .instances.at(0)
                              .auth;
  EXPECT_EQ(auth.mode, "passthrough");
  EXPECT_EQ(auth.file, "/nonexistent/userlist.txt");
  EXPECT_EQ(auth.query, "");
  EXPECT_EQ(parse(auth_with("mode = \"passthrough\"")).instances.at(0).auth, AuthConfig{});
}

TEST(ConfigAuthTest, QueueLimitsAreSizesWithTheirBounds) {
  EXPECT_EQ(parse(auth_with("queue_limit = \"8kB\"")).instances.at(0).auth.queue_limit, 8 * kKiB);
  EXPECT_EQ(parse(auth_with("queue_limit = 1073741824")).instances.at(0).auth.queue_limit, kGiB);
  EXPECT_EQ(parse(minimal_plus("[gateway]\nqueue_limit_total = \"64kB\"\n")).gateway.queue_limit_total, 64 * kKiB);
  EXPECT_EQ(parse(minimal_plus("[gateway]\nqueue_limit_total = \"16GB\"\n")).gateway.queue_limit_total, 16 * kGiB);

  EXPECT_EQ(error_of(auth_with("queue_limit = \"4kB\"")),
            "8:15: instances.main.auth.queue_limit: expected a size between 8192 and 1073741824 bytes, got 4096");
  EXPECT_EQ(error_of(auth_with("queue_limit = \"2GB\"")),
            "8:15: instances.main.auth.queue_limit: expected a size between 8192 and 1073741824 bytes, got "
            "2147483648");
  EXPECT_EQ(error_of(auth_with("queue_limit = \"1 MB per session\"")),
            "8:15: instances.main.auth.queue_limit: expected a size: bytes as an integer, or a string with "
            "PostgreSQL's units (\"64kB\", \"16MB\", \"1GB\"; 1kB = 1024 bytes), got \"1 MB per session\"");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nqueue_limit_total = \"32kB\"\n")),
            "8:21: gateway.queue_limit_total: expected a size between 65536 and 17179869184 bytes, got 32768");
  EXPECT_EQ(error_of(minimal_plus("[gateway]\nqueue_limit_total = \"17GB\"\n")),
            "8:21: gateway.queue_limit_total: expected a size between 65536 and 17179869184 bytes, got 18253611008");
}

// ---- Errors --------------------------------------------------------------------------------

TEST(ConfigAuthTest, ModeAndCacheAreOneOfTheirWords) {
  EXPECT_EQ(error_of(auth_with("mode = \"pgbouncer\"")),
            "8:8: instances.main.auth.mode: expected one of \"passthrough\", \"gateway\", got \"pgbouncer\"");
  EXPECT_EQ(error_of(auth_with("cache = \"disk\"")),
            "8:9: instances.main.auth.cache: expected one of \"ledger\", \"memory\", got \"disk\"");
  EXPECT_EQ(error_of(auth_with("mode = true")), "8:8: instances.main.auth.mode: expected a string, got a boolean");
}

TEST(ConfigAuthTest, MethodsAreANonEmptyArrayOfDistinctKnownWords) {
  EXPECT_EQ(error_of(auth_with("methods = \"md5\"")),
            "8:11: instances.main.auth.methods: expected an array of words from \"scram-sha-256\", \"md5\", "
            "\"trust\" (e.g. [\"scram-sha-256\"]), got a string");
  EXPECT_EQ(error_of(auth_with("methods = []")),
            "8:11: instances.main.auth.methods: expected at least one of \"scram-sha-256\", \"md5\", \"trust\", "
            "got an empty array");
  EXPECT_EQ(error_of(auth_with("methods = [\"scram-sha-256\", \"password\"]")),
            "8:29: instances.main.auth.methods: expected one of \"scram-sha-256\", \"md5\", \"trust\", got "
            "\"password\"");
  EXPECT_EQ(error_of(auth_with("methods = [\"md5\", 5]")),
            "8:19: instances.main.auth.methods: expected one of \"scram-sha-256\", \"md5\", \"trust\", got 5");
  EXPECT_EQ(error_of(auth_with("methods = [\"md5\", \"md5\"]")),
            "8:19: instances.main.auth.methods: \"md5\" is listed twice");
  // Case matters, as in pg_hba.conf.
  EXPECT_EQ(error_of(auth_with("methods = [\"MD5\"]")),
            "8:12: instances.main.auth.methods: expected one of \"scram-sha-256\", \"md5\", \"trust\", got \"MD5\"");
}

TEST(ConfigAuthTest, AMethodListWithErrorsReportsNoPhantomMissingSource) {
  // Only the bad word: the "trust" it understood still counts as the password source.
  EXPECT_THAT(errors_of(auth_with("mode = \"gateway\"\nmethods = [\"trust\", \"peer\"]")),
              ElementsAre("9:21: instances.main.auth.methods: expected one of \"scram-sha-256\", \"md5\", \"trust\", "
                          "got \"peer\""));
  EXPECT_THAT(errors_of(auth_with("mode = \"gateway\"\nmethods = []")),
              ElementsAre("9:11: instances.main.auth.methods: expected at least one of \"scram-sha-256\", \"md5\", "
                          "\"trust\", got an empty array"));
}

TEST(ConfigAuthTest, GatewayModeNeedsAPasswordSourceNamedAtTheAuthTable) {
  const std::string expected =
      "instances.main.auth: mode = \"gateway\" needs a password source: set auth.file (a PgBouncer-format "
      "auth_file) or auth.user (to run auth.query), or allow \"trust\" in auth.methods";
  EXPECT_EQ(error_of(auth_with("mode = \"gateway\"")), "7:1: " + expected);
  EXPECT_EQ(error_of(auth_with("mode = \"gateway\"\nfile = \"\"\nuser = \"\"\nmethods = [\"md5\"]")),
            "7:1: " + expected);
  EXPECT_EQ(error_of(minimal_with("auth = { mode = \"gateway\" }")), "4:8: " + expected);
}

TEST(ConfigAuthTest, AnAuthUserNeedsAQuery) {
  EXPECT_EQ(error_of(auth_with("mode = \"gateway\"\nuser = \"pgnap_auth\"\nquery = \"\"")),
            "10:9: instances.main.auth.query: expected a non-empty query when auth.user is set (auth.user runs it "
            "to read a client's password verifier), got \"\"");
}

TEST(ConfigAuthTest, UnknownKeysAndWrongTypes) {
  EXPECT_EQ(error_of(auth_with("auth_user = \"pgnap_auth\"")),
            "8:1: instances.main.auth.auth_user: unknown key \"auth_user\"; valid keys here: mode, file, query, "
            "user, methods, cache, queue_limit");
  EXPECT_EQ(error_of(minimal_with("auth = \"gateway\"")), "4:8: instances.main.auth: expected a table, got a string");
  EXPECT_EQ(error_of(auth_with("file = 1")),
            "8:8: instances.main.auth.file: expected a path (a string), got an integer");
  EXPECT_EQ(error_of(auth_with("user = [\"a\"]")), "8:8: instances.main.auth.user: expected a string, got an array");
}

TEST_F(AuthFileTest, TheFileMustBeARegularFilePgnapCanRead) {
  const std::string base = dir_.string();
  EXPECT_EQ(error_in(auth_with("mode = \"gateway\"\nfile = \"missing.txt\""), base),
            "9:8: instances.main.auth.file: cannot read the auth_file \"" + base +
                "/missing.txt\": No such file or directory");
  EXPECT_EQ(error_in(auth_with("mode = \"gateway\"\nfile = \".\""), base),
            "9:8: instances.main.auth.file: expected a PgBouncer-format auth_file, got the directory \"" + base + "\"");
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0) << std::strerror(errno);
  EXPECT_EQ(error_in(auth_with("mode = \"gateway\"\nfile = \"fifo\""), base),
            "9:8: instances.main.auth.file: expected a PgBouncer-format auth_file, got \"" + base +
                "/fifo\", which is not a regular file");
  // Root reads any file: the permission check means something only for another user.
  if (::geteuid() != 0) {
    fs::permissions(dir_ / "userlist.txt", fs::perms::none);
    EXPECT_EQ(error_in(auth_with("mode = \"gateway\"\nfile = \"userlist.txt\""), base),
              "9:8: instances.main.auth.file: cannot read the auth_file \"" + base +
                  "/userlist.txt\": Permission denied");
  }
}

TEST_F(AuthFileTest, TheFileIsCheckedOnlyWhereItIsUsed) {
  // In passthrough mode nothing reads it; a file that pgnap can read loads in either mode.
  EXPECT_EQ(parse(auth_with("file = \"missing.txt\""), dir_.string()).instances.at(0).auth.file,
            (dir_ / "missing.txt").string());
  EXPECT_EQ(parse(auth_with("mode = \"gateway\"\nfile = \"userlist.txt\""), dir_.string()).instances.at(0).auth.file,
            (dir_ / "userlist.txt").string());
}

TEST(ConfigAuthTest, EveryErrorOfTheTableIsReportedTogether) {
  EXPECT_THAT(errors_of(auth_with("mode = \"gateway\"\nuser = \"pgnap_auth\"\nquery = \"\"\ncache = \"disk\"\n"
                                  "file = \"/nonexistent/userlist.txt\"")),
              ElementsAre("10:9: instances.main.auth.query: expected a non-empty query when auth.user is set "
                          "(auth.user runs it to read a client's password verifier), got \"\"",
                          "11:9: instances.main.auth.cache: expected one of \"ledger\", \"memory\", got \"disk\"",
                          "12:8: instances.main.auth.file: cannot read the auth_file \"/nonexistent/userlist.txt\": "
                          "No such file or directory"));
}

// ---- pgnap check -----------------------------------------------------------------------------

TEST_F(AuthFileTest, CheckShowsModeMethodsSourcesCacheAndQueueLimits) {
  const Config config = parse(minimal_plus(R"(
[gateway]
queue_limit_total = "128MB"

[instances.main.auth]
mode = "gateway"
file = "userlist.txt"
user = "pgnap_auth"
queue_limit = "512kB"
)"),
                              dir_.string());
  const std::string text = describe_config(config);
  EXPECT_THAT(text, HasSubstr("  max_message_size  1GB\n"
                              "  queue_limit_total 128MB (queued by all sessions while their instances wake)\n"));
  EXPECT_THAT(text, HasSubstr("  tls               disable (default for this address)\n"
                              "  auth              gateway: pgnap authenticates clients (scram-sha-256, md5) and logs "
                              "in to PostgreSQL on their first query; queue_limit 512kB\n"
                              "  auth sources      auth_file " +
                              (dir_ / "userlist.txt").string() +
                              "; auth_query as pgnap_auth: SELECT usename, passwd FROM pg_shadow WHERE usename = $1 "
                              "(learned verifiers cached in the ledger)\n"));
}

TEST(ConfigAuthTest, CheckShowsEachSourceAloneAndAQueryOnOneLine) {
  const std::string memory = describe_config(parse(auth_with(R"toml(mode = "gateway"
user = "pgnap_auth"
query = """
  SELECT usename, passwd
  FROM pgnap.user_lookup($1)"""
cache = "memory"
methods = ["scram-sha-256"])toml")));
  EXPECT_THAT(memory, HasSubstr("  auth              gateway: pgnap authenticates clients (scram-sha-256) and logs in "
                                "to PostgreSQL on their first query; queue_limit 1MB\n"
                                "  auth sources      auth_query as pgnap_auth: SELECT usename, passwd FROM "
                                "pgnap.user_lookup($1) (learned verifiers kept in memory only)\n"));
  const std::string trust = describe_config(parse(auth_with("mode = \"gateway\"\nmethods = [\"trust\"]")));
  EXPECT_THAT(trust, HasSubstr("  auth sources      none (trust only)\n"));
}

TEST(ConfigAuthTest, CheckSaysPassthroughAndWhichKeysItIgnores) {
  EXPECT_THAT(describe_config(parse(kMinimal)),
              HasSubstr("  auth              clients authenticate with PostgreSQL (passthrough)\n"));
  EXPECT_THAT(describe_config(parse(kMinimal)), Not(HasSubstr("auth sources")));
  EXPECT_THAT(describe_config(parse(auth_with("user = \"pgnap_auth\"\ncache = \"memory\""))),
              HasSubstr("  auth              clients authenticate with PostgreSQL (passthrough); ignored in this "
                        "mode: auth.user, auth.cache\n"));
}

}  // namespace
}  // namespace pgnap::config
