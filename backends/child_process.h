// Runs a short-lived command (pg_ctl, later the exec backend's commands) without blocking
// the event loop: spawned with Boost.Process v2, reaped through a pidfd watched by Asio,
// its stdout and stderr captured together (bounded), killed with its whole process group
// when it overruns its timeout or when the awaiting coroutine is cancelled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace pgnap::backends {

namespace asio = boost::asio;

// An OS account a command runs as when pgnap runs as root, resolved once at start-up so
// nothing after fork() touches NSS or malloc.
struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string home;
};

// Looks `name` up in the user database. Called at start-up, not on the event loop's hot path.
[[nodiscard]] std::optional<RunAs> lookup_user(const std::string& name, std::string& error);

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0]: an absolute path
  std::optional<RunAs> run_as;    // switch to this user in the child (requires root)
  std::chrono::milliseconds timeout{60000};
  std::size_t max_output = 16 * 1024;  // the last bytes of stdout+stderr are kept
  // Added to (or replacing) pgnap's own environment for this command.
  std::vector<std::pair<std::string, std::string>> env;
};

struct CommandResult {
  enum class End { kExited, kSignaled, kTimedOut, kSpawnFailed };
  End end = End::kSpawnFailed;
  int exit_code = -1;  // kExited
  int signal = 0;      // kSignaled
  std::string output;  // stdout and stderr interleaved, at most max_output bytes (the tail)
  std::string error;   // kSpawnFailed: why

  [[nodiscard]] bool ok() const { return end == End::kExited && exit_code == 0; }
  // "exited with status 1", "killed by signal 9", "timed out after 5s and was killed",
  // "could not be started: No such file or directory".
  [[nodiscard]] std::string describe() const;
};

// Runs the command to completion. The child runs in its own process group (so a timeout or
// a cancellation kills the command and everything it spawned in that group), with stdin
// from /dev/null, and with its working directory set to "/" when it switches user.
[[nodiscard]] asio::awaitable<CommandResult> run_command(CommandSpec spec);

// Formats argv as one shell-like line for logs ("pg_ctl start -D '/a b'").
[[nodiscard]] std::string format_command(const std::vector<std::string>& argv);

}  // namespace pgnap::backends
