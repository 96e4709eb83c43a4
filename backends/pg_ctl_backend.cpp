#include "backends/pg_ctl_backend.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pgnap::backends {

namespace fs = std::filesystem;

namespace {

// pg_ctl's -t takes whole seconds; never 0 (which would mean "do not wait" to a reader).
std::chrono::seconds whole_seconds(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::chrono::seconds(std::max<long long>(1, (ms + 999) / 1000));
}

std::chrono::milliseconds until(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

long long file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<long long>(st.st_size);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && (s[b] == '\n' || s[b] == ' ')) ++b;
  return s.substr(b);
}

}  // namespace

std::string find_pg_bin_dir() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (dir.empty()) continue;
      std::error_code ec;
      if (fs::exists(fs::path(dir) / "pg_ctl", ec)) return dir;
    }
  }
  std::error_code ec;
  int best = -1;
  std::string best_dir;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long major = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || *end != '\0') continue;
    if (major > best && fs::exists(entry.path() / "bin" / "pg_ctl", ec)) {
      best = static_cast<int>(major);
      best_dir = (entry.path() / "bin").string();
    }
  }
  return best_dir;
}

PgCtlBackend::PgCtlBackend(PgCtlOptions options) : options_(std::move(options)) {}

std::string PgCtlBackend::pg_ctl() const { return (fs::path(options_.bin_dir) / "pg_ctl").string(); }

std::vector<std::string> PgCtlBackend::start_argv(std::chrono::seconds wait) const {
  // -w: pg_ctl waits for the server and reports a failed start with its exit status, while
  // pgnap's own probe (much more frequent than pg_ctl's 100 ms) releases clients earlier.
  // -s: only errors are printed.
  return {pg_ctl(), "start", "-D", options_.data_dir, "-l", options_.log_file, "-w", "-t", std::to_string(wait.count()),
          "-s"};
}

std::vector<std::string> PgCtlBackend::stop_argv(std::chrono::seconds wait) const {
  // Fast shutdown: sessions are gone by then (pgnap never suspends with one attached);
  // "smart" would wait on nothing, "immediate" would skip the shutdown checkpoint and make
  // the next start run crash recovery.
  return {pg_ctl(), "stop", "-D", options_.data_dir, "-m", "fast", "-w", "-t", std::to_string(wait.count()), "-s"};
}

std::vector<std::string> PgCtlBackend::status_argv() const { return {pg_ctl(), "status", "-D", options_.data_dir}; }

std::vector<std::string> PgCtlBackend::describe() const {
  std::vector<std::string> lines;
  lines.push_back("start:  " + format_command(start_argv(std::chrono::seconds(60))));
  lines.push_back("stop:   " + format_command(stop_argv(whole_seconds(options_.stop_timeout))));
  lines.push_back("status: " + format_command(status_argv()));
  if (options_.run_as) lines.push_back("as OS user: " + options_.run_as->name);
  return lines;
}

asio::awaitable<Status> PgCtlBackend::status() {
  // Named, not a braced temporary: GCC 12 miscompiles braced temporaries bound to a
  // coroutine's by-value parameter (double destruction).
  CommandSpec spec;
  spec.argv = status_argv();
  spec.run_as = options_.run_as;
  spec.timeout = std::chrono::seconds(10);
  auto r = co_await run_command(std::move(spec));
  if (r.end == CommandResult::End::kExited) {
    // pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
    if (r.exit_code == 0) co_return Status{RunState::kRunning, trim(r.output)};
    if (r.exit_code == 3) co_return Status{RunState::kStopped, trim(r.output)};
  }
  co_return Status{RunState::kUnknown, format_command(status_argv()) + " " + r.describe() +
                                           (r.output.empty() ? "" : ": " + trim(r.output))};
}

asio::awaitable<Outcome> PgCtlBackend::start(Clock::time_point deadline) {
  const long long log_offset = file_size(options_.log_file);
  auto outcome = co_await run_pg_ctl("start", deadline);
  if (outcome.ok) co_return outcome;
  if (const auto log = log_since(log_offset); !log.empty()) {
    outcome.detail += "\nserver log (" + options_.log_file + "):\n" + log;
  }
  co_return outcome;
}

asio::awaitable<Outcome> PgCtlBackend::stop(Clock::time_point deadline) { return run_pg_ctl("stop", deadline); }

asio::awaitable<Outcome> PgCtlBackend::run_pg_ctl(std::string_view action, Clock::time_point deadline) {
  // pg_ctl's own wait (-t) ends just before pgnap's deadline for the command, so a slow
  // start or stop is reported by pg_ctl, with its message, rather than killed.
  const auto budget = until(deadline);
  const auto wait = whole_seconds(budget);
  auto argv = action == "start" ? start_argv(wait) : stop_argv(wait);
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.run_as = options_.run_as;
  spec.timeout = budget + std::chrono::seconds(1);
  auto r = co_await run_command(std::move(spec));
  if (r.ok()) co_return Outcome::success();
  std::string why = "pg_ctl " + std::string(action) + " " + r.describe();
  if (const auto out = trim(r.output); !out.empty()) why += ": " + out;
  co_return Outcome::failure(std::move(why));
}

std::string PgCtlBackend::log_since(long long offset) const {
  // Only on the failure path, and bounded: a few kB of a local file.
  constexpr long long kMaxTail = 4096;
  constexpr int kMaxLines = 8;
  std::ifstream in(options_.log_file, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const long long size = static_cast<long long>(in.tellg());
  if (size <= offset) return {};
  const long long from = std::max(offset, size - kMaxTail);
  in.seekg(from);
  std::string text(static_cast<std::size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  text = trim(text);
  // Keep the last lines.
  int lines = 0;
  for (std::size_t i = text.size(); i-- > 0;) {
    if (text[i] == '\n' && ++lines == kMaxLines) return text.substr(i + 1);
  }
  return text;
}

}  // namespace pgnap::backends
