#include "backends/child_process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/wait.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
// Boost 1.81's Process v2 uses boost::optional and <type_traits> without including them
// when BOOST_PROCESS_USE_STD_FS is set.
#include <boost/optional.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
#include <type_traits>

namespace pgnap::backends {

namespace bp = boost::process::v2;
using namespace boost::asio::experimental::awaitable_operators;

std::optional<RunAs> lookup_user(const std::string& name, std::string& error) {
  errno = 0;
  const passwd* pw = ::getpwnam(name.c_str());
  if (pw == nullptr) {
    error = errno != 0 ? std::string("cannot look up OS user \"") + name + "\": " + std::strerror(errno)
                       : std::string("OS user \"") + name + "\" does not exist";
    return std::nullopt;
  }
  RunAs r{name, pw->pw_uid, pw->pw_gid, {}, pw->pw_dir ? pw->pw_dir : "/"};
  int n = 32;
  r.groups.resize(static_cast<std::size_t>(n));
  while (::getgrouplist(name.c_str(), pw->pw_gid, r.groups.data(), &n) < 0) {
    r.groups.resize(static_cast<std::size_t>(n) + 32);
    n = static_cast<int>(r.groups.size());
  }
  r.groups.resize(static_cast<std::size_t>(n));
  return r;
}

namespace {

// linux/close_range.h: set close-on-exec instead of closing (Linux 5.11).
constexpr unsigned kCloseRangeCloexec = 1U << 2;

// Runs in the child between fork and exec, so it may only make async-signal-safe calls:
// everything it needs was resolved before the fork.
struct ChildSetup {
  const RunAs* run_as;
  const char* const* env;  // nullptr: pgnap's own environment

  // In the parent, before the fork.
  template <typename Launcher>
  bp::error_code on_setup(Launcher& launcher, const bp::filesystem::path&, const char* const*) {
    if (env != nullptr) launcher.env = env;
    return {};
  }

  template <typename Launcher>
  bp::error_code on_exec_setup(Launcher&, const bp::filesystem::path&, const char* const*) {
    // Own process group: a timeout kills the command and anything it started in the group.
    if (::setpgid(0, 0) != 0) return {errno, boost::system::system_category()};
    // Nothing of pgnap's may leak into the command, and through it into a PostgreSQL server
    // that outlives it: a listening socket or a client connection held by the postmaster
    // would keep the port busy after pgnap exits. Boost 1.81's close_all() leaves a gap
    // below its exec-error pipe, so mark everything above stdio close-on-exec here (the
    // error pipe is close-on-exec already, as it must be).
    if (::syscall(SYS_close_range, 3U, ~0U, kCloseRangeCloexec) != 0) {
      rlimit limit{};
      const rlim_t max = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? std::min<rlim_t>(limit.rlim_cur, 1 << 20) : 1024;
      for (int fd = 3; fd < static_cast<int>(max); ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    // The parent may have SIGPIPE ignored; commands expect the default.
    ::signal(SIGPIPE, SIG_DFL);
    if (run_as != nullptr) {
      if (::setgroups(run_as->groups.size(), run_as->groups.data()) != 0 || ::setgid(run_as->gid) != 0 ||
          ::setuid(run_as->uid) != 0) {
        return {errno, boost::system::system_category()};
      }
      // pgnap's working directory may not be readable by the target user.
      if (::chdir("/") != 0) return {errno, boost::system::system_category()};
    }
    return {};
  }
};

void append_bounded(std::string& out, const char* data, std::size_t n, std::size_t max) {
  out.append(data, n);
  if (out.size() > max) out.erase(0, out.size() - max);
}

std::string find_on_path(const std::string& name, const std::string& path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find(':', start), path.size());
    const std::string dir = end > start ? path.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

std::string format_ms(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

std::string CommandResult::describe() const {
  switch (end) {
    case End::kExited: return "exited with status " + std::to_string(exit_code);
    case End::kSignaled:
      return std::string("killed by signal ") + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
    case End::kTimedOut: return "did not finish in time and was killed";
    case End::kSpawnFailed: return "could not be started: " + error;
  }
  return "?";
}

std::string format_command(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) {
    if (!line.empty()) line += ' ';
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") ==
                                         std::string::npos;
    if (plain) {
      line += a;
    } else {
      line += '\'';
      for (char c : a) {
        if (c == '\'') line += "'\\''";
        else line += c;
      }
      line += '\'';
    }
  }
  return line;
}

asio::awaitable<CommandResult> run_command(CommandSpec spec) {
  auto executor = co_await asio::this_coro::executor;
  CommandResult result;
  if (spec.argv.empty()) {
    result.error = "empty command";
    co_return result;
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    co_return result;
  }
  asio::readable_pipe out(executor, fds[0]);

  // The environment, prepared before the fork (nothing after it may allocate).
  std::vector<std::string> env_strings;
  std::vector<const char*> env_pointers;
  if (!spec.env.empty()) {
    for (char** e = ::environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      const std::string_view name = entry.substr(0, entry.find('='));
      const bool overridden = std::any_of(spec.env.begin(), spec.env.end(),
                                          [&](const auto& kv) { return kv.first == name; });
      if (!overridden) env_strings.emplace_back(entry);
    }
    for (const auto& [name, value] : spec.env) env_strings.push_back(name + "=" + value);
    for (const auto& s : env_strings) env_pointers.push_back(s.c_str());
    env_pointers.push_back(nullptr);
  }

  // A bare program name is looked up on PATH, as a shell would (execve does not).
  std::string program = spec.argv.front();
  if (program.find('/') == std::string::npos) {
    std::string path;
    if (const char* p = ::getenv("PATH")) path = p;
    for (const auto& [name, value] : spec.env) {
      if (name == "PATH") path = value;
    }
    program = find_on_path(spec.argv.front(), path);
    if (program.empty()) {
      result.error = "\"" + spec.argv.front() + "\" not found on PATH (" + path + ")";
      ::close(fds[1]);  // fds[0] belongs to `out`
      co_return result;
    }
  }

  bp::error_code ec;
  std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());
  pid_t pid = -1;
  {
    const RunAs* run_as = spec.run_as ? &*spec.run_as : nullptr;
    const char* const* env = env_pointers.empty() ? nullptr : env_pointers.data();
    auto proc = bp::default_process_launcher()(executor, ec, program, args, bp::process_stdio{nullptr, fds[1], fds[1]},
                                               ChildSetup{run_as, env});
    // Reaping is ours (below), not Process v2's: its async_wait calls a blocking waitpid()
    // as soon as the pidfd looks readable, and a readiness left over from a closed
    // descriptor whose number and reactor state were reused would block the whole loop.
    if (!ec) {
      pid = proc.id();
      proc.detach();
    }
  }
  ::close(fds[1]);
  if (ec) {
    result.error = ec.message();
    co_return result;
  }

  // Kills the whole group; used on timeout and on cancellation. The group id is the pid
  // (setpgid(0, 0) in the child).
  auto kill_group = [pid] { ::kill(-pid, SIGKILL); };
  int status = 0;
  bool reaped = false;
  // After SIGKILL the child exits at once: a blocking reap is immediate.
  auto reap_now = [&] {
    while (!reaped) {
      const pid_t r = ::waitpid(pid, &status, 0);
      if (r == pid || (r < 0 && errno != EINTR)) reaped = true;
    }
  };

  const int pidfd_raw = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd_raw < 0) {
    kill_group();
    reap_now();
    result.error = std::string("pidfd_open: ") + std::strerror(errno);
    co_return result;
  }
  asio::posix::stream_descriptor pidfd(executor, pidfd_raw);
  // Completes once the child has exited and been reaped; a spurious readiness only costs
  // one non-blocking waitpid().
  auto wait_exit = [&]() -> asio::awaitable<void> {
    for (;;) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) {
        reaped = true;
        co_return;
      }
      auto [wec] = co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                                             asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;  // cancelled
    }
  };

  auto read_output = [&]() -> asio::awaitable<void> {
    std::array<char, 4096> buf;
    for (;;) {
      auto [rec, n] = co_await out.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (n > 0) append_bounded(result.output, buf.data(), n, spec.max_output);
      if (rec) co_return;  // EOF: every writer (the command and its children) is gone
    }
  };

  asio::steady_timer timer(executor, spec.timeout);
  auto cancellation = co_await asio::this_coro::cancellation_state;
  // Never leave the command running when our caller gives up on it.
  auto abandon = [&] {
    kill_group();
    reap_now();
    throw boost::system::system_error(asio::error::operation_aborted);
  };

  // Output and exit are awaited together (a command that fills the pipe would otherwise
  // block forever). The output normally ends when the command exits, but a grandchild that
  // outlives it (a daemon that kept the pipe) would hold it open: after the exit the output
  // gets only a short grace period.
  auto wait_then_grace = [&]() -> asio::awaitable<void> {
    co_await wait_exit();
    if (!reaped) co_return;  // cancelled: the output ended first
    asio::steady_timer grace(executor, std::chrono::milliseconds(200));
    co_await grace.async_wait(asio::as_tuple(asio::use_awaitable));
  };
  auto first = co_await (read_output() || wait_then_grace() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (cancellation.cancelled() != asio::cancellation_type::none) abandon();
  bool timed_out = first.index() == 2 && !reaped;
  if (!reaped && !timed_out) {
    // The output closed first; the command is still finishing.
    auto second = co_await (wait_exit() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (cancellation.cancelled() != asio::cancellation_type::none) abandon();
    timed_out = !reaped;
  }
  if (timed_out) {
    kill_group();
    reap_now();
  }

  if (timed_out) {
    result.end = CommandResult::End::kTimedOut;
    result.error = "timed out after " + format_ms(spec.timeout);
  } else if (WIFEXITED(status)) {
    result.end = CommandResult::End::kExited;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.end = CommandResult::End::kSignaled;
    result.signal = WTERMSIG(status);
  }
  co_return result;
}

}  // namespace pgnap::backends
