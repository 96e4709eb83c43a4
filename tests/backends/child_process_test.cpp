#include "backends/child_process.h"

#include <signal.h>

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace pgnap::backends {
namespace {

CommandResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                  std::size_t max_output = 16 * 1024, std::vector<std::pair<std::string, std::string>> env = {}) {
  asio::io_context io;
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = timeout;
  spec.max_output = max_output;
  spec.env = std::move(env);
  auto future = asio::co_spawn(io, run_command(std::move(spec)), asio::use_future);
  io.run();
  return future.get();
}

TEST(ChildProcess, ExitStatusAndOutputAreCaptured) {
  auto r = run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.end, CommandResult::End::kExited) << r.describe();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("out"), std::string::npos);
  EXPECT_NE(r.output.find("err"), std::string::npos);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.describe(), "exited with status 3");
}

TEST(ChildProcess, SuccessIsOk) {
  auto r = run({"/bin/true"});
  EXPECT_TRUE(r.ok()) << r.describe();
}

TEST(ChildProcess, SilentFailureStillReportsStatus) {
  auto r = run({"/bin/sh", "-c", "exit 7"});
  EXPECT_EQ(r.end, CommandResult::End::kExited) << r.describe();
  EXPECT_EQ(r.exit_code, 7);
}

TEST(ChildProcess, MissingBinaryIsASpawnFailure) {
  auto r = run({"/nonexistent/pgnap-no-such-binary"});
  EXPECT_EQ(r.end, CommandResult::End::kSpawnFailed);
  EXPECT_NE(r.describe().find("could not be started"), std::string::npos) << r.describe();
}

TEST(ChildProcess, SignalIsReported) {
  auto r = run({"/bin/sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(r.end, CommandResult::End::kSignaled) << r.describe();
  EXPECT_EQ(r.signal, SIGTERM);
}

TEST(ChildProcess, TimeoutKillsTheWholeProcessGroup) {
  const auto marker = std::filesystem::temp_directory_path() / ("pgnap-child-" + std::to_string(::getpid()));
  std::filesystem::remove(marker);
  // The grandchild would create the marker after 2 s if it survived the timeout.
  auto r = run({"/bin/sh", "-c", "(sleep 2; touch " + marker.string() + ") & sleep 30"},
               std::chrono::milliseconds(300));
  EXPECT_EQ(r.end, CommandResult::End::kTimedOut) << r.describe();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a process of the command's group outlived its timeout";
  std::filesystem::remove(marker);
}

TEST(ChildProcess, OutputIsBoundedToItsTail) {
  auto r = run({"/bin/sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done"},
               std::chrono::seconds(10), 100);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_LE(r.output.size(), 100u);
  EXPECT_NE(r.output.find("line1999"), std::string::npos);
}

TEST(ChildProcess, LargeOutputDoesNotBlockTheCommand) {
  // More than a pipe buffer (64 kB): the command only exits if its output is drained.
  auto r = run({"/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x"}, std::chrono::seconds(10));
  EXPECT_TRUE(r.ok()) << r.describe();
}

TEST(ChildProcess, GrandchildHoldingThePipeDoesNotHoldTheResult) {
  const auto start = std::chrono::steady_clock::now();
  auto r = run({"/bin/sh", "-c", "sleep 5 & echo started"}, std::chrono::seconds(10));
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_NE(r.output.find("started"), std::string::npos);
}

TEST(ChildProcess, EnvironmentIsAddedToAndOverridesPgnaps) {
  ::setenv("PGNAP_TEST_KEPT", "kept", 1);
  ::setenv("PGNAP_TEST_REPLACED", "old", 1);
  auto r = run({"/bin/sh", "-c", "echo $PGNAP_TEST_KEPT $PGNAP_TEST_REPLACED $PGNAP_TEST_NEW"},
               std::chrono::seconds(10), 1024, {{"PGNAP_TEST_REPLACED", "new"}, {"PGNAP_TEST_NEW", "added"}});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.output, "kept new added\n");
}

TEST(ChildProcess, BareProgramNamesAreFoundOnPath) {
  auto r = run({"sh", "-c", "exit 4"});
  EXPECT_EQ(r.end, CommandResult::End::kExited) << r.describe();
  EXPECT_EQ(r.exit_code, 4);
  auto missing = run({"pgnap-no-such-program"});
  EXPECT_EQ(missing.end, CommandResult::End::kSpawnFailed);
  EXPECT_NE(missing.describe().find("not found on PATH"), std::string::npos) << missing.describe();
}

TEST(ChildProcess, FormatCommandQuotesWhatNeedsIt) {
  EXPECT_EQ(format_command({"/bin/pg_ctl", "start", "-D", "/a b", "-o", "it's"}),
            "/bin/pg_ctl start -D '/a b' -o 'it'\\''s'");
}

}  // namespace
}  // namespace pgnap::backends
