// Clusters, the pg_ctl wrapper and the gateway of the integration-test harness (harness.h).
// Processes and files are in process.cpp; libpq and raw-socket clients in pg_client.cpp.
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>

#include "tests/integration/harness_internal.h"

namespace pgnap::it {

namespace fs = std::filesystem;
using namespace internal;

std::string toml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::uint16_t free_tcp_port() {
  // Bound and released at once: another process could take it before PostgreSQL does, but
  // the kernel hands out ephemeral ports in a spread-out order, so a clash is very unlikely.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    fail("bind 127.0.0.1:0: " + std::string(std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---- Build-time facts ------------------------------------------------------------------------

std::string pgnap_binary() {
  // `make test-sanitize` runs these tests against the sanitized build's pgnap.
  if (const char* other = std::getenv("PGNAP_BINARY"); other != nullptr && *other != '\0') return other;
  return PGNAP_BINARY;
}
std::string pg_bin_dir() { return PGNAP_PG_BIN_DIR; }
std::string template_dir() { return PGNAP_IT_TEMPLATE_DIR; }
std::string source_dir() { return PGNAP_SOURCE_DIR; }
std::string pgnap_version() { return PGNAP_IT_VERSION; }

std::string pgnap_revision() {
  const auto head = run_command({"git", "-C", PGNAP_SOURCE_DIR, "rev-parse", "--short=12", "HEAD"});
  if (head.exit_code != 0) return "unknown";
  const auto changes = run_command({"git", "-C", PGNAP_SOURCE_DIR, "status", "--porcelain", "--untracked-files=no"});
  std::string revision = head.out.substr(0, head.out.find_first_of("\r\n"));
  if (changes.exit_code != 0 || !changes.out.empty()) revision += "-dirty";
  return revision;
}

// ---- The template cluster --------------------------------------------------------------------

const std::string& ensure_template() {
  static std::once_flag once;
  static std::string data_dir;
  std::call_once(once, [] {
    const std::string root = template_dir();
    fs::create_directories(fs::path(root).parent_path());
    // One creator per build tree; the others wait here and then find it ready.
    const std::string lock_path = root + ".lock";
    const int lock = ::open(lock_path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) fail("open " + lock_path + ": " + std::strerror(errno));
    if (::flock(lock, LOCK_EX) != 0) fail("flock " + lock_path + ": " + std::strerror(errno));
    struct Unlock {
      int fd;
      ~Unlock() { ::close(fd); }
    } unlock{lock};

    // `ready` holds the recipe the template was made with: a template made by an older
    // harness (other settings, another PostgreSQL) is made again.
    const std::string recipe = "pgnap-it template 2: initdb from " + pg_bin_dir() +
                               ", 1 MB WAL segments, fsync off, shared_buffers 16MB\n";
    if (read_file(root + "/ready") != recipe) {
      // initdb runs in a scratch directory (the postgres user may not reach the build tree),
      // and the result is copied in and renamed into place, so `ready` only ever marks a
      // complete template.
      fs::remove_all(root);
      const std::string staging = root + ".tmp";
      fs::remove_all(staging);
      TempDir work(true);
      const std::string work_data = work.path() + "/data";
      const auto init = run_command(as_postgres({pg_bin_dir() + "/initdb", "-D", work_data, "-U", "postgres",
                                                 "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions",
                                                 // 1 MB WAL segments instead of 16: a smaller template copies faster.
                                                 "--wal-segsize=1"}),
                                    180s);
      if (init.exit_code != 0) fail("initdb of the template cluster failed: " + init.describe());
      append_file(work_data + "/postgresql.conf",
                  "\n# pgnap integration tests: durability off (throwaway clusters), small, and\n"
                  "# private (no TCP unless a test asks; the socket dir is set per copy).\n"
                  "fsync = off\n"
                  "synchronous_commit = off\n"
                  "full_page_writes = off\n"
                  "listen_addresses = ''\n"
                  "max_connections = 100\n"
                  "shared_buffers = 16MB\n");
      fs::create_directories(staging);
      const auto copy = run_command({"cp", "-a", work_data, staging + "/data"}, 120s);
      if (copy.exit_code != 0) fail("copying the template failed: " + copy.describe());
      write_file(staging + "/ready", recipe);
      fs::rename(staging, root);
    }
    data_dir = root + "/data";
  });
  return data_dir;
}

// ---- Cluster ---------------------------------------------------------------------------------

std::string test_relay() {
  const char* relay = std::getenv("PGNAP_TEST_RELAY");
  return relay == nullptr ? std::string() : std::string(relay);
}

Cluster::Cluster(ClusterOptions options)
    : dir_(true), tcp_(options.tcp.value_or(test_relay() == "kernel")), tcp_direct_(options.tcp.value_or(false)) {
  const std::string& templ = ensure_template();
  const auto copy = run_command({"cp", "-a", templ, data_dir()}, 120s);
  if (copy.exit_code != 0) fail("copying the template cluster failed: " + copy.describe());
  fs::create_directory(socket_dir());
  fs::permissions(socket_dir(), fs::perms::owner_all, fs::perm_options::replace);
  if (tcp_) port_ = free_tcp_port();
  append_conf("port = " + std::to_string(port_) + "\nunix_socket_directories = '" + socket_dir() + "'\n" +
              (tcp_ ? "listen_addresses = '127.0.0.1'\n" : ""));
  chown_to_postgres(dir());
}

Cluster::~Cluster() {
  dump_on_failure();
  if (fs::exists(data_dir() + "/postmaster.pid")) {
    const pid_t pid = postmaster_pid();
    (void)run_command(
        as_postgres({pg_bin_dir() + "/pg_ctl", "stop", "-D", data_dir(), "-m", "immediate", "-w", "-t", "30", "-s"}),
        40s);
    if (pid > 0 && process_alive(pid)) ::kill(pid, SIGKILL);
  }
}

void Cluster::dump_on_failure() const {
  if (dumped_ || !test_failed()) return;
  dumped_ = true;
  const std::string log = server_log();
  print_section("server log " + log_file() + " (tail)",
                log.empty() ? "(empty: the server never started)\n" : tail_lines(log, 40));
}

std::string Cluster::address() const { return tcp_ ? "127.0.0.1:" + std::to_string(port_) : socket_dir(); }

std::string Cluster::conninfo_direct(const std::string& dbname) const {
  return "host=" + (tcp_direct_ ? std::string("127.0.0.1") : socket_dir()) + " port=" + std::to_string(port_) +
         " user=postgres dbname=" + dbname;
}

void Cluster::start() {
  const auto r = run_command(
      as_postgres({pg_bin_dir() + "/pg_ctl", "start", "-D", data_dir(), "-l", log_file(), "-w", "-t", "60", "-s"}),
      90s);
  if (r.exit_code != 0) {
    fail("pg_ctl start failed: " + r.describe() + "\nserver log:\n" + tail_lines(server_log(), 20));
  }
}

void Cluster::stop(const std::string& mode) {
  const auto r = run_command(
      as_postgres({pg_bin_dir() + "/pg_ctl", "stop", "-D", data_dir(), "-m", mode, "-w", "-t", "60", "-s"}), 90s);
  if (r.exit_code != 0) fail("pg_ctl stop failed: " + r.describe());
}

bool Cluster::is_running() const {
  // pg_ctl status: 0 running, 3 not running, 4 no data directory.
  return run_command(as_postgres({pg_bin_dir() + "/pg_ctl", "status", "-D", data_dir()}), 30s).exit_code == 0;
}

pid_t Cluster::postmaster_pid() const {
  const std::string pidfile = read_file(data_dir() + "/postmaster.pid");
  if (pidfile.empty()) return 0;
  return static_cast<pid_t>(std::atol(pidfile.c_str()));
}

int Cluster::ready_count() const {
  return static_cast<int>(count_lines_containing(server_log(), "database system is ready to accept connections"));
}

std::string Cluster::server_log() const { return read_file(log_file()); }
std::string Cluster::conf() const { return read_file(data_dir() + "/postgresql.conf"); }
// The file exists and belongs to postgres; rewriting it in place keeps its owner.
void Cluster::set_conf(const std::string& text) { write_file(data_dir() + "/postgresql.conf", text); }
void Cluster::append_conf(const std::string& lines) { append_file(data_dir() + "/postgresql.conf", "\n" + lines); }

// ---- WrapperBinDir ---------------------------------------------------------------------------

WrapperBinDir::WrapperBinDir() : dir_(true) {
  for (const auto& entry : fs::directory_iterator(pg_bin_dir())) {
    const auto name = entry.path().filename().string();
    if (name != "pg_ctl") fs::create_symlink(entry.path(), path() + "/" + name);
  }
  const std::string script =
      "#!/bin/sh\n"
      "# pg_ctl stand-in written by pgnap's integration-test harness (tests/integration/\n"
      "# harness.cpp): logs each call; if the test asked for a slow or hung start or stop\n"
      "# (file start_delay / stop_delay: seconds, or \"infinity\"), sleeps first, in the\n"
      "# foreground like any slow command; then runs the real pg_ctl.\n"
      "dir='" +
      path() +
      "'\n"
      "echo \"$$ $*\" >>\"$dir/invocations.log\"\n"
      "action=\n"
      "for arg in \"$@\"; do\n"
      "  case \"$arg\" in\n"
      "    start|stop|restart|status|reload|promote|kill) action=$arg; break ;;\n"
      "  esac\n"
      "done\n"
      "delay=\n"
      "if [ -n \"$action\" ] && [ -f \"$dir/${action}_delay\" ]; then\n"
      "  delay=$(cat \"$dir/${action}_delay\")\n"
      "fi\n"
      "if [ -n \"$delay\" ] && [ \"$delay\" != 0 ]; then\n"
      "  # The inner shell records its pid, then becomes the sleep (exec keeps the pid).\n"
      "  sh -c 'echo $$ >>\"$1\"; exec sleep \"$2\"' pg_ctl-delay \"$dir/sleep.pids\" \"$delay\"\n"
      "fi\n"
      "exec '" +
      pg_bin_dir() + "/pg_ctl' \"$@\"\n";
  const std::string script_path = path() + "/pg_ctl";
  write_file(script_path, script);
  fs::permissions(script_path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);
  chown_to_postgres(path());
}

WrapperBinDir::~WrapperBinDir() {
  if (test_failed()) {
    print_section("pg_ctl wrapper calls in " + path(), tail_lines(invocation_log(), 40));
  }
  for (pid_t pid : sleep_pids()) {
    if (process_alive(pid) && read_file("/proc/" + std::to_string(pid) + "/comm").starts_with("sleep")) {
      ::kill(pid, SIGKILL);
    }
  }
}

namespace {

// What the wrapper's `sleep` gets: "0" (the script then skips the sleep), "1.500000", or
// "infinity".
std::string sleep_argument(std::optional<double> seconds) {
  if (!seconds) return "infinity\n";
  return *seconds <= 0 ? "0\n" : std::to_string(*seconds) + "\n";
}

}  // namespace

void WrapperBinDir::set_start_delay(std::optional<double> seconds) {
  write_file(path() + "/start_delay", sleep_argument(seconds));
}

void WrapperBinDir::set_stop_delay(double seconds) { write_file(path() + "/stop_delay", sleep_argument(seconds)); }

int WrapperBinDir::invocations(const std::string& action) const {
  int count = 0;
  std::istringstream in(invocation_log());
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    for (std::string word; words >> word;) {
      if (word == action) {
        ++count;
        break;
      }
    }
  }
  return count;
}

std::vector<pid_t> WrapperBinDir::sleep_pids() const {
  std::vector<pid_t> pids;
  std::istringstream in(read_file(path() + "/sleep.pids"));
  for (long pid; in >> pid;) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

std::vector<pid_t> WrapperBinDir::invocation_pids(const std::string& action) const {
  std::vector<pid_t> pids;
  std::istringstream in(invocation_log());
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    long pid = 0;
    words >> pid;
    for (std::string word; words >> word;) {
      if (word == action) {
        pids.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  return pids;
}

std::string WrapperBinDir::invocation_log() const { return read_file(path() + "/invocations.log"); }

// ---- Gateway ---------------------------------------------------------------------------------

GatewayOptions GatewayOptions::for_cluster(const Cluster& cluster) {
  GatewayOptions o;
  o.address = cluster.address();
  o.data_dir = cluster.data_dir();
  o.log_file = cluster.log_file();
  return o;
}

std::string control_socket_path(const GatewayOptions& o, const std::string& ledger_path) {
  if (o.control_socket) return *o.control_socket;
  const auto slash = ledger_path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : ledger_path.substr(0, slash)) + "/control.sock";
}

std::string render_config(const GatewayOptions& o, const std::string& ledger_path) {
  std::ostringstream s;
  s << "# written by pgnap's integration-test harness\n"
    << "[gateway]\n"
    << "listen = [\"127.0.0.1:0\"]\n"
    << "login_timeout = " << toml_quote(o.login_timeout) << "\n"
    << "ledger = " << toml_quote(ledger_path) << "\n"
    << "control_socket = " << toml_quote(control_socket_path(o, ledger_path)) << "\n"
    << "log_level = \"debug\"\n";
  if (const std::string relay = o.relay.value_or(test_relay()); !relay.empty()) {
    s << "relay = " << toml_quote(relay) << "\n";
  }
  s << o.gateway_extra << "\n"
    << "[metrics]\n"
    << "listen = " << toml_quote(o.metrics_listen) << "\n\n";
  if (!o.instances_toml.empty()) {
    s << o.instances_toml << "\n" << o.extra_toml << "\n";
    return s.str();
  }
  s << "[instances.main]\n"
    << "databases = " << o.databases << "\n"
    << "backend = \"pg_ctl\"\n"
    << "address = " << toml_quote(o.address) << "\n"
    << "idle_timeout = " << toml_quote(o.idle_timeout) << "\n"
    << "min_awake = " << toml_quote(o.min_awake) << "\n"
    << "wake_timeout = " << toml_quote(o.wake_timeout) << "\n"
    << "max_waiting = " << o.max_waiting << "\n"
    << o.instance_extra << "\n"
    << "[instances.main.pg_ctl]\n"
    << "data_dir = " << toml_quote(o.data_dir) << "\n"
    << "bin_dir = " << toml_quote(o.bin_dir) << "\n"
    << "os_user = " << toml_quote(o.os_user) << "\n"
    << "log_file = " << toml_quote(o.log_file) << "\n"
    << o.extra_toml << "\n";
  return s.str();
}

Gateway::Gateway(GatewayOptions options, const Cluster* cluster) : dir_(false), cluster_(cluster) {
  const std::string binary = pgnap_binary();
  if (::access(binary.c_str(), X_OK) != 0) fail("no pgnap binary at " + binary);
  ledger_ = options.ledger.empty() ? dir_.path() + "/ledger.db" : options.ledger;
  control_socket_ = control_socket_path(options, ledger_);
  write_file(config_path(), render_config(options, ledger_));

  std::vector<std::string> argv = options.command_prefix;
  argv.insert(argv.end(), {binary, "run", "-c", config_path()});
  pid_ = spawn_logged(argv, log_path(), options.env);

  static const std::regex listening(R"(listening on 127\.0\.0\.1:([0-9]+))");
  static const std::regex metrics_line(R"(metrics on http://127\.0\.0\.1:([0-9]+)/metrics)");
  std::smatch m;
  std::string text;
  const bool listening_seen = wait_until(
      [&] {
        text = this->log();
        std::smatch unused;
        if (std::regex_search(text, m, listening) &&
            (options.metrics_listen.empty() || std::regex_search(text, unused, metrics_line))) {
          return true;
        }
        return !running();
      },
      15s);
  if (listening_seen && std::regex_search(text, m, listening)) {
    port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
    std::smatch mm;
    if (!options.metrics_listen.empty() && std::regex_search(text, mm, metrics_line)) {
      metrics_port_ = static_cast<std::uint16_t>(std::stoi(mm[1].str()));
    }
    if (port_ != 0 && (options.metrics_listen.empty() || metrics_port_ != 0)) return;
  }
  const std::string why = running() ? "did not log `listening on 127.0.0.1:PORT` within 15 s"
                                    : "exited with status " + std::to_string(decode_wait_status(status_));
  kill9();
  fail("pgnap " + why + "\nconfig " + config_path() + ":\n" + read_file(config_path()) + "\npgnap log:\n" +
       tail_lines(this->log(), 40));
}

Gateway::~Gateway() {
  // A sanitized pgnap (`make test-sanitize` sets $PGNAP_BINARY to it): end it as its service
  // manager would (SIGTERM: drain, exit 0), so that LeakSanitizer's check at exit runs and
  // reports what pgnap left allocated; SIGKILL only if it is still draining a session the test
  // left open after 5 s. A test that killed pgnap itself (kill9, terminate) is unaffected: it
  // has been reaped.
  static const bool sanitized_pgnap = [] {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#else
    const char* other = std::getenv("PGNAP_BINARY");
    return other != nullptr && *other != '\0';
#endif
  }();
  if (sanitized_pgnap && running()) (void)terminate(SIGTERM, 5s);
  kill9();
  // A sanitizer's report is on pgnap's stderr, its log; with abort_on_error (the Makefile's
  // ASAN_OPTIONS) it then dies of SIGABRT, which a test sends never.
  expect_no_sanitizer_report("pgnap", log());
  if (reaped_ && WIFSIGNALED(status_) && WTERMSIG(status_) == SIGABRT) {
    ADD_FAILURE() << "pgnap died of SIGABRT (a sanitizer's report, or std::terminate)";
  }
  dump_on_failure();
}

void Gateway::dump_on_failure() const {
  if (!test_failed()) return;
  print_section("pgnap log " + log_path() + " (tail)", tail_lines(log(), 60));
  if (cluster_ != nullptr) cluster_->dump_on_failure();
}

std::string Gateway::conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

std::string Gateway::log() const { return read_file(log_path()); }

std::size_t Gateway::count_in_log(std::string_view needle, std::initializer_list<std::string_view> unless) const {
  return count_lines_containing(log(), needle, unless);
}

bool Gateway::wait_for_log(std::string_view needle, Millis timeout, std::size_t occurrences,
                           std::initializer_list<std::string_view> unless) const {
  return wait_until([&] { return count_in_log(needle, unless) >= occurrences; }, timeout);
}

bool Gateway::running() {
  if (pid_ <= 0 || reaped_) return false;
  const pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) {
    reaped_ = true;  // never signal that pid again: it may belong to someone else now
    return false;
  }
  return r == 0;
}

bool Gateway::reap(Millis timeout) {
  return wait_until([&] { return !running(); }, timeout, 10ms);
}

int Gateway::terminate(int signal, Millis timeout) {
  if (running()) {
    ::kill(pid_, signal);
    if (!reap(timeout)) {
      kill9();
      return -1;
    }
  }
  return decode_wait_status(status_);
}

int Gateway::wait_exit(Millis timeout) {
  if (!reap(timeout)) return -1;
  return decode_wait_status(status_);
}

void Gateway::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  (void)reap(10s);
}

}  // namespace pgnap::it
