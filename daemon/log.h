// Logging: one line per event on stderr. Run by systemd (JOURNAL_STREAM names our stderr),
// lines carry a syslog priority prefix ("<4>") and no timestamp, as journald adds its own;
// otherwise an ISO 8601 UTC timestamp and the level in words. Every line carries its context
// (gateway, instance=NAME, session=N client=ADDR). The level is checked before anything is
// formatted: use the PGNAP_LOG macro.
#pragma once

#include <chrono>
#include <sstream>
#include <string>
#include <string_view>

namespace pgnap::daemon::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void set_level(Level level);
// Sets the level and keeps it: later set_level calls (log_level, a reload) are ignored (-v).
void pin_level(Level level);
[[nodiscard]] Level level();
[[nodiscard]] bool enabled(Level level);
// "debug", "info", "warning", "error"; false when unknown.
[[nodiscard]] bool parse_level(std::string_view text, Level& out);

// Writes one complete line with a single write(2), so lines from one process never
// interleave.
void write(Level level, std::string_view context, std::string_view message);
// The line write() sends, newline included: with `journal`, the syslog priority prefix and no
// timestamp; otherwise `now` as an ISO 8601 UTC timestamp and the level in words.
[[nodiscard]] std::string format_line(Level level, std::string_view context, std::string_view message, bool journal,
                                      std::chrono::system_clock::time_point now);
// Whether stderr goes to the journal (decided once, from $JOURNAL_STREAM and stderr's device
// and inode, as sd_journal_stream_fd's protocol documents).
[[nodiscard]] bool to_journal();

// A budget for lines a client can cause at will (refused startups, failed handshakes): at
// most `per_second` in any one-second window, so a flood of bad connections cannot flood the
// journal. The metrics still count every event.
class LineBudget {
 public:
  explicit LineBudget(std::size_t per_second) : per_second_(per_second) {}
  enum class Verdict {
    kWrite,         // write the line
    kFirstLeftOut,  // the budget just ran out: write a line saying lines are left out
    kLeftOut,       // write nothing
  };
  // What to do with a line now. With kWrite, `suppressed` is the number of lines left out
  // since the last one written (to say so in that line), else 0.
  [[nodiscard]] Verdict take(std::chrono::steady_clock::time_point now, std::size_t& suppressed);

 private:
  std::size_t per_second_;
  std::chrono::steady_clock::time_point window_start_{};
  std::size_t in_window_ = 0;
  std::size_t suppressed_ = 0;
};

}  // namespace pgnap::daemon::log

// PGNAP_LOG(kInfo, "instance=" << name, "ready after " << ms << " ms");
#define PGNAP_LOG(LEVEL, CONTEXT, MESSAGE)                                                                         \
  do {                                                                                                             \
    if (::pgnap::daemon::log::enabled(::pgnap::daemon::log::Level::LEVEL)) {                                       \
      std::ostringstream pgnap_log_ctx_;                                                                           \
      pgnap_log_ctx_ << CONTEXT;                                                                                   \
      std::ostringstream pgnap_log_msg_;                                                                           \
      pgnap_log_msg_ << MESSAGE;                                                                                   \
      ::pgnap::daemon::log::write(::pgnap::daemon::log::Level::LEVEL, pgnap_log_ctx_.str(), pgnap_log_msg_.str()); \
    }                                                                                                              \
  } while (0)
