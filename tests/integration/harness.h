// The integration-test harness: real PostgreSQL clusters, the real pgnap binary, and the
// clients that talk to them (psql, pgbench, libpq, a raw socket for hostile bytes).
//
// Everything a test starts is private to that test, so tests run in parallel (ctest -j):
// each Cluster is a copy of one read-only template in its own mkdtemp directory (in /dev/shm
// when it can, else /tmp; see scratch_root()), listening on a Unix socket in that directory
// (and, if asked, on 127.0.0.1 with a port chosen at run time); each Gateway listens on
// 127.0.0.1:0 and reads back the port it got.
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb and pg_ctl run as the
// `postgres` OS user (runuser) and every directory PostgreSQL touches is chowned to it;
// otherwise they run as the current user. pgnap itself runs as the test's user and is told
// os_user = "postgres", which it uses only when it runs as root.
//
// Setup failures (a cluster that will not start, a pgnap that never listens) throw
// std::runtime_error: GoogleTest reports the message as the test's failure. What a test
// checks is returned as values, for EXPECT/ASSERT.
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgnap::it {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// ---- Build-time facts (compile definitions from tests/integration/CMakeLists.txt) --------

[[nodiscard]] std::string pgnap_binary();  // the pgnap built alongside the tests
[[nodiscard]] std::string pg_bin_dir();    // PostgreSQL server binaries (initdb, pg_ctl, ...)
[[nodiscard]] std::string template_dir();  // where the template cluster is kept
[[nodiscard]] std::string source_dir();    // the repository (for examples/)
[[nodiscard]] std::string pgnap_version(); // the project version pgnap --version must print

// ---- Processes and files ---------------------------------------------------------------------

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
[[nodiscard]] CommandResult run_command(const std::vector<std::string>& argv,
                                        Millis timeout = 60s, const std::string& input = {});

[[nodiscard]] bool running_as_root();
// argv prefixed with `runuser -u postgres --` when running as root; unchanged otherwise.
[[nodiscard]] std::vector<std::string> as_postgres(std::vector<std::string> argv);
// Gives `path` (recursively) to the postgres user when running as root; no-op otherwise.
void chown_to_postgres(const std::string& path);

// psql -X -A -t -v ON_ERROR_STOP=1 -c SQL "CONNINFO": the tool a user would reach for.
[[nodiscard]] CommandResult psql(const std::string& conninfo, const std::string& sql,
                                 Millis timeout = 60s);

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

// A TOML basic string: "text" with " and \ escaped.
[[nodiscard]] std::string toml_quote(const std::string& s);
// A word for sh: 'text', with ' written as '\''.
[[nodiscard]] std::string sh_quote(const std::string& s);

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

// ---- PostgreSQL clusters ---------------------------------------------------------------------

// Creates the template cluster once per build tree (initdb, fast settings), under an flock so
// parallel tests do not race; returns its data directory. Tests never write to it.
const std::string& ensure_template();

struct ClusterOptions {
  bool tcp = false;  // also listen on 127.0.0.1 with a free port chosen now
};

// A private copy of the template: DIR/data, socket directory DIR/sock (port 5432, or the TCP
// port), server log DIR/server.log. Not started by the constructor. The destructor stops it
// (immediate) and removes DIR; on a failed test it first prints the tail of the server log
// (unless the Gateway in front of it already did, right after pgnap's log).
class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  [[nodiscard]] const std::string& dir() const { return dir_.path(); }
  [[nodiscard]] std::string data_dir() const { return dir() + "/data"; }
  [[nodiscard]] std::string socket_dir() const { return dir() + "/sock"; }
  [[nodiscard]] std::string log_file() const { return dir() + "/server.log"; }
  [[nodiscard]] std::uint16_t port() const { return port_; }  // 5432 unless tcp
  [[nodiscard]] bool tcp() const { return tcp_; }
  // What pgnap's `address` says: the socket directory, or "127.0.0.1:PORT" with tcp.
  [[nodiscard]] std::string address() const;
  [[nodiscard]] std::string conninfo_direct(const std::string& dbname = "postgres") const;

  void start();  // pg_ctl start -w; throws with pg_ctl's output and the log tail on failure
  void stop(const std::string& mode = "fast");  // throws on failure
  [[nodiscard]] bool is_running() const;        // pg_ctl status
  [[nodiscard]] pid_t postmaster_pid() const;   // from postmaster.pid; 0 if none
  // Lines "database system is ready to accept connections" in the server log: real starts.
  [[nodiscard]] int ready_count() const;
  [[nodiscard]] std::string server_log() const;

  [[nodiscard]] std::string conf() const;  // postgresql.conf
  void set_conf(const std::string& text);
  void append_conf(const std::string& lines);

  // On a failed test, prints the tail of the server log (once).
  void dump_on_failure() const;

 private:
  TempDir dir_;
  bool tcp_ = false;
  std::uint16_t port_ = 5432;
  mutable bool dumped_ = false;
};

// A directory standing in for PostgreSQL's bin dir: symlinks to every real binary except
// pg_ctl, which is a shell script that logs each call and, for `start` (or `stop`), first
// sleeps for the delay written in its control file ("forever" sleeps until killed), then
// execs the real pg_ctl. The pid of each sleep is recorded, so a test can check that pgnap
// left none behind; the destructor kills any still alive.
class WrapperBinDir {
 public:
  WrapperBinDir();
  ~WrapperBinDir();
  WrapperBinDir(const WrapperBinDir&) = delete;
  WrapperBinDir& operator=(const WrapperBinDir&) = delete;

  [[nodiscard]] const std::string& path() const { return dir_.path(); }
  // Seconds to sleep before `pg_ctl start`: 0 for none, nullopt for forever.
  void set_start_delay(std::optional<double> seconds);
  void set_stop_delay(double seconds);
  // How many times pg_ctl was called with this action ("start", "stop", "status").
  [[nodiscard]] int invocations(const std::string& action) const;
  [[nodiscard]] std::vector<pid_t> sleep_pids() const;
  // The pids of the wrapper scripts called with `action` (each execs into the real pg_ctl).
  [[nodiscard]] std::vector<pid_t> invocation_pids(const std::string& action) const;
  [[nodiscard]] std::string invocation_log() const;

 private:
  TempDir dir_;
};

// ---- The pgnap gateway -----------------------------------------------------------------------

// The minimal config of the tests; *_extra lines go at the end of their section, extra_toml
// at the end of the file (for whole tables). instances_toml, when set, replaces the whole
// rendered [instances.main] and its [instances.main.pg_ctl] (another backend, several
// instances); the instance keys above are then unused.
struct GatewayOptions {
  std::string address;   // the instance's address (socket dir or host:port)
  std::string data_dir;
  std::string log_file;  // the server log pg_ctl -l writes
  std::string bin_dir = pg_bin_dir();
  std::string os_user = "postgres";
  std::string databases = R"(["*"])";  // a TOML array
  std::string login_timeout = "5s";
  std::string idle_timeout = "2s";
  std::string min_awake = "0s";
  std::string wake_timeout = "30s";
  int max_waiting = 200;
  std::string ledger;  // "" = ledger.db in the gateway's own directory (gone with it)
  std::string metrics_listen;  // [metrics] listen: "" disables, "127.0.0.1:0" for a free port
  std::string gateway_extra;
  std::string instance_extra;
  std::string extra_toml;
  std::string instances_toml;
  EnvVars env;  // added to pgnap's environment (e.g. DBUS_SYSTEM_BUS_ADDRESS)
  // Run before pgnap's own argv (which it ends with), e.g. a shell that sets LISTEN_PID to
  // its own pid and execs pgnap, for socket activation. pgnap's pid is the prefix's.
  std::vector<std::string> command_prefix;

  [[nodiscard]] static GatewayOptions for_cluster(const Cluster& cluster);
};

// The TOML text for `options`, with the ledger at `ledger_path`.
[[nodiscard]] std::string render_config(const GatewayOptions& options,
                                        const std::string& ledger_path);

// The real pgnap binary running `pgnap run -c CONFIG` as a child, stderr and stdout to a log
// file. The constructor returns once pgnap logged `listening on 127.0.0.1:PORT` (throws with
// the log if it exits or does not within 15 s). The destructor SIGKILLs it if still running;
// on a failed test it first prints the tail of its log, then the cluster's (if given).
class Gateway {
 public:
  explicit Gateway(GatewayOptions options, const Cluster* cluster = nullptr);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string config_path() const { return dir_.path() + "/pgnap.toml"; }
  [[nodiscard]] std::string log_path() const { return dir_.path() + "/pgnap.log"; }
  [[nodiscard]] const std::string& ledger_path() const { return ledger_; }
  // The /metrics port pgnap logged ("metrics on http://127.0.0.1:PORT/metrics"); 0 if disabled.
  [[nodiscard]] std::uint16_t metrics_port() const { return metrics_port_; }
  [[nodiscard]] std::string conninfo(const std::string& dbname = "postgres") const;

  [[nodiscard]] std::string log() const;
  // Lines of the log containing `needle` (and none of `unless`; see count_lines_containing).
  [[nodiscard]] std::size_t count_in_log(std::string_view needle,
                                         std::initializer_list<std::string_view> unless = {}) const;
  // Waits until at least `occurrences` lines of the log contain `needle` (and none of `unless`).
  bool wait_for_log(std::string_view needle, Millis timeout, std::size_t occurrences = 1,
                    std::initializer_list<std::string_view> unless = {}) const;

  [[nodiscard]] bool running();
  // Sends `signal` and waits for the exit: the exit code, 128+N if killed by signal N, or -1
  // if it did not exit in time (it is then SIGKILLed).
  int terminate(int signal = SIGTERM, Millis timeout = 15s);
  // Waits for pgnap to exit by itself (after a signal the test sent): the exit code as
  // terminate() reports it, or -1 if it is still running at the timeout (it is left running).
  int wait_exit(Millis timeout);
  void kill9();

 private:
  bool reap(Millis timeout);
  void dump_on_failure() const;

  TempDir dir_;
  const Cluster* cluster_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;  // raw waitpid status once reaped
  std::uint16_t port_ = 0;
  std::uint16_t metrics_port_ = 0;
  std::string ledger_;
};

// ---- HTTP, for /metrics and Prometheus's API ---------------------------------------------

struct HttpResponse {
  int status = 0;          // 0 when no valid response arrived
  std::string headers;     // the raw header block
  std::string body;
  std::string error;       // why status is 0
};
// A plain HTTP/1.1 GET to 127.0.0.1:port (Connection: close), read to EOF, with a deadline.
[[nodiscard]] HttpResponse http_get(std::uint16_t port, const std::string& target, Millis timeout = 10s);
// The value of the line `series value` ("name{labels}" exactly as exposed) in a Prometheus
// exposition; -1 if absent.
[[nodiscard]] double metric_value(const std::string& exposition, const std::string& series);
// One scrape of pgnap's /metrics on `metrics_port`: metric_value(), or -2 if the scrape failed.
[[nodiscard]] double scrape_metric(std::uint16_t metrics_port, const std::string& series);
// Percent-encodes a query-string value.
[[nodiscard]] std::string url_encode(std::string_view text);
// A TCP port on 127.0.0.1 that nothing listened on a moment ago (for servers that cannot
// take port 0, such as Prometheus).
[[nodiscard]] std::uint16_t free_tcp_port();

// ---- A real Prometheus server (prometheus_server.cpp) ----------------------------------------

// The Debian package `prometheus`'s tools: /usr/bin/prometheus and /usr/bin/promtool, else
// from PATH; $PGNAP_IT_PROMETHEUS and $PGNAP_IT_PROMTOOL override.
[[nodiscard]] std::string prometheus_binary();
[[nodiscard]] std::string promtool_binary();

// Prometheus as a child, scraping http://127.0.0.1:TARGET_PORT/metrics (job "pgnap") every
// `scrape_interval`, its TSDB in a TempDir, its web API on 127.0.0.1 at a port chosen at
// start. The constructor returns once /-/ready answers 200 (throws with the log if it does
// not within 30 s). The destructor stops it (SIGTERM, then SIGKILL); on a failed test it
// first prints the tail of its log.
class PrometheusServer {
 public:
  explicit PrometheusServer(std::uint16_t target_port, Millis scrape_interval = 1s);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string config_path() const { return dir_.path() + "/prometheus.yml"; }
  [[nodiscard]] std::string log_path() const { return dir_.path() + "/prometheus.log"; }
  [[nodiscard]] std::string log() const;
  // GET /api/v1/query?query=PROMQL, evaluated at the current time. The body is Prometheus's
  // JSON: {"status":"success","data":{"resultType":...,"result":[...]}} or
  // {"status":"error","errorType":...,"error":...} (with HTTP 400 or 422).
  [[nodiscard]] HttpResponse query(std::string_view promql) const;

 private:
  bool start(std::string& why);  // false (and stopped) if it exited or never became ready
  bool running();
  void stop();

  TempDir dir_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;  // raw waitpid status once reaped
  std::uint16_t port_ = 0;
};

// ---- libpq -----------------------------------------------------------------------------------

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;
struct PgResultDeleter {
  void operator()(PGresult* res) const { PQclear(res); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// The fields of an ErrorResponse that the tests look at.
struct ServerError {
  std::string severity;  // FATAL, ERROR, ...
  std::string sqlstate;  // "" when the failure did not come from an ErrorResponse
  std::string message;
  std::string detail;
};

struct ConnectResult {
  PgConnPtr conn;       // set on success
  std::string error;    // PQerrorMessage on failure
  ServerError server;   // the server's ErrorResponse, when the failure was one
  Millis elapsed{0};
  [[nodiscard]] bool ok() const { return conn != nullptr; }
};

// Connects with a deadline of our own (PQconnectStart/PQconnectPoll), so a slow wake is
// waited for and a hung one is reported rather than hanging the test.
//
// A failed connection has no PGresult to ask for its SQLSTATE, so the connection's error
// verbosity is set to PQERRORS_VERBOSE before the first poll: libpq then formats the
// server's ErrorResponse as "FATAL:  57P03: message\nDETAIL:  ...\n" in PQerrorMessage,
// which parse_libpq_error() takes apart. (The raw-socket client below is the second,
// independent way, used where the bytes themselves are the point.)
[[nodiscard]] ConnectResult connect(const std::string& conninfo, Millis timeout = 60s);
// connect() or throw with the error.
[[nodiscard]] PgConnPtr connect_or_throw(const std::string& conninfo, Millis timeout = 60s);
// Finds "SEVERITY:  SQLSTATE: message" (and DETAIL) in a verbose libpq error message.
[[nodiscard]] ServerError parse_libpq_error(const std::string& text);

struct QueryResult {
  bool ok = false;
  std::string value;  // first column of the first row ("" if none)
  int rows = 0;
  ServerError error;  // from PQresultErrorField when !ok
};
[[nodiscard]] QueryResult query(PGconn* conn, const std::string& sql);
[[nodiscard]] ServerError result_error(const PGresult* res, PGconn* conn);

// What `pgbench` printed about its run (PostgreSQL 15 format).
struct PgbenchSummary {
  bool parsed = false;
  long processed = -1;  // "number of transactions actually processed: N"
  long failed = -1;     // "number of failed transactions: N" (0 when the line is absent)
  double tps = 0;
};
[[nodiscard]] PgbenchSummary parse_pgbench(const std::string& out);

// ---- Raw wire protocol, for bytes no well-behaved client sends -------------------------------

[[nodiscard]] std::string be32(std::uint32_t value);
// A StartupMessage: length, protocol version, name\0value\0 ..., final \0.
[[nodiscard]] std::string startup_packet(
    const std::vector<std::pair<std::string, std::string>>& params,
    std::uint32_t version = 196608 /* 3.0 */);

struct BackendMessage {
  char type = 0;
  std::string body;
};
// Splits complete backend messages off the front of `bytes` (a trailing partial one is left).
[[nodiscard]] std::vector<BackendMessage> split_backend_messages(std::string_view bytes);
[[nodiscard]] std::optional<ServerError> decode_error_response(const BackendMessage& message);
// The first ErrorResponse in `bytes`, if any.
[[nodiscard]] std::optional<ServerError> first_error(std::string_view bytes);

// A blocking socket with deadlines on every operation. Throws if it cannot connect.
class RawClient {
 public:
  [[nodiscard]] static RawClient tcp(std::uint16_t port, Millis timeout = 5s);
  [[nodiscard]] static RawClient unix_socket(const std::string& path, Millis timeout = 5s);
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&&) = delete;
  RawClient(const RawClient&) = delete;
  ~RawClient();

  bool send(std::string_view bytes);  // false if the peer is gone
  struct Reply {
    std::string bytes;
    bool closed = false;  // the peer closed (or reset) the connection before the deadline
  };
  // Reads until the peer closes the connection or `timeout` passes.
  [[nodiscard]] Reply read_until_closed(Millis timeout);
  // Reads until `done(bytes so far)`, the peer closes, or `timeout` passes.
  [[nodiscard]] Reply read_until(const std::function<bool(std::string_view)>& done, Millis timeout);

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace pgnap::it
