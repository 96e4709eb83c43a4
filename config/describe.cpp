// describe_config: what `pgnap check -c FILE` prints once a configuration is valid. It says
// what pgnap would do, in the operator's terms: where it listens, how databases route, and the
// exact pg_ctl command lines it would run.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/keys.h"
#include "config/schedule.h"

namespace pgnap::config {
namespace {

constexpr std::size_t kLabelWidth = 18;
constexpr std::string_view kAutoBinDir = "(auto: PATH, then the newest /usr/lib/postgresql/*/bin)";
constexpr std::string_view kAnyOther = "(any other database)";

void line(std::string& out, std::string_view label, std::string_view value) {
  out += "  ";
  out += label;
  out.append(label.size() < kLabelWidth ? kLabelWidth - label.size() : 1, ' ');
  out += value;
  out += '\n';
}

// Single-quotes a word for a POSIX shell when it needs it, so the printed commands can be
// pasted into a terminal as they are.
std::string shell_word(std::string_view word) {
  bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("/._-+=:,@%").find(c) != std::string_view::npos;
  });
  if (plain) return std::string(word);
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& word : argv) text += (text.empty() ? "" : " ") + shell_word(word);
  return text;
}

void describe_exec(std::string& out, const InstanceConfig& instance) {
  const ExecConfig& e = instance.exec;
  out += "  exec commands (run without a shell):\n";
  out += "    start: " + command_line(e.start) + "  (timeout " + format_duration(instance.exec_start_timeout()) + ")\n";
  out += "    stop: " + command_line(e.stop) + "  (timeout " + format_duration(e.stop_timeout) + ")\n";
  out += e.status.empty() ? std::string("    status: (none: the readiness probe decides)\n")
                          : "    status: " + command_line(e.status) + "  (timeout " +
                                format_duration(e.status_timeout) + "; exit 0 = running)\n";
  for (const auto& [name, value] : e.env) out += "    env: " + name + "=" + shell_word(value) + "\n";
  if (!e.os_user.empty()) out += "    as OS user: " + e.os_user + " (when pgnap runs as root)\n";
}

void describe_systemd(std::string& out, const InstanceConfig& instance) {
  const SystemdConfig& s = instance.systemd;
  out += "  systemd unit " + s.unit + " (system bus, D-Bus API):\n";
  out += "    start: Manager.StartUnit(\"" + s.unit + "\", \"replace\"), waiting for its job\n";
  out += "    stop: Manager.StopUnit(\"" + s.unit + "\", \"replace\"), waiting for its job (timeout " +
         format_duration(s.stop_timeout) + ")\n";
  out += "    status: the unit's ActiveState\n";
}

std::string describe_listen(const ListenAddress& address) {
  std::string text = address.to_string();
  if (address.kind == ListenAddress::Kind::kUnix) return text + " (Unix socket)";
  if (address.port == 0) return text + " (a free port chosen at start-up)";
  return text;
}

std::string describe_backend_address(const BackendAddress& address) {
  return address.kind == BackendAddress::Kind::kUnix ? address.to_string() + " (Unix socket)" : address.to_string();
}

void describe_routes(std::string& out, const Config& config) {
  std::vector<std::pair<std::string, std::string>> routes;  // database, instance
  std::string fallback = "refused: database \"X\" is not served by this gateway (3D000)";
  for (const InstanceConfig& instance : config.instances) {
    for (const std::string& database : instance.databases) {
      if (database == "*") {
        fallback = instance.name;
      } else {
        routes.emplace_back(database, instance.name);
      }
    }
  }
  std::sort(routes.begin(), routes.end());
  routes.emplace_back(kAnyOther, fallback);

  std::size_t width = 0;
  for (const auto& route : routes) width = std::max(width, route.first.size());
  out += "Routing (database -> instance)\n";
  for (const auto& [database, instance] : routes) {
    out += "  " + database + std::string(width - database.size() + 3, ' ') + instance + '\n';
  }
}

void describe_pg_ctl(std::string& out, const InstanceConfig& instance) {
  const PgCtlConfig& pg_ctl = instance.pg_ctl;
  std::string program = (pg_ctl.bin_dir.empty() ? std::string(kAutoBinDir) : shell_word(pg_ctl.bin_dir)) + "/pg_ctl";
  std::string data_dir = shell_word(pg_ctl.data_dir);
  // pg_ctl -t takes whole seconds; rounding up never cuts a wake short.
  auto wait_seconds = std::chrono::ceil<std::chrono::seconds>(instance.wake_timeout).count();

  out += "  pg_ctl commands:\n";
  out += "    start: " + program + " start -D " + data_dir + " -l " + shell_word(pg_ctl.log_file) + " -w -t " +
         std::to_string(wait_seconds) + " -s\n";
  out += "    stop: " + program + " stop -D " + data_dir + " -m fast -w -t 60 -s\n";
  out += "    status: " + program + " status -D " + data_dir + "\n";
  out += "    as OS user: " + pg_ctl.os_user + " (when pgnap runs as root)\n";
}

// 1073741824 -> "1GB", as postgresql.conf writes sizes (1kB = 1024 bytes).
std::string format_size(std::uint64_t bytes) {
  for (auto [unit, factor] : {std::pair{"GB", 1ull << 30}, std::pair{"MB", 1ull << 20}, std::pair{"kB", 1ull << 10}}) {
    if (bytes >= factor && bytes % factor == 0) return std::to_string(bytes / factor) + unit;
  }
  return std::to_string(bytes) + " bytes";
}

std::string describe_tls(const TlsConfig& tls) {
  if (tls.mode == "disable") return "disable (SSLRequest answered 'N')";
  std::string out = tls.mode +
                    (tls.mode == "require" ? " (plaintext startups refused)" : " (TLS when the client asks)");
  out += "; cert " + tls.cert + ", key " + tls.key;
  out += tls.ca.empty() ? "; no client certificates" : "; client certificates verified against " + tls.ca;
  return out;
}

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

// A query written over several lines, on one: runs of whitespace become one space.
std::string one_line(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (blank) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Who authenticates the instance's clients, and from what.
void describe_auth(std::string& out, const AuthConfig& auth) {
  if (auth.mode != "gateway") {
    // The other keys are accepted in passthrough mode but nothing reads them: say so.
    std::vector<std::string> ignored;
    const AuthConfig defaults;
    for (const auto& row : detail::kAuthKeys) {
      if (row.name != "mode" && !row.same(auth, defaults)) ignored.push_back("auth." + std::string(row.name));
    }
    line(out, "auth",
         "clients authenticate with PostgreSQL (passthrough)" +
             (ignored.empty() ? std::string() : "; ignored in this mode: " + joined(ignored)));
    return;
  }
  line(out, "auth",
       "gateway: pgnap authenticates clients (" + joined(auth.methods) +
           ") and logs in to PostgreSQL on their first query; queue_limit " + format_size(auth.queue_limit));
  std::string sources;
  auto add = [&sources](const std::string& source) { sources += (sources.empty() ? "" : "; ") + source; };
  if (!auth.file.empty()) add("auth_file " + auth.file);
  if (!auth.user.empty()) {
    add("auth_query as " + auth.user + ": " + one_line(auth.query) +
        (auth.cache == "memory" ? " (learned verifiers kept in memory only)"
                                : " (learned verifiers cached in the ledger)"));
  }
  line(out, "auth sources", sources.empty() ? "none (trust only)" : sources);
}

// Session pooling: in the authenticating mode only.
void describe_pool(std::string& out, const InstanceConfig& instance) {
  if (instance.auth.mode != "gateway") {
    line(out, "pool", "none (pooling needs auth.mode = \"gateway\")");
    return;
  }
  if (instance.pool_size == 0) {
    line(out, "pool", "off (pool_size = 0): each session gets a server connection of its own");
    return;
  }
  line(out, "pool",
       "session pooling, pool_size " + std::to_string(instance.pool_size) + ", min_pool_size " +
           std::to_string(instance.min_pool_size) + " (while awake; emptied before each suspend)");
  line(out, "pool timeouts",
       "server_idle_timeout " + format_duration(instance.server_idle_timeout) + ", server_lifetime " +
           format_duration(instance.server_lifetime) + ", pool_wait_timeout " +
           format_duration(instance.pool_wait_timeout));
  line(out, "server_reset_query",
       instance.server_reset_query.empty() ? std::string("none (connections are reused as left)")
                                           : one_line(instance.server_reset_query));
}

// Parking idle sessions: in the authenticating mode only.
void describe_parking(std::string& out, const InstanceConfig& instance) {
  const Duration rest = instance.effective_idle_session_timeout();
  if (instance.auth.mode != "gateway") {
    line(out, "parking", "none (needs auth.mode = \"gateway\"): idle sessions are closed so that it can sleep");
  } else if (!instance.park_sessions) {
    line(out, "parking", "off (park_sessions = false): idle sessions are closed so that it can sleep");
  } else if (rest == Duration(0)) {
    line(out, "parking", "off (idle_session_timeout = 0s)");
  } else {
    line(out, "parking",
         "a session idle for " + format_duration(rest) +
             " is parked: its client stays connected, its server connection is released (to the pool), and its "
             "settings and prepared statements are restored on its next query");
    std::string custom;
    for (const auto& name : instance.park_custom_settings) custom += (custom.empty() ? "" : ", ") + name;
    line(out, "custom settings",
         custom.empty() ? std::string("none read (park_custom_settings): a session's own app.* settings are not kept")
                        : custom + " (park_custom_settings)");
    line(out, "not parked",
         "sessions holding temporary tables, advisory locks or open cursors: closed with 57P01 when only idle "
         "sessions keep it awake; listeners as close_listeners says");
  }
}

// Who never wakes it, when it is kept warm, and when it is woken for maintenance.
void describe_wake(std::string& out, const InstanceConfig& instance, std::chrono::system_clock::time_point now) {
  const WakeConfig& wake = instance.wake;
  if (wake.ignore.empty()) {
    line(out, "wake ignores", "none (every client may wake it)");
  } else {
    std::string_view label = "wake ignores";
    for (const WakeIgnoreRule& rule : wake.ignore) {
      line(out, label, rule.to_string());
      label = "";
    }
  }
  const std::optional<TimeZone> zone = TimeZone::load(wake.time_zone, nullptr);
  if (wake.awake_during.empty()) {
    line(out, "keep-warm", "none (awake_during)");
  } else {
    line(out, "keep-warm", joined(wake.awake_during) + " (" + wake.time_zone + ")");
    const std::vector<WeeklyWindow> windows = parse_windows(wake.awake_during);
    std::optional<Span> span = zone ? current_or_next_window(windows, *zone, now) : std::nullopt;
    if (span && span->start <= now) {
      line(out, "keep-warm now", "in a window, awake until " + format_local(span->end, *zone));
    } else if (span) {
      line(out, "keep-warm next", format_local(span->start, *zone) + " to " + format_local(span->end, *zone));
    }
  }
  const MaintenanceConfig& m = instance.maintenance;
  if (m.every == Duration(0)) {
    line(out, "maintenance", "off (every = 0s)");
    return;
  }
  line(out, "maintenance",
       "after " + format_duration(m.every) + " asleep, woken " +
           (m.at.empty() ? std::string("at once") : "at the next " + m.at + " (" + wake.time_zone + ")") +
           ", then awake at least " + format_duration(m.stay_awake));
  if (m.command.empty()) {
    line(out, "maintenance cmd", "none");
    return;
  }
  line(out, "maintenance cmd",
       command_line(m.command) + "  (timeout " + format_duration(m.command_timeout) +
           (m.os_user.empty() ? std::string() : ", as OS user " + m.os_user + " when pgnap runs as root") + ")");
  for (const auto& [name, value] : m.env) line(out, "maintenance env", name + "=" + shell_word(value));
}

// What the measured basis of the report reads while the instance is awake (accounting.measure).
void describe_measure(std::string& out, const InstanceConfig& instance) {
  const AccountingConfig& a = instance.accounting;
  if (!a.measure) {
    line(out, "measured", "off (accounting.measure = false): the report uses the model alone");
    return;
  }
  const std::string every = ", every " + format_duration(a.measure_interval) + " while awake";
  if (instance.backend == "pg_ctl") {
    line(out, "measured",
         "the postmaster (" + instance.pg_ctl.data_dir + "/postmaster.pid) and its children, from /proc" + every);
  } else if (instance.backend == "systemd") {
    line(out, "measured", "the cgroup of " + systemd_unit_name(instance.systemd.unit) + every);
  } else if (!instance.exec.cgroup.empty()) {
    line(out, "measured", "the cgroup " + instance.exec.cgroup + every);
  } else if (!instance.exec.pid_file.empty()) {
    line(out, "measured", "the process in " + instance.exec.pid_file + " and its children, from /proc" + every);
  } else {
    line(out, "measured", "nothing (exec without pid_file or cgroup): the report uses the model alone");
  }
}

}  // namespace

std::string describe_config(const Config& config) { return describe_config(config, std::chrono::system_clock::now()); }

std::string describe_config(const Config& config, std::chrono::system_clock::time_point now) {
  std::string out;
  if (!config.source.empty()) out += "Configuration " + config.source + "\n\n";

  const GatewayConfig& gateway = config.gateway;
  out += "Gateway\n";
  for (const ListenAddress& address : gateway.listen) line(out, "listen", describe_listen(address));
  line(out, "max_clients", std::to_string(gateway.max_clients));
  line(out, "login_timeout", format_duration(gateway.login_timeout));
  line(out, "shutdown_timeout", format_duration(gateway.shutdown_timeout));
  line(out, "ledger", gateway.ledger + " (heartbeat every " + format_duration(gateway.ledger_heartbeat) + ")");
  line(out, "log_level", gateway.log_level);
  line(out, "max_message_size", format_size(gateway.max_message_size));
  line(out, "queue_limit_total",
       format_size(gateway.queue_limit_total) + " (queued by all sessions while their instances wake)");
  line(out, "tcp_keepalive",
       "idle " + format_duration(gateway.tcp_keepalive_idle) + ", then every " +
           format_duration(gateway.tcp_keepalive_interval) + ", " + std::to_string(gateway.tcp_keepalive_count) +
           " probes");
  line(out, "tls", describe_tls(gateway.tls));
  line(out, "control_socket",
       gateway.control_socket.empty() ? std::string("none (pgnap status, wake, sleep and reload cannot reach it)")
                                      : gateway.control_socket + " (pgnap status, wake, sleep, reload)");
  line(out, "relay",
       gateway.relay == "user"     ? std::string("user (every session relayed in user space)")
       : gateway.relay == "kernel" ? std::string("kernel (plaintext TCP sessions at rest in the kernel; start fails without it)")
                                   : std::string("auto (the kernel relay when pgnap may load it, else user space)"));
  out += "\nMetrics\n";
  line(out, "listen", config.metrics.listen.empty() ? "disabled" : config.metrics.listen + " (Prometheus /metrics)");
  out += '\n';

  describe_routes(out, config);

  for (const InstanceConfig& instance : config.instances) {
    out += "\nInstance " + instance.name + "\n";
    line(out, "backend", instance.backend);
    line(out, "address", describe_backend_address(instance.address));
    line(out, "idle_timeout", format_duration(instance.idle_timeout));
    line(out, "min_awake", format_duration(instance.min_awake));
    line(out, "wake_timeout", format_duration(instance.wake_timeout));
    line(out, "max_waiting",
         std::to_string(instance.max_waiting) + (instance.max_waiting == 0 ? " (never queue)" : ""));
    line(out, "connect_timeout", format_duration(instance.connect_timeout));
    line(out, "suspend_on_exit", instance.suspend_on_exit ? "yes" : "no");
    const Duration rest = instance.effective_idle_session_timeout();
    line(out, "idle_session_timeout",
         rest == Duration(0)
             ? std::string("0s (open sessions keep it awake)")
             : format_duration(rest) + (instance.close_listeners ? " (listeners too)" : " (not listeners)"));
    line(out, "tls", instance.effective_tls() + (instance.tls.empty() ? " (default for this address)" : ""));
    describe_auth(out, instance.auth);
    describe_pool(out, instance);
    describe_parking(out, instance);
    describe_wake(out, instance, now);
    describe_measure(out, instance);
    if (instance.backend == "pg_ctl") describe_pg_ctl(out, instance);
    if (instance.backend == "exec") describe_exec(out, instance);
    if (instance.backend == "systemd") describe_systemd(out, instance);
  }
  return out;
}

}  // namespace pgnap::config
