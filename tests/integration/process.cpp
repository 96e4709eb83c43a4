// Processes and files of the integration-test harness (process.h): running commands with
// deadlines, looking at /proc, temporary directories. Clusters and the gateway are in
// harness.cpp; libpq and raw-socket clients in pg_client.cpp.
#include "tests/integration/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <barrier>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/integration/harness_internal.h"

namespace pgnap::it {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A write to a peer that has gone away (a pipe, a socket pgnap closed) must fail with EPIPE,
// not kill the test process.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

bool keep_dirs() { return std::getenv("PGNAP_IT_KEEP") != nullptr; }

}  // namespace

namespace internal {

void fail(const std::string& what) { throw std::runtime_error(what); }

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  out.reserve(argv.size() + 1);
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// Its own process group, so a deadline can kill everything it starts; death with the test
// process, so a crashed test leaves nothing behind.
void child_setup() {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The test process ignores SIGPIPE; an ignored signal stays ignored across exec, and the
  // programs under test must meet SIGPIPE as they would in production.
  std::signal(SIGPIPE, SIG_DFL);
}

void child_exec_failed(const char* what) {
  const char msg[] = "harness: exec failed: ";
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, what, std::strlen(what));
  (void)!write(2, "\n", 1);
  _exit(127);
}

int spawn_logged(const std::vector<std::string>& argv, const std::string& log_path,
                 const std::vector<std::pair<std::string, std::string>>& env) {
  auto args = c_argv(argv);
  // The child's environment, built before the fork (nothing after it may allocate).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    if (std::none_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == name; })) {
      env_strings.emplace_back(entry);
    }
  }
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  auto envp = c_argv(env_strings);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) fail("open " + log_path + ": " + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = fork();
  if (pid < 0) fail("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    child_setup();
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execvpe(args[0], args.data(), envp.data());
    child_exec_failed(args[0]);
  }
  setpgid(pid, pid);  // also from the parent: no window where a kill of the group misses it
  ::close(log_fd);
  ::close(null_fd);
  return pid;
}

bool test_failed() {
  return ::testing::UnitTest::GetInstance()->current_test_info() != nullptr && ::testing::Test::HasFailure();
}

void print_section(const std::string& title, const std::string& body) {
  std::cerr << "\n---- " << title << " ----\n" << body;
  if (!body.empty() && body.back() != '\n') std::cerr << '\n';
  std::cerr << "---- end of " << title << " ----\n";
}

void expect_no_sanitizer_report(const std::string& who, const std::string& output) {
  // The first line of each sanitizer's report ("==PID==ERROR: AddressSanitizer: ...",
  // "==PID==ERROR: LeakSanitizer: ...", "FILE:LINE:COL: runtime error: ..." for UBSan).
  for (const std::string_view marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
    const std::size_t at = output.find(marker);
    if (at == std::string::npos) continue;
    const std::size_t line = output.rfind('\n', at);
    ADD_FAILURE() << who << " printed a sanitizer report:\n"
                  << output.substr(line == std::string::npos ? 0 : line + 1, 30000);
    return;
  }
}

}  // namespace internal

using namespace internal;

// ---- Processes and files ---------------------------------------------------------------------

std::string CommandResult::describe() const {
  std::ostringstream s;
  s << (timed_out ? "timed out (killed), " : "") << "exit " << exit_code << "\nstdout: " << tail_lines(out, 40)
    << "\nstderr: " << tail_lines(err, 40);
  return s.str();
}

CommandResult run_command(const std::vector<std::string>& argv, Millis timeout, const std::string& input) {
  CommandResult result;
  if (argv.empty()) return result;
  std::array<int, 2> in{}, out{}, err{};
  if (pipe2(in.data(), O_CLOEXEC) != 0 || pipe2(out.data(), O_CLOEXEC) != 0 || pipe2(err.data(), O_CLOEXEC) != 0) {
    fail("pipe2: " + std::string(std::strerror(errno)));
  }
  auto args = c_argv(argv);
  const pid_t pid = fork();
  if (pid < 0) fail("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    child_setup();
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execvp(args[0], args.data());
    child_exec_failed(args[0]);
  }
  setpgid(pid, pid);  // also from the parent, so a kill at the deadline cannot miss it
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  for (int fd : {in[1], out[0], err[0]}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  const auto deadline = Clock::now() + timeout;
  std::size_t written = 0;
  int in_fd = in[1];
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int out_fd = out[0], err_fd = err[0];
  bool reaped = false;
  int status = 0;
  std::optional<Clock::time_point> reaped_at;
  while (true) {
    if (!reaped) {
      const pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        reaped = true;
        reaped_at = Clock::now();
      }
    }
    // Done when it exited and its pipes closed; a daemon it left holding them open (it
    // should not) gets half a second before we stop listening.
    if (reaped && ((out_fd < 0 && err_fd < 0) || Clock::now() - *reaped_at > 500ms)) break;
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      if (!reaped) {
        waitpid(pid, &status, 0);
        reaped = true;
      }
      break;
    }
    std::vector<pollfd> fds;
    if (in_fd >= 0) fds.push_back({in_fd, POLLOUT, 0});
    if (out_fd >= 0) fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0) fds.push_back({err_fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), 10);
    if (in_fd >= 0) {
      const ssize_t n = ::write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
    for (auto [fd, sink] : {std::pair{&out_fd, &result.out}, std::pair{&err_fd, &result.err}}) {
      if (*fd < 0) continue;
      char buf[65536];
      const ssize_t n = ::read(*fd, buf, sizeof buf);
      if (n > 0) {
        sink->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(*fd);
        *fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) ::close(fd);
  }
  result.exit_code = result.timed_out ? -1 : decode_wait_status(status);
  expect_no_sanitizer_report(argv[0], result.err);
  return result;
}

bool running_as_root() { return geteuid() == 0; }

std::vector<std::string> as_postgres(std::vector<std::string> argv) {
  if (!running_as_root()) return argv;
  std::vector<std::string> out{"runuser", "-u", "postgres", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void chown_to_postgres(const std::string& path) {
  if (!running_as_root()) return;
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr) fail("running as root, but there is no `postgres` OS user to run PostgreSQL");
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  // lchown: symlinks (the wrapper bin dir's) change, never what they point to.
  if (::lchown(path.c_str(), uid, gid) != 0) fail("chown " + path + ": " + std::strerror(errno));
  if (!fs::is_directory(fs::symlink_status(path))) return;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    if (::lchown(entry.path().c_str(), uid, gid) != 0) {
      fail("chown " + entry.path().string() + ": " + std::strerror(errno));
    }
  }
}

CommandResult psql(const std::string& conninfo, const std::string& sql, Millis timeout) {
  return run_command({"psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, conninfo}, timeout);
}

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  // A zombie is dead, just not yet reaped by its parent.
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  return stat[paren + 2] != 'Z' && stat[paren + 2] != 'X';
}

bool process_gone(pid_t pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

std::vector<std::string> open_sockets(pid_t pid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const auto target = fs::read_symlink(entry.path(), ec).string();
    if (target.starts_with("socket:")) out.push_back(target);
  }
  return out;
}

bool wait_until(const std::function<bool()>& condition, Millis timeout, Millis interval) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

void run_in_parallel(int n, const std::function<void(int)>& body) {
  std::barrier start(n);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      body(i);
    });
  }
  for (auto& t : threads) t.join();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out.flush()) fail("cannot write " + path);
}

void append_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << content;
  if (!out.flush()) fail("cannot append to " + path);
}

std::string tail_lines(const std::string& text, std::size_t n) {
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (std::size_t lines = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++lines == n) break;
  }
  return text.substr(pos);
}

std::size_t count_lines_containing(const std::string& text, std::string_view needle,
                                   std::initializer_list<std::string_view> unless) {
  std::size_t count = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) == std::string::npos) continue;
    bool excluded = false;
    for (auto u : unless) excluded = excluded || line.find(u) != std::string::npos;
    if (!excluded) ++count;
  }
  return count;
}

std::map<std::string, double> metric_samples(const std::string& exposition) {
  std::map<std::string, double> out;
  std::size_t start = 0;
  while (start < exposition.size()) {
    const std::size_t end = exposition.find('\n', start);
    const std::string line = exposition.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty() && line[0] != '#') {
      const auto space = line.rfind(' ');
      if (space != std::string::npos) out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      rows.back().push_back(std::move(field));
      field.clear();
      rows.emplace_back();
    } else if (c != '\r') {
      field += c;
    }
  }
  if (!field.empty() || !rows.back().empty()) rows.back().push_back(field);
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

std::size_t count_lines_with_all(const std::string& text, std::initializer_list<std::string_view> needles) {
  std::size_t count = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (auto n : needles) all = all && line.find(n) != std::string::npos;
    if (all) ++count;
  }
  return count;
}

namespace {

// Every live pid with its /proc/PID/stat process group and its command line.
struct ProcInfo {
  pid_t pid;
  pid_t ppid;
  pid_t pgid;
  std::string cmdline;
};

std::vector<ProcInfo> list_processes() {
  std::vector<ProcInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(name.c_str()));
    if (!process_alive(pid)) continue;
    // stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces, so parse after ')'.
    const std::string stat = read_file("/proc/" + name + "/stat");
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    std::string state;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    std::string cmdline = read_file("/proc/" + name + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    out.push_back({pid, static_cast<pid_t>(ppid), static_cast<pid_t>(pgrp), cmdline});
  }
  return out;
}

}  // namespace

std::vector<pid_t> child_processes(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& p : list_processes()) {
    if (p.ppid == parent) out.push_back(p.pid);
  }
  return out;
}

std::vector<pid_t> processes_in_group(pid_t pgid) {
  std::vector<pid_t> out;
  for (const auto& p : list_processes()) {
    if (p.pgid == pgid) out.push_back(p.pid);
  }
  return out;
}

std::vector<pid_t> processes_with_cmdline(std::initializer_list<std::string_view> words) {
  std::vector<pid_t> out;
  for (const auto& p : list_processes()) {
    bool all = p.pid != getpid();
    for (auto w : words) all = all && p.cmdline.find(w) != std::string::npos;
    if (all) out.push_back(p.pid);
  }
  return out;
}

std::string scratch_root() {
  // $PGNAP_IT_TMPDIR, else /dev/shm (tmpfs: copying a cluster there is ~10x faster than to a
  // disk, and nothing here needs to survive a reboot), else /tmp.
  if (const char* dir = std::getenv("PGNAP_IT_TMPDIR"); dir != nullptr && *dir != '\0') return dir;
  if (::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
  return "/tmp";
}

TempDir::TempDir(bool for_postgres) {
  std::string templ = scratch_root() + "/pgnap-it-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) fail("mkdtemp: " + std::string(std::strerror(errno)));
  path_ = templ;
  if (for_postgres) chown_to_postgres(path_);
}

BackgroundProcess::BackgroundProcess(std::string name, const std::vector<std::string>& argv, std::string log_path,
                                     const EnvVars& env)
    : name_(std::move(name)), log_path_(std::move(log_path)) {
  pid_ = spawn_logged(argv, log_path_, env);
}

BackgroundProcess::~BackgroundProcess() {
  stop();  // first, so that a report LeakSanitizer prints at exit is in the log
  expect_no_sanitizer_report(name_, log());
  if (test_failed()) print_section(name_ + " log " + log_path_ + " (tail)", tail_lines(log(), 40));
}

bool BackgroundProcess::running() {
  if (pid_ <= 0 || reaped_) return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) {
    reaped_ = true;  // never signal that pid again
    return false;
  }
  return true;
}

std::string BackgroundProcess::log() const { return read_file(log_path_); }

bool BackgroundProcess::wait_for_log(std::string_view needle, Millis timeout) {
  return wait_until([&] { return log().find(needle) != std::string::npos || !running(); }, timeout) &&
         log().find(needle) != std::string::npos;
}

void BackgroundProcess::stop() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  if (wait_until([&] { return !running(); }, 5s, 10ms)) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  (void)wait_until([&] { return !running(); }, 10s, 10ms);
}

TempDir::~TempDir() {
  if (keep_dirs()) {
    std::cerr << "PGNAP_IT_KEEP: keeping " << path_ << '\n';
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace pgnap::it
