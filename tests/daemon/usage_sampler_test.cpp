// Where the sampler finds an instance's postmaster (daemon/usage_sampler.h): postmaster.pid in
// pg_ctl's -D, or, in Debian's layout where -D is the configuration directory, postgresql.conf's
// external_pid_file and then data_directory; and one real reading of /proc through it.
#include "daemon/usage_sampler.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgnap::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class PostmasterPidTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgnap-pid-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "etc");
    fs::create_directories(root_ / "data");
    fs::create_directories(root_ / "run");
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }
  UsageTarget pg_ctl() const { return {"", (root_ / "etc" / "postmaster.pid").string(), (root_ / "etc").string()}; }

  fs::path root_;
};

TEST_F(PostmasterPidTest, InTheDataDirectory) {
  write(root_ / "etc" / "postmaster.pid", "4242\n/var/lib/x\n");
  std::string error;
  EXPECT_EQ(postmaster_pid(pg_ctl(), error), 4242);
}

TEST_F(PostmasterPidTest, DebianLayoutExternalPidFileFirstThenDataDirectory) {
  write(root_ / "etc" / "postgresql.conf",
        "data_directory = '" + (root_ / "data").string() + "'\t# use data in another directory\n"
        "#external_pid_file = '/nowhere.pid'\n"
        "external_pid_file = '" + (root_ / "run" / "15-main.pid").string() + "'\n");
  write(root_ / "data" / "postmaster.pid", "1111\n");
  std::string error;
  EXPECT_EQ(postmaster_pid(pg_ctl(), error), 1111) << "the external pid file does not exist yet";
  write(root_ / "run" / "15-main.pid", "2222\n");
  EXPECT_EQ(postmaster_pid(pg_ctl(), error), 2222) << "readable by other users, unlike the data directory";
}

TEST_F(PostmasterPidTest, NothingFoundSaysWhereItLooked) {
  write(root_ / "etc" / "postgresql.conf", "data_directory = '" + (root_ / "data").string() + "'\n");
  std::string error;
  EXPECT_FALSE(postmaster_pid(pg_ctl(), error));
  EXPECT_THAT(error, HasSubstr("etc/postmaster.pid"));
  EXPECT_THAT(error, HasSubstr("data/postmaster.pid"));
}

TEST_F(PostmasterPidTest, ReadsThisProcessThroughAPidFile) {
  // This test process stands in for a postmaster: a real /proc reading, off any event loop.
  write(root_ / "etc" / "postmaster.pid", std::to_string(::getpid()) + "\n");
  const UsageRead read = read_usage(pg_ctl());
  ASSERT_TRUE(read.reading) << read.error;
  EXPECT_EQ(read.reading->root_pid, ::getpid());
  EXPECT_GT(read.reading->cpu_seconds, 0);
  ASSERT_TRUE(read.reading->memory_bytes);
  EXPECT_GT(*read.reading->memory_bytes, 1u << 20);
  // Our own smaps_rollup is always readable: PSS.
  EXPECT_EQ(read.reading->memory_source, accounting::MemorySource::kPss);
}

}  // namespace
}  // namespace pgnap::daemon
