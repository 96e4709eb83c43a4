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
//
// This header declares what harness.cpp defines: the build-time facts, the template cluster,
// Cluster, the pg_ctl wrapper (WrapperBinDir), the Gateway and its config, TOML and sh quoting,
// and free_tcp_port(). It includes the rest of the harness, so that a test needs only this one
// include:
//   process.h            commands with deadlines, psql, /proc, files, TempDir, BackgroundProcess
//   pg_client.h          libpq with deadlines, pgbench's summary, the raw wire protocol
//   http_client.h        HTTP GET, for /metrics and Prometheus's API
//   prometheus_server.h  a real Prometheus server
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/http_client.h"
#include "tests/integration/pg_client.h"
#include "tests/integration/process.h"
#include "tests/integration/prometheus_server.h"

namespace pgnap::it {

// ---- Build-time facts (compile definitions from tests/integration/CMakeLists.txt) --------

[[nodiscard]] std::string pgnap_binary();   // the pgnap built alongside the tests ($PGNAP_BINARY overrides)
[[nodiscard]] std::string pg_bin_dir();     // PostgreSQL server binaries (initdb, pg_ctl, ...)
[[nodiscard]] std::string template_dir();   // where the template cluster is kept
[[nodiscard]] std::string source_dir();     // the repository (for examples/)
[[nodiscard]] std::string pgnap_version();  // the project version pgnap --version must print
// The git revision pgnap --version must print: the source tree's commit (12 hex digits),
// "-dirty" when tracked files differ from it (cmake/revision.cmake).
[[nodiscard]] std::string pgnap_revision();

// ---- Quoting, for the config files and scripts the tests write -------------------------------

// A TOML basic string: "text" with " and \ escaped.
[[nodiscard]] std::string toml_quote(const std::string& s);
// A word for sh: 'text', with ' written as '\''.
[[nodiscard]] std::string sh_quote(const std::string& s);

// ---- Ports -----------------------------------------------------------------------------------

// A TCP port on 127.0.0.1 that nothing listened on a moment ago (for servers that cannot
// take port 0, such as Prometheus).
[[nodiscard]] std::uint16_t free_tcp_port();

// ---- PostgreSQL clusters ---------------------------------------------------------------------

// Creates the template cluster once per build tree (initdb, fast settings), under an flock so
// parallel tests do not race; returns its data directory. Tests never write to it.
const std::string& ensure_template();

struct ClusterOptions {
  // Also listen on 127.0.0.1 with a free port chosen now, and be reached there by pgnap.
  // Unset: when the suite runs the kernel relay (test_relay() == "kernel", which needs TCP on
  // both sides of a session), else not.
  std::optional<bool> tcp;
};

// The relay the suite runs pgnap with ([gateway] relay), from $PGNAP_TEST_RELAY: "kernel" or
// "user" ("" when unset: pgnap's default, "auto"). `make test` sets it (kernel as root).
[[nodiscard]] std::string test_relay();

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
  bool tcp_direct_ = false;  // conninfo_direct() over TCP (asked for), else the socket directory
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
  std::string address;  // the instance's address (socket dir or host:port)
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
  std::string ledger;          // "" = ledger.db in the gateway's own directory (gone with it)
  std::string metrics_listen;  // [metrics] listen: "" disables, "127.0.0.1:0" for a free port
  // [gateway] control_socket: nullopt = control.sock beside the ledger (in the test's own
  // directory, so that parallel tests never share one); "" = none.
  std::optional<std::string> control_socket;
  // [gateway] relay: nullopt = test_relay() (unset there: pgnap's default).
  std::optional<std::string> relay;
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
[[nodiscard]] std::string render_config(const GatewayOptions& options, const std::string& ledger_path);
// The control socket `options` configures with the ledger at `ledger_path` ("" = none).
[[nodiscard]] std::string control_socket_path(const GatewayOptions& options, const std::string& ledger_path);

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
  // [gateway] control_socket as configured ("" = none).
  [[nodiscard]] const std::string& control_socket() const { return control_socket_; }
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
  std::string control_socket_;
};

}  // namespace pgnap::it
