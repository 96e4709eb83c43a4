#include "daemon/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace pgnap::daemon::log {

namespace {
std::atomic<Level> g_level{Level::kInfo};
std::atomic<bool> g_pinned{false};  // -v: later set_level calls are ignored

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "?";
}

// syslog priorities, which journald reads from a line's "<N>" prefix: 3 err, 4 warning,
// 6 info, 7 debug.
const char* journal_prefix(Level l) {
  switch (l) {
    case Level::kDebug: return "<7>";
    case Level::kInfo: return "<6>";
    case Level::kWarning: return "<4>";
    case Level::kError: return "<3>";
  }
  return "<6>";
}

void append_stamp(std::string& line, std::chrono::system_clock::time_point now) {
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  line += stamp;
}

void write_all(const std::string& line) {
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr gone: nothing sensible to do
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void set_level(Level level) {
  if (!g_pinned.load(std::memory_order_relaxed)) g_level.store(level, std::memory_order_relaxed);
}

void pin_level(Level level) {
  g_level.store(level, std::memory_order_relaxed);
  g_pinned.store(true, std::memory_order_relaxed);
}
Level level() { return g_level.load(std::memory_order_relaxed); }
bool enabled(Level l) { return static_cast<int>(l) >= static_cast<int>(level()); }

bool parse_level(std::string_view text, Level& out) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarning, Level::kError}) {
    if (text == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

bool to_journal() {
  static const bool journal = [] {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
  }();
  return journal;
}

void write(Level l, std::string_view context, std::string_view message) {
  write_all(format_line(l, context, message, to_journal(), std::chrono::system_clock::now()));
}

std::string format_line(Level l, std::string_view context, std::string_view message, bool journal,
                        std::chrono::system_clock::time_point now) {
  std::string line;
  line.reserve(64 + context.size() + message.size());
  if (journal) {
    line += journal_prefix(l);
  } else {
    append_stamp(line, now);
    line += ' ';
    line += level_name(l);
    line += ' ';
  }
  line += context;
  line += ": ";
  // Multi-line messages (a server log excerpt): continuation lines are indented so a reader,
  // and grep, can tell them apart. journald makes each line a record of its own, so each
  // carries the priority too (else an error's details would be filed as info).
  for (char c : message) {
    line += c;
    if (c != '\n') continue;
    if (journal) line += journal_prefix(l);
    line += "    ";
  }
  line += '\n';
  return line;
}

LineBudget::Verdict LineBudget::take(std::chrono::steady_clock::time_point now, std::size_t& suppressed) {
  suppressed = 0;
  if (now - window_start_ >= std::chrono::seconds(1)) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= per_second_) {
    return ++suppressed_ == 1 ? Verdict::kFirstLeftOut : Verdict::kLeftOut;
  }
  ++in_window_;
  suppressed = suppressed_;
  suppressed_ = 0;
  return Verdict::kWrite;
}

}  // namespace pgnap::daemon::log
