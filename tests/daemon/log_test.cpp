// daemon/log.h: the two line formats (journald's "<N>" priority prefix without a timestamp,
// and the timestamped one for a terminal or a file), level filtering in PGNAP_LOG, and
// write() putting one whole line on stderr.
#include "daemon/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace pgnap::daemon {
namespace {

using log::Level;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

// 2024-03-05T07:08:09.042Z
std::chrono::system_clock::time_point fixed_time() {
  using namespace std::chrono;
  return sys_days{year{2024} / March / 5} + hours(7) + minutes(8) + seconds(9) + milliseconds(42);
}

// The global level, restored after each test (PGNAP_LOG reads it).
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = log::level(); }
  void TearDown() override { log::set_level(saved_); }

 private:
  Level saved_ = Level::kInfo;
};

// ---- Line format ---------------------------------------------------------------------------

TEST_F(LogTest, JournalLinesCarryTheSyslogPriorityAndNoTimestamp) {
  const auto now = fixed_time();
  EXPECT_EQ(log::format_line(Level::kDebug, "gateway", "hello", true, now), "<7>gateway: hello\n");
  EXPECT_EQ(log::format_line(Level::kInfo, "gateway", "hello", true, now), "<6>gateway: hello\n");
  EXPECT_EQ(log::format_line(Level::kWarning, "gateway", "hello", true, now), "<4>gateway: hello\n");
  EXPECT_EQ(log::format_line(Level::kError, "gateway", "hello", true, now), "<3>gateway: hello\n");
  EXPECT_THAT(log::format_line(Level::kError, "gateway", "hello", true, now), Not(HasSubstr("2024")));
}

TEST_F(LogTest, TerminalLinesCarryAUtcTimestampAndTheLevelInWords) {
  const auto now = fixed_time();
  EXPECT_EQ(log::format_line(Level::kDebug, "instance=main", "ready", false, now),
            "2024-03-05T07:08:09.042Z debug instance=main: ready\n");
  EXPECT_EQ(log::format_line(Level::kInfo, "instance=main", "ready", false, now),
            "2024-03-05T07:08:09.042Z info instance=main: ready\n");
  EXPECT_EQ(log::format_line(Level::kWarning, "instance=main", "ready", false, now),
            "2024-03-05T07:08:09.042Z warning instance=main: ready\n");
  EXPECT_EQ(log::format_line(Level::kError, "instance=main", "ready", false, now),
            "2024-03-05T07:08:09.042Z error instance=main: ready\n");
  // Milliseconds are zero-padded; a whole second shows .000.
  EXPECT_THAT(log::format_line(Level::kInfo, "c", "m", false, now - std::chrono::milliseconds(42)),
              StartsWith("2024-03-05T07:08:09.000Z "));
}

// journald files every line as its own record: each continuation line carries the priority.
TEST_F(LogTest, MultiLineMessagesIndentTheirContinuationLinesInBothModes) {
  const auto now = fixed_time();
  EXPECT_EQ(log::format_line(Level::kError, "instance=main", "did not start:\nFATAL: x\nHINT: y", true, now),
            "<3>instance=main: did not start:\n<3>    FATAL: x\n<3>    HINT: y\n");
  EXPECT_EQ(log::format_line(Level::kError, "instance=main", "did not start:\nFATAL: x", false, now),
            "2024-03-05T07:08:09.042Z error instance=main: did not start:\n    FATAL: x\n");
}

TEST_F(LogTest, EmptyContextAndMessageStillMakeOneLine) {
  EXPECT_EQ(log::format_line(Level::kInfo, "", "", true, fixed_time()), "<6>: \n");
}

// ---- Levels --------------------------------------------------------------------------------

TEST_F(LogTest, ParseLevelKnowsTheFourConfigWords) {
  Level level = Level::kError;
  ASSERT_TRUE(log::parse_level("debug", level));
  EXPECT_EQ(level, Level::kDebug);
  ASSERT_TRUE(log::parse_level("info", level));
  EXPECT_EQ(level, Level::kInfo);
  ASSERT_TRUE(log::parse_level("warning", level));
  EXPECT_EQ(level, Level::kWarning);
  ASSERT_TRUE(log::parse_level("error", level));
  EXPECT_EQ(level, Level::kError);

  // Unknown words leave `out` alone.
  level = Level::kWarning;
  EXPECT_FALSE(log::parse_level("warn", level));
  EXPECT_FALSE(log::parse_level("INFO", level));
  EXPECT_FALSE(log::parse_level("", level));
  EXPECT_FALSE(log::parse_level("debug ", level));
  EXPECT_EQ(level, Level::kWarning);
}

TEST_F(LogTest, EnabledIsTheLevelAndEverythingMoreSevere) {
  log::set_level(Level::kWarning);
  EXPECT_EQ(log::level(), Level::kWarning);
  EXPECT_FALSE(log::enabled(Level::kDebug));
  EXPECT_FALSE(log::enabled(Level::kInfo));
  EXPECT_TRUE(log::enabled(Level::kWarning));
  EXPECT_TRUE(log::enabled(Level::kError));

  log::set_level(Level::kDebug);
  EXPECT_TRUE(log::enabled(Level::kDebug));
  EXPECT_TRUE(log::enabled(Level::kInfo));

  log::set_level(Level::kError);
  EXPECT_FALSE(log::enabled(Level::kWarning));
  EXPECT_TRUE(log::enabled(Level::kError));
}

// pin_level cannot be undone, so it runs in a child process.
TEST(LogDeathTest, PinnedLevelIgnoresLaterSetLevel) {
  EXPECT_EXIT(
      {
        log::pin_level(Level::kDebug);
        log::set_level(Level::kError);  // what a config's log_level or a reload would do
        const bool kept = log::level() == Level::kDebug && log::enabled(Level::kDebug);
        log::pin_level(Level::kWarning);  // pinning again still sets it
        std::_Exit(kept && log::level() == Level::kWarning ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- write() and PGNAP_LOG, on a stderr redirected to a file --------------------------------

// Points stderr at a temporary file for the lifetime of the object.
class CapturedStderr {
 public:
  CapturedStderr() {
    std::string dir = ::testing::TempDir();
    path_ = dir + (dir.empty() || dir.back() == '/' ? "" : "/") + "pgnap_log_test_XXXXXX";
    const int fd = ::mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~CapturedStderr() {
    restore();
    ::unlink(path_.c_str());
  }
  // What was written so far; stderr goes back to where it was.
  std::string take() {
    restore();
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

TEST_F(LogTest, WriteSendsOneLineInTheModeToJournalSays) {
  CapturedStderr captured;
  log::write(Level::kWarning, "session=7 client=10.0.0.1:5000", "slow client");
  const std::string out = captured.take();
  if (log::to_journal()) {
    EXPECT_EQ(out, "<4>session=7 client=10.0.0.1:5000: slow client\n");
  } else {
    EXPECT_THAT(out, MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                                  "warning session=7 client=10\\.0\\.0\\.1:5000: slow client\n"));
  }
}

TEST_F(LogTest, MacroWritesNothingAndFormatsNothingBelowTheLevel) {
  log::set_level(Level::kWarning);
  int formatted = 0;
  auto count = [&formatted] { return ++formatted; };
  CapturedStderr captured;
  PGNAP_LOG(kDebug, "ctx" << count(), "debug " << count());
  PGNAP_LOG(kInfo, "ctx" << count(), "info " << count());
  EXPECT_EQ(formatted, 0);  // the level is checked before the operands are evaluated
  PGNAP_LOG(kWarning,
            "instance="
                << "main",
            "warning " << 42);
  PGNAP_LOG(kError, "ctx" << count(), "error " << count());
  EXPECT_EQ(formatted, 2);
  const std::string out = captured.take();

  EXPECT_THAT(out, Not(HasSubstr("debug ")));
  EXPECT_THAT(out, Not(HasSubstr("info ")));
  EXPECT_THAT(out, HasSubstr("instance=main: warning 42\n"));
  EXPECT_THAT(out, HasSubstr("ctx1: error 2\n"));
  // Two lines, the warning first.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
  EXPECT_LT(out.find("warning 42"), out.find("error 2"));
}

TEST_F(LogTest, MacroAtDebugWritesEveryLevel) {
  log::set_level(Level::kDebug);
  CapturedStderr captured;
  PGNAP_LOG(kDebug, "c", "d");
  PGNAP_LOG(kInfo, "c", "i");
  PGNAP_LOG(kWarning, "c", "w");
  PGNAP_LOG(kError, "c", "e");
  const std::string out = captured.take();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4) << out;
  EXPECT_THAT(out, HasSubstr("c: d\n"));
  EXPECT_THAT(out, HasSubstr("c: e\n"));
}

// ---- LineBudget ----------------------------------------------------------------------------

TEST(LineBudgetTest, AtMostNLinesPerSecondThenTheNextSaysHowManyWereLeftOut) {
  using Verdict = log::LineBudget::Verdict;
  log::LineBudget budget(3);
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  std::size_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(budget.take(t0 + std::chrono::milliseconds(i), suppressed), Verdict::kWrite);
    EXPECT_EQ(suppressed, 0u);
  }
  // The first line over the budget is announced once; the rest are dropped.
  EXPECT_EQ(budget.take(t0 + std::chrono::milliseconds(500), suppressed), Verdict::kFirstLeftOut);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(budget.take(t0 + std::chrono::milliseconds(500), suppressed), Verdict::kLeftOut);
  }
  // A new window: the first line carries the count, the next ones do not.
  ASSERT_EQ(budget.take(t0 + std::chrono::milliseconds(1000), suppressed), Verdict::kWrite);
  EXPECT_EQ(suppressed, 5u);
  ASSERT_EQ(budget.take(t0 + std::chrono::milliseconds(1001), suppressed), Verdict::kWrite);
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace pgnap::daemon
