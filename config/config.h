// pgnap's configuration: the TOML schema of docs/configuration.md, parsed once into an immutable
// snapshot. Every key is declared once (config/schema.cpp's key tables) with its type,
// default and bounds; unknown keys are errors; every error names file, line, key and what
// was expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Duration and its formats: every user of the configuration reads and writes durations.
#include "config/duration.h"

namespace pgnap::config {

// Where the gateway listens: "host:port" (IPv4, "[v6]:port", or a host name resolved at
// start-up), or a Unix socket path whose file name is ".s.PGSQL.<port>" (the name libpq
// derives from host=<dir> port=<port>). Port 0 asks the kernel for a free port; the
// chosen port is logged.
struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp
  std::uint16_t port = 0;
  std::string path;  // kUnix: the socket file
  [[nodiscard]] std::string to_string() const;
  bool operator==(const ListenAddress&) const = default;
};

// Where an instance's PostgreSQL listens once awake: "host:port", or an absolute Unix socket
// directory (port 5432), or an absolute path to the socket file ".../.s.PGSQL.<port>".
struct BackendAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp
  std::uint16_t port = 5432;
  std::string socket_dir;                         // kUnix
  [[nodiscard]] std::string socket_path() const;  // kUnix: socket_dir + "/.s.PGSQL.<port>"
  [[nodiscard]] std::string to_string() const;
  // Loopback or a Unix socket: the traffic never leaves the machine.
  [[nodiscard]] bool local() const;
  bool operator==(const BackendAddress&) const = default;
};

struct PgCtlConfig {
  std::string data_dir;              // required; absolute after loading
  std::string bin_dir;               // "" = find pg_ctl (PATH, then the newest /usr/lib/postgresql/*/bin)
  std::string os_user = "postgres";  // user pg_ctl runs as when pgnap runs as root
  std::string log_file;              // server log passed to pg_ctl -l; default <data_dir>/pgnap-postgres.log
  bool operator==(const PgCtlConfig&) const = default;
};

// [instances.NAME.exec]: any commands, each an argument array run without a shell (a user
// who wants one writes ["sh", "-c", "..."]).
struct ExecConfig {
  std::vector<std::string> start;   // required
  std::vector<std::string> stop;    // required
  std::vector<std::string> status;  // optional; exit 0 means running. Without it, the probe decides.
  std::vector<std::pair<std::string, std::string>> env;  // added to pgnap's environment
  std::string os_user;                                   // run the commands as this user when pgnap runs as root
  Duration start_timeout{0};                             // 0 = the instance's wake_timeout
  Duration stop_timeout = std::chrono::seconds(60);
  Duration status_timeout = std::chrono::seconds(10);
  // Where the server's processes can be found, for measuring them (accounting.measure):
  // PostgreSQL's postmaster.pid, or the cgroup v2 directory it runs in. "" = not measured.
  std::string pid_file;
  std::string cgroup;
  bool operator==(const ExecConfig&) const = default;
};

// [instances.NAME.systemd]: a unit started and stopped through systemd's D-Bus API.
// "postgresql@15-main" → "postgresql@15-main.service"; a name with a unit suffix is kept.
[[nodiscard]] std::string systemd_unit_name(const std::string& name);

struct SystemdConfig {
  std::string unit;  // required; ".service" is added when it has no unit suffix
  Duration stop_timeout = std::chrono::seconds(90);
  bool operator==(const SystemdConfig&) const = default;
};

// Why the processes of `instance` cannot be measured (accounting.measure): an exec instance
// with neither pid_file nor cgroup, a database pgnap does not run on this machine; "" when
// they can (pg_ctl, systemd, exec with either).
struct InstanceConfig;
[[nodiscard]] std::string measure_unavailable(const InstanceConfig& instance);

// [instances.NAME.accounting]: the savings model's coefficients (accounting/savings.h,
// docs/accounting.md).
struct AccountingConfig {
  double vcpus = 2;
  double memory_gb = 1;
  double idle_watts_per_vcpu = 0.74;       // Cloud Carbon Footprint, AWS average min watts per vCPU
  double busy_watts_per_vcpu = 3.5;        // Cloud Carbon Footprint, AWS average max watts per vCPU
  double watts_per_gb = 0.392;             // Cloud Carbon Footprint memory coefficient (W/GB)
  double residual_watts = 0;               // power still drawn while asleep (subtracted from P_idle)
  std::optional<double> power_watts;       // P_idle given directly (residual still subtracted)
  std::optional<double> busy_power_watts;  // P_busy given directly
  double pue = 1.135;                      // Cloud Carbon Footprint, AWS PUE
  double grid_intensity = 473;             // gCO2e/kWh
  std::string grid_source = "Ember, Global Electricity Review 2025 (world average)";
  std::int64_t grid_year = 2024;
  double price_per_hour = 0;  // what an hour of the instance running costs
  std::string currency = "USD";
  std::chrono::milliseconds wake_billed_minimum{0};  // billed per start (RDS: 10 minutes)
  double embodied_g_per_hour = 0;                    // embodied gCO2e per hour of the hardware share; 0 = off
  // Measuring what the instance's own processes use while it is awake (accounting/usage.h):
  // the report's `measured` basis. Possible for pg_ctl, systemd, and exec with a pid_file or
  // cgroup; elsewhere the model alone is reported.
  bool measure = true;
  Duration measure_interval = std::chrono::seconds(10);
  double price_per_gb_hour = 0;  // what a GB of memory costs per hour (the measured basis's money); 0 = none
  bool operator==(const AccountingConfig&) const = default;
};

// [instances.NAME.auth]: who authenticates clients (docs/configuration.md, "Authentication").
// passthrough relays the client's authentication to PostgreSQL; gateway answers it from the
// verifiers pgnap holds, without waking the database, and logs in to PostgreSQL for the
// client on its first query.
struct AuthConfig {
  std::string mode = "passthrough";  // passthrough | gateway
  std::string file;                  // a PgBouncer-format auth_file; "" = none (a path, relative to the config file)
  std::string query = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";  // auth_query
  std::string user;                                          // auth_user, who runs `query`; "" = no auth_query
  std::vector<std::string> methods{"scram-sha-256", "md5"};  // accepted: scram-sha-256, md5, trust
  std::string cache = "ledger";  // ledger | memory: where verifiers learned by the query are kept
  // Bytes one session may queue while its instance wakes (gateway mode: the client's first
  // queries arrive before the server is up).
  std::uint64_t queue_limit = 1024ull * 1024;
  bool operator==(const AuthConfig&) const = default;
};

// [instances.NAME.wake]: what wakes the instance besides a client's need (docs/operations.md,
// "Who keeps it awake").
// One `ignore` rule: a client matching every field it sets is never a reason to wake the
// instance nor to keep it awake (a monitor, a dashboard's keep-alive). Rules are tried in order.
// Matched by config/wake_rules.h.
struct WakeIgnoreRule {
  std::string user;              // "" = any user
  std::string application_name;  // "" = any; a trailing '*' matches a prefix ("uptime*")
  std::string address;           // "" = any; a CIDR ("10.0.0.0/8", "::1/128"), an address, or "unix"
  // The rule as the user wrote it, for the detail of the 57P03 and the log:
  // `user = "monitor", address = "10.0.0.0/8"`.
  [[nodiscard]] std::string to_string() const;
  bool operator==(const WakeIgnoreRule&) const = default;
};

struct WakeConfig {
  std::vector<WakeIgnoreRule> ignore;
  // Keep-warm windows (config/schedule.h): woken at each window's start, never suspended inside one.
  std::vector<std::string> awake_during;  // e.g. "Mon-Fri 08:00-18:00", "Sat 10:00-12:30", "daily 07:00-09:00"
  std::string time_zone = "UTC";          // IANA name (the system's tzdata) for awake_during and maintenance.at
  bool operator==(const WakeConfig&) const = default;
};

// [instances.NAME.maintenance]: an instance asleep for `every` is woken (at `at`) so that
// autovacuum, pg_cron and backups get to run, kept awake `stay_awake`, and `command` run.
struct MaintenanceConfig {
  Duration every{0};                                 // 0 = no maintenance wakes
  std::string at;                                    // "HH:MM" in wake.time_zone; "" = as soon as `every` has passed
  Duration stay_awake = std::chrono::minutes(15);    // awake at least this long after the wake
  std::vector<std::string> command;                  // run once awake (argv, no shell); [] = none
  Duration command_timeout = std::chrono::hours(1);  // then it is killed (and counted as failed)
  std::string os_user;  // run the command as this user when pgnap runs as root ("" = as pgnap)
  std::vector<std::pair<std::string, std::string>> env;  // added to pgnap's (PGHOST/PGPORT are set to the instance)
  bool operator==(const MaintenanceConfig&) const = default;
};

struct InstanceConfig {
  std::string name;
  std::vector<std::string> databases{"*"};
  std::string backend;     // "pg_ctl", "exec" or "systemd" (required)
  BackendAddress address;  // required
  Duration idle_timeout = std::chrono::minutes(10);
  Duration min_awake = std::chrono::seconds(30);
  Duration wake_timeout = std::chrono::seconds(60);
  std::uint32_t max_waiting = 200;
  Duration connect_timeout = std::chrono::seconds(10);  // TCP/Unix connect to the instance
  bool suspend_on_exit = false;
  // A session at rest with no traffic for this long does not keep the instance awake; it is
  // closed when the instance suspends. Unset: idle_timeout (see effective_idle_session_timeout);
  // 0 disables (open sessions keep it awake).
  std::optional<Duration> idle_session_timeout;
  bool close_listeners = false;  // also close idle sessions that ran LISTEN
  // In the authenticating mode, a session idle for idle_session_timeout is parked instead:
  // its state is read, its server connection detached, and its client kept; the next query
  // gets a server connection with that state restored (docs/pooling.md). Sessions holding what
  // cannot be restored are closed as above.
  bool park_sessions = true;
  // Custom settings (`app.tenant_id`) a parked session's capture reads by name: PostgreSQL
  // does not list those no loaded extension defines (pg_settings hides placeholders), so
  // pgnap cannot find them otherwise (docs/pooling.md).
  std::vector<std::string> park_custom_settings;
  // Session pooling, in the authenticating mode only (docs/pooling.md): server connections
  // of the instance, in use, idle, being opened or reset; 0 turns pooling off.
  std::uint32_t pool_size = 20;
  std::uint32_t min_pool_size = 0;                          // idle ones kept while awake (never while asleep)
  Duration server_idle_timeout = std::chrono::minutes(10);  // an idle one is closed after this
  Duration server_lifetime = std::chrono::hours(1);         // an older one is not pooled again
  Duration pool_wait_timeout = std::chrono::seconds(30);    // a client waits this long for a full pool
  std::string server_reset_query = "DISCARD ALL";           // run before the next client; "" = none
  // TLS to the instance: "disable", "prefer" (if the server offers it) or "require";
  // "" = not set: see effective_tls().
  std::string tls;
  PgCtlConfig pg_ctl;
  ExecConfig exec;
  SystemdConfig systemd;
  AccountingConfig accounting;
  AuthConfig auth;
  WakeConfig wake;
  MaintenanceConfig maintenance;
  bool operator==(const InstanceConfig&) const = default;

  // Defaults that follow other keys are resolved where they are used, never stored: a reload
  // must compare what the user wrote, and a restart-only `address` must not change a live
  // key's default before the restart.
  // `tls`, else "disable" for a Unix socket or loopback address and "prefer" otherwise.
  [[nodiscard]] std::string effective_tls() const;
  // exec.start_timeout, else wake_timeout.
  [[nodiscard]] Duration exec_start_timeout() const;
  // idle_session_timeout, else idle_timeout.
  [[nodiscard]] Duration effective_idle_session_timeout() const { return idle_session_timeout.value_or(idle_timeout); }
};

// [gateway.tls]: TLS for clients (OpenSSL through Boost.Asio's ssl).
struct TlsConfig {
  std::string mode = "disable";  // disable | allow | require
  std::string cert;              // PEM certificate chain (required unless mode = "disable")
  std::string key;               // PEM private key (required unless mode = "disable")
  std::string ca;                // optional: clients must present a certificate signed by this CA
  bool operator==(const TlsConfig&) const = default;
};

struct GatewayConfig {
  std::vector<ListenAddress> listen{// default ["127.0.0.1:6432"]
                                    ListenAddress{ListenAddress::Kind::kTcp, "127.0.0.1", 6432, ""}};
  std::uint32_t max_clients = 1000;
  Duration login_timeout = std::chrono::seconds(15);
  std::string ledger = "/var/lib/pgnap/ledger.db";
  // How often the open intervals are marked as still running: after a crash, at most this
  // much accounting is lost.
  Duration ledger_heartbeat = std::chrono::seconds(30);
  Duration shutdown_timeout = std::chrono::seconds(30);
  std::string log_level = "info";  // debug | info | warning | error
  // The largest message a client may send after its startup (PostgreSQL's own limit is 1 GiB).
  std::uint64_t max_message_size = 1024ull * 1024 * 1024;
  // TCP keepalive on client connections: a client that vanished without a FIN (a rebooted
  // laptop, a dropped NAT mapping) is noticed after idle + interval x count, not hours later.
  Duration tcp_keepalive_idle = std::chrono::seconds(60);
  Duration tcp_keepalive_interval = std::chrono::seconds(10);
  std::uint32_t tcp_keepalive_count = 6;
  // Bytes all sessions together may queue while their instances wake (each within its
  // instance's auth.queue_limit).
  std::uint64_t queue_limit_total = 64ull * 1024 * 1024;
  TlsConfig tls;
  // `pgnap status`, `wake`, `sleep` and `reload` talk to the daemon over this Unix socket
  // (mode 0660; docs/control.md). "" = none. When its directory is missing the gateway logs a
  // warning and runs without it.
  std::string control_socket = "/run/pgnap/control.sock";
  // How relayed bytes go between clients and PostgreSQL (docs/operations.md, "The kernel
  // relay"): "auto" moves plaintext TCP sessions into the kernel (a sockmap and a BPF
  // program) when pgnap may load it, and relays in user space otherwise, saying why once;
  // "kernel" refuses to start without it; "user" never tries.
  std::string relay = "auto";
  bool operator==(const GatewayConfig&) const = default;
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:9932";  // "" disables
  bool operator==(const MetricsConfig&) const = default;
};

struct Config {
  std::string source;  // the file it was read from
  std::string text;    // its TOML text, as read
  GatewayConfig gateway;
  MetricsConfig metrics;
  std::vector<InstanceConfig> instances;  // in file order
};

struct ConfigError {
  std::string file;
  std::uint32_t line = 0;  // 0 when unknown (e.g. the file cannot be read)
  std::uint32_t column = 0;
  std::string key;      // dotted path, e.g. "instances.main.idle_timeout"
  std::string message;  // what was expected, e.g. "expected a duration with a unit such as \"30s\", got \"10\""
  // "FILE:LINE:COLUMN: KEY: MESSAGE"
  [[nodiscard]] std::string to_string() const;
};

class ConfigLoadError : public std::runtime_error {
 public:
  explicit ConfigLoadError(std::vector<ConfigError> errors);
  [[nodiscard]] const std::vector<ConfigError>& errors() const { return errors_; }

 private:
  std::vector<ConfigError> errors_;
};

// Parses TOML text. `source` names it in errors; relative paths in the file resolve against
// `base_dir` (load_config passes the config file's directory). Collects every error it can
// and throws ConfigLoadError with all of them.
[[nodiscard]] Config parse_config(std::string_view text, std::string source, std::string base_dir);
// Reads and parses a file (throws ConfigLoadError, including when the file cannot be read).
[[nodiscard]] Config load_config(const std::string& path);

// One difference between two configurations, and whether a running gateway applies it on
// SIGHUP or needs a restart for it.
struct ConfigChange {
  std::string key;   // dotted, e.g. "instances.main.idle_timeout" or "instances.blog" (added)
  std::string what;  // "changed", "added", "removed"
  bool needs_restart = false;
};
// What changed from `running` to `next`, key by key, as the schema tables declare each key's
// reload behaviour.
[[nodiscard]] std::vector<ConfigChange> diff_config(const Config& running, const Config& next);
// What a running gateway runs after a reload to `next`: `next`, except the keys that need a
// restart, which keep their `running` values.
[[nodiscard]] Config merge_live(const Config& running, const Config& next);
// The same for one instance, as an instance applies a reload to itself: `next` (its name
// included), except the keys whose schema row says Reload::kRestart (today backend, address,
// the backends' sub-tables and auth.cache), which keep `running`'s values.
[[nodiscard]] InstanceConfig merge_live(const InstanceConfig& running, const InstanceConfig& next);

// The human-readable summary `pgnap check` prints: listeners, limits, the routing table,
// each instance's backend, address, timeouts, wake rules, keep-warm windows (with the next one
// as of `now`), maintenance and the commands it would run.
[[nodiscard]] std::string describe_config(const Config& config, std::chrono::system_clock::time_point now);
// The same as of now.
[[nodiscard]] std::string describe_config(const Config& config);

}  // namespace pgnap::config
