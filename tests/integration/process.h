// Processes and files for the integration tests (process.cpp): commands run with deadlines
// (psql among them), what /proc says about processes, files and log text, temporary
// directories, and long-running helpers in the background.
//
// Everything a test starts is private to that test, so tests run in parallel (ctest -j): each
// TempDir is its own mkdtemp directory, in /dev/shm when it can, else /tmp (see scratch_root()).
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb and pg_ctl run as the
// `postgres` OS user (runuser: as_postgres()) and every directory PostgreSQL touches is chowned
// to it (chown_to_postgres()); otherwise they run as the current user.
//
// Setup failures (a directory that cannot be made, a file that cannot be written) throw
// std::runtime_error: GoogleTest reports the message as the test's failure. What a test checks
// is returned as values, for EXPECT/ASSERT.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgnap::it {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

struct CommandResult {
  int exit_code = -1;      // exit status; 128+N when killed by signal N; -1 if it did not run
  bool timed_out = false;  // killed (with its whole process group) at the deadline
  std::string out;
  std::string err;
  // "exit 1, stdout: ..., stderr: ..." for failure messages.
  [[nodiscard]] std::string describe() const;
};

// Runs argv (PATH lookup for argv[0]) in its own process group with `input` on stdin,
// capturing stdout and stderr. At the deadline the whole group is SIGKILLed.
[[nodiscard]] CommandResult run_command(const std::vector<std::string>& argv, Millis timeout = 60s,
                                        const std::string& input = {});

[[nodiscard]] bool running_as_root();
// argv prefixed with `runuser -u postgres --` when running as root; unchanged otherwise.
[[nodiscard]] std::vector<std::string> as_postgres(std::vector<std::string> argv);
// Gives `path` (recursively) to the postgres user when running as root; no-op otherwise.
void chown_to_postgres(const std::string& path);

// psql -X -A -t -v ON_ERROR_STOP=1 -c SQL "CONNINFO": the tool a user would reach for.
[[nodiscard]] CommandResult psql(const std::string& conninfo, const std::string& sql, Millis timeout = 60s);

// True while `pid` exists and is not a zombie.
[[nodiscard]] bool process_alive(pid_t pid);
// True once `pid` no longer exists at all (exited and reaped): what PostgreSQL's own
// kill(pid, 0) check of a lock file sees.
[[nodiscard]] bool process_gone(pid_t pid);
// The sockets `pid` holds open, as "socket:[INODE]" (readlink of /proc/PID/fd/*).
[[nodiscard]] std::vector<std::string> open_sockets(pid_t pid);
// Polls `condition` every `interval` until it holds (true) or `timeout` passes (false).
bool wait_until(const std::function<bool()>& condition, Millis timeout, Millis interval = 20ms);
// Runs body(0..n-1) on n threads released together (as close to "at once" as threads get),
// and joins them.
void run_in_parallel(int n, const std::function<void(int)>& body);

[[nodiscard]] std::string read_file(const std::string& path);  // "" if it cannot be read
void write_file(const std::string& path, const std::string& content);
void append_file(const std::string& path, const std::string& content);
// The last `n` lines of `text`.
[[nodiscard]] std::string tail_lines(const std::string& text, std::size_t n);
// How many lines of `text` contain `needle` and none of `unless` (log events whose names are
// substrings of others: "suspending" vs "queued while suspending", "asleep" vs "adopted asleep").
[[nodiscard]] std::size_t count_lines_containing(const std::string& text, std::string_view needle,
                                                 std::initializer_list<std::string_view> unless = {});
// How many lines of `text` contain every one of `needles`.
[[nodiscard]] std::size_t count_lines_with_all(const std::string& text,
                                               std::initializer_list<std::string_view> needles);

// A Prometheus text exposition's samples: "name{labels}" as exposed → value.
[[nodiscard]] std::map<std::string, double> metric_samples(const std::string& exposition);
// RFC 4180 rows (pgnap report --format csv): quoted fields may hold commas, doubled quotes and
// line breaks.
[[nodiscard]] std::vector<std::vector<std::string>> parse_csv(const std::string& text);

// Live processes whose parent is `parent`.
[[nodiscard]] std::vector<pid_t> child_processes(pid_t parent);
// Live processes whose process group is `pgid`.
[[nodiscard]] std::vector<pid_t> processes_in_group(pid_t pgid);
// Live processes whose command line (arguments joined by spaces) contains every one of `words`.
[[nodiscard]] std::vector<pid_t> processes_with_cmdline(std::initializer_list<std::string_view> words);

// Where TempDirs go: $PGNAP_IT_TMPDIR if set, else /dev/shm if writable, else /tmp.
[[nodiscard]] std::string scratch_root();

// A fresh directory ROOT/pgnap-it-XXXXXX under scratch_root() (short: a Unix socket path must
// fit in 107 bytes), removed with its contents on destruction unless PGNAP_IT_KEEP is set.
class TempDir {
 public:
  explicit TempDir(bool for_postgres);  // for_postgres: chown it to postgres when root
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Environment variables for a child: NAME, value.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

// A long-running helper (a private D-Bus daemon, a fake service) as a child in its own process
// group, stdin from /dev/null, stdout and stderr to `log_path`, with `env` added to the test's
// environment. The destructor stops it (SIGTERM, then SIGKILL of its group); on a failed test
// it first prints the tail of its log under `name`.
class BackgroundProcess {
 public:
  BackgroundProcess(std::string name, const std::vector<std::string>& argv, std::string log_path,
                    const EnvVars& env = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running();
  [[nodiscard]] std::string log() const;
  // Waits until the log contains `needle`; false if it does not in time or the process exits.
  bool wait_for_log(std::string_view needle, Millis timeout);
  void stop();

 private:
  std::string name_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

}  // namespace pgnap::it
