// The configuration schema: every TOML key pgnap knows, declared once per table as a row of
// (name, struct member, type and bounds, required or not, live or restart-only). Defaults are
// the initializers in config/config.h; docs/configuration.md documents the same rows. Checks
// that span several keys (backend sub-tables, authentication, routing) follow the tables, then
// parse_config. The readers behind the rows: config/values.cpp, config/address.cpp and
// config/wake_values.cpp; what a reload does with the rows: config/reload.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/keys.h"
#include "config/toml_guard.h"

namespace pgnap::config {
namespace {

namespace fs = std::filesystem;
using detail::AddressPatternValue;
using detail::at_least;
using detail::BackendAddressValue;
using detail::BoolValue;
using detail::ChoiceListValue;
using detail::ChoiceValue;
using detail::CommandValue;
using detail::CurrencyValue;
using detail::DatabaseListValue;
using detail::DurationValue;
using detail::EnvValue;
using detail::greater_than;
using detail::IgnoreRuleListValue;
using detail::IntegerValue;
using detail::join_key;
using detail::key;
using detail::KeyRow;
using detail::ListenListValue;
using detail::MetricsListenValue;
using detail::ParseContext;
using detail::PathValue;
using detail::Presence;
using detail::quote;
using detail::Reload;
using detail::SizeValue;
using detail::SocketPathValue;
using detail::StringValue;
using detail::sub_table;
using detail::TableValue;
using detail::TimeOfDayValue;
using detail::TimeZoneValue;
using detail::type_name;
using detail::WindowListValue;

constexpr Duration kDay = std::chrono::hours(24);
// No timer needs more than a year, and the cap keeps `now + timeout` far from overflow.
constexpr Duration kMaxDuration = 365 * kDay;
constexpr DurationValue kPositive{Duration(1), kMaxDuration};
constexpr DurationValue kNonNegative{Duration(0), kMaxDuration};

constexpr std::array<std::string_view, 4> kLogLevels{"debug", "info", "warning", "error"};
constexpr std::array<std::string_view, 3> kRelayModes{"auto", "kernel", "user"};
constexpr std::array<std::string_view, 3> kTlsModes{"disable", "allow", "require"};
constexpr std::array<std::string_view, 3> kBackendTlsModes{"disable", "prefer", "require"};
constexpr std::array<std::string_view, 2> kAuthModes{"passthrough", "gateway"};
constexpr std::array<std::string_view, 3> kAuthMethods{"scram-sha-256", "md5", "trust"};
constexpr std::array<std::string_view, 2> kAuthCaches{"ledger", "memory"};
constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;
// Backends docs/architecture.md names. Only the supported ones have a driver (and a sub-table) today.
constexpr std::array<std::string_view, 3> kSupportedBackends{"pg_ctl", "exec", "systemd"};
constexpr std::array<std::string_view, 1> kPlannedBackends{"kubernetes"};

std::string quoted_list(std::span<const std::string_view> words) {
  std::string list;
  for (std::string_view word : words) list += (list.empty() ? "" : ", ") + quote(word);
  return list;
}

// instances.NAME.backend: a supported driver; a planned one gets "not supported yet".
struct BackendNameValue {
  std::optional<std::string> operator()(ParseContext& ctx, const toml::node& node, const std::string& dotted) const {
    std::optional<std::string> name = StringValue{}(ctx, node, dotted);
    if (!name) return std::nullopt;
    auto in = [&](auto& names) { return std::find(names.begin(), names.end(), *name) != names.end(); };
    if (in(kSupportedBackends)) return name;
    std::string supported = "supported backends: " + quoted_list(kSupportedBackends);
    if (in(kPlannedBackends)) {
      ctx.error(node.source(), dotted, "backend " + quote(*name) + " is not supported yet; " + supported);
    } else {
      ctx.error(node.source(), dotted, "unknown backend " + quote(*name) + "; " + supported);
    }
    // Kept, so that the sub-table checks below can still name it.
    return name;
  }
};

// ---- The tables ---------------------------------------------------------------------------

const std::vector<KeyRow<PgCtlConfig>> kPgCtlKeys = {
    key("data_dir", &PgCtlConfig::data_dir, PathValue{}, Presence::kRequired),
    key("bin_dir", &PgCtlConfig::bin_dir, PathValue{.allow_empty = true}),
    key("os_user", &PgCtlConfig::os_user, StringValue{.allow_empty = false}),
    key("log_file", &PgCtlConfig::log_file, PathValue{}),
};

const std::vector<KeyRow<ExecConfig>> kExecKeys = {
    key("start", &ExecConfig::start, CommandValue{}, Presence::kRequired),
    key("stop", &ExecConfig::stop, CommandValue{}, Presence::kRequired),
    key("status", &ExecConfig::status, CommandValue{}),
    key("env", &ExecConfig::env, EnvValue{}),
    key("os_user", &ExecConfig::os_user, StringValue{.allow_empty = false}),
    key("start_timeout", &ExecConfig::start_timeout, kPositive),
    key("stop_timeout", &ExecConfig::stop_timeout, kPositive),
    key("status_timeout", &ExecConfig::status_timeout, kPositive),
    key("pid_file", &ExecConfig::pid_file, PathValue{.allow_empty = true}),
    key("cgroup", &ExecConfig::cgroup, PathValue{.allow_empty = true}),
};

const std::vector<KeyRow<SystemdConfig>> kSystemdKeys = {
    key("unit", &SystemdConfig::unit, StringValue{.allow_empty = false}, Presence::kRequired),
    key("stop_timeout", &SystemdConfig::stop_timeout, kPositive),
};

const std::vector<KeyRow<AccountingConfig>> kAccountingKeys = {
    key("vcpus", &AccountingConfig::vcpus, greater_than(0)),
    key("memory_gb", &AccountingConfig::memory_gb, at_least(0)),
    key("idle_watts_per_vcpu", &AccountingConfig::idle_watts_per_vcpu, at_least(0)),
    key("busy_watts_per_vcpu", &AccountingConfig::busy_watts_per_vcpu, at_least(0)),
    key("watts_per_gb", &AccountingConfig::watts_per_gb, at_least(0)),
    key("residual_watts", &AccountingConfig::residual_watts, at_least(0)),
    key("power_watts", &AccountingConfig::power_watts, greater_than(0)),
    key("busy_power_watts", &AccountingConfig::busy_power_watts, greater_than(0)),
    key("pue", &AccountingConfig::pue, at_least(1)),
    key("grid_intensity", &AccountingConfig::grid_intensity, at_least(0)),
    key("grid_source", &AccountingConfig::grid_source, StringValue{}),
    key("grid_year", &AccountingConfig::grid_year, IntegerValue{1990, 2100}),
    key("price_per_hour", &AccountingConfig::price_per_hour, at_least(0)),
    key("currency", &AccountingConfig::currency, CurrencyValue{}),
    key("wake_billed_minimum", &AccountingConfig::wake_billed_minimum, kNonNegative),
    key("embodied_g_per_hour", &AccountingConfig::embodied_g_per_hour, at_least(0)),
    key("measure", &AccountingConfig::measure, BoolValue{}),
    key("measure_interval", &AccountingConfig::measure_interval,
        DurationValue{std::chrono::seconds(1), std::chrono::hours(1)}),
    key("price_per_gb_hour", &AccountingConfig::price_per_gb_hour, at_least(0)),
};

// One rule of wake.ignore: each key it sets narrows it.
const std::vector<KeyRow<WakeIgnoreRule>> kIgnoreRuleKeys = {
    key("user", &WakeIgnoreRule::user, StringValue{.allow_empty = false}),
    key("application_name", &WakeIgnoreRule::application_name, StringValue{.allow_empty = false}),
    key("address", &WakeIgnoreRule::address, AddressPatternValue{}),
};

// Read by the instance on every decision, so all of it applies on reload.
const std::vector<KeyRow<WakeConfig>> kWakeKeys = {
    key("ignore", &WakeConfig::ignore, IgnoreRuleListValue{kIgnoreRuleKeys}),
    key("awake_during", &WakeConfig::awake_during, WindowListValue{}),
    key("time_zone", &WakeConfig::time_zone, TimeZoneValue{}),
};

// The next maintenance wake is planned from these on reload; a command already running keeps
// the settings it started with.
const std::vector<KeyRow<MaintenanceConfig>> kMaintenanceKeys = {
    key("every", &MaintenanceConfig::every, kNonNegative),
    key("at", &MaintenanceConfig::at, TimeOfDayValue{}),
    key("stay_awake", &MaintenanceConfig::stay_awake, DurationValue{Duration(0), kDay}),
    key("command", &MaintenanceConfig::command, CommandValue{}),
    key("command_timeout", &MaintenanceConfig::command_timeout, kPositive),
    key("os_user", &MaintenanceConfig::os_user, StringValue{.allow_empty = false}),
    key("env", &MaintenanceConfig::env, EnvValue{}),
};

const std::vector<KeyRow<TlsConfig>> kTlsKeys = {
    key("mode", &TlsConfig::mode, ChoiceValue{kTlsModes}),
    key("cert", &TlsConfig::cert, PathValue{.allow_empty = true}),
    key("key", &TlsConfig::key, PathValue{.allow_empty = true}),
    key("ca", &TlsConfig::ca, PathValue{.allow_empty = true}),
};

}  // namespace

// ---- The tables a reload reads too (config/keys.h) ----------------------------------------

// A reload applies every key at once but `cache`: the verifiers already learned stay where
// they are until a restart.
const std::vector<KeyRow<AuthConfig>> detail::kAuthKeys = {
    key("mode", &AuthConfig::mode, ChoiceValue{kAuthModes}),
    key("file", &AuthConfig::file, PathValue{.allow_empty = true}),
    key("query", &AuthConfig::query, StringValue{}),
    key("user", &AuthConfig::user, StringValue{}),
    key("methods", &AuthConfig::methods, ChoiceListValue{kAuthMethods}),
    key("cache", &AuthConfig::cache, ChoiceValue{kAuthCaches}, Presence::kOptional, Reload::kRestart),
    key("queue_limit", &AuthConfig::queue_limit, SizeValue{8 * kKiB, kGiB}),
};

const std::vector<KeyRow<InstanceConfig>> detail::kInstanceKeys = {
    key("databases", &InstanceConfig::databases, DatabaseListValue{}),
    key("backend", &InstanceConfig::backend, BackendNameValue{}, Presence::kRequired, Reload::kRestart),
    key("address", &InstanceConfig::address, BackendAddressValue{}, Presence::kRequired, Reload::kRestart),
    key("idle_timeout", &InstanceConfig::idle_timeout, kPositive),
    key("min_awake", &InstanceConfig::min_awake, DurationValue{Duration(0), kDay}),
    key("wake_timeout", &InstanceConfig::wake_timeout, kPositive),
    key("max_waiting", &InstanceConfig::max_waiting, IntegerValue{0, 1'000'000}),
    key("connect_timeout", &InstanceConfig::connect_timeout, kPositive),
    key("suspend_on_exit", &InstanceConfig::suspend_on_exit, BoolValue{}),
    key("idle_session_timeout", &InstanceConfig::idle_session_timeout, kNonNegative),
    key("close_listeners", &InstanceConfig::close_listeners, BoolValue{}),
    key("park_sessions", &InstanceConfig::park_sessions, BoolValue{}),
    key("park_custom_settings", &InstanceConfig::park_custom_settings, CustomSettingListValue{}),
    key("tls", &InstanceConfig::tls, ChoiceValue{kBackendTlsModes}),
    key("pool_size", &InstanceConfig::pool_size, IntegerValue{0, 10'000}),
    key("min_pool_size", &InstanceConfig::min_pool_size, IntegerValue{0, 10'000}),
    key("server_idle_timeout", &InstanceConfig::server_idle_timeout, kPositive),
    key("server_lifetime", &InstanceConfig::server_lifetime, kPositive),
    key("pool_wait_timeout", &InstanceConfig::pool_wait_timeout, kPositive),
    key("server_reset_query", &InstanceConfig::server_reset_query, StringValue{}),
    // A backend's own table: a new driver, so a restart.
    key("pg_ctl", &InstanceConfig::pg_ctl, TableValue<PgCtlConfig>{kPgCtlKeys}, Presence::kOptional, Reload::kRestart),
    key("exec", &InstanceConfig::exec, TableValue<ExecConfig>{kExecKeys}, Presence::kOptional, Reload::kRestart),
    key("systemd", &InstanceConfig::systemd, TableValue<SystemdConfig>{kSystemdKeys}, Presence::kOptional,
        Reload::kRestart),
    key("accounting", &InstanceConfig::accounting, TableValue<AccountingConfig>{kAccountingKeys}),
    // Live but for auth.cache: compared and merged key by key.
    sub_table("auth", &InstanceConfig::auth, std::span<const KeyRow<AuthConfig>>(detail::kAuthKeys)),
    sub_table("wake", &InstanceConfig::wake, std::span<const KeyRow<WakeConfig>>(kWakeKeys)),
    sub_table("maintenance", &InstanceConfig::maintenance,
              std::span<const KeyRow<MaintenanceConfig>>(kMaintenanceKeys)),
};

const std::vector<KeyRow<GatewayConfig>> detail::kGatewayKeys = {
    key("listen", &GatewayConfig::listen, ListenListValue{}),
    key("max_clients", &GatewayConfig::max_clients, IntegerValue{1, 1'000'000}),
    key("login_timeout", &GatewayConfig::login_timeout, kPositive),
    key("ledger", &GatewayConfig::ledger, PathValue{}, Presence::kOptional, Reload::kRestart),
    key("ledger_heartbeat", &GatewayConfig::ledger_heartbeat, kPositive),
    key("shutdown_timeout", &GatewayConfig::shutdown_timeout, kNonNegative),
    key("log_level", &GatewayConfig::log_level, ChoiceValue{kLogLevels}),
    key("max_message_size", &GatewayConfig::max_message_size, SizeValue{kKiB, kGiB}),
    key("tcp_keepalive_idle", &GatewayConfig::tcp_keepalive_idle, kPositive),
    key("tcp_keepalive_interval", &GatewayConfig::tcp_keepalive_interval, kPositive),
    key("tcp_keepalive_count", &GatewayConfig::tcp_keepalive_count, IntegerValue{1, 127}),
    key("queue_limit_total", &GatewayConfig::queue_limit_total, SizeValue{64 * kKiB, 16 * kGiB}),
    key("tls", &GatewayConfig::tls, TableValue<TlsConfig>{kTlsKeys}),
    // The listening socket of the control commands is bound once, at start-up.
    key("control_socket", &GatewayConfig::control_socket, SocketPathValue{}, Presence::kOptional, Reload::kRestart),
    // The BPF program is loaded once, at start-up.
    key("relay", &GatewayConfig::relay, ChoiceValue{kRelayModes}, Presence::kOptional, Reload::kRestart),
};

const std::vector<KeyRow<MetricsConfig>> detail::kMetricsKeys = {
    key("listen", &MetricsConfig::listen, MetricsListenValue{}),
};

namespace {

// ---- Checks across keys -------------------------------------------------------------------

constexpr std::string_view kNoInstances = "at least one instance is required: add an [instances.NAME] table";

bool valid_instance_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

struct ParsedInstance {
  InstanceConfig config;
  const toml::table* table;
  std::string key;  // "instances.NAME"
};

// A backend's sub-table must match the selected backend, and pg_ctl needs its own.
void check_backend_tables(ParseContext& ctx, ParsedInstance& instance) {
  const InstanceConfig& config = instance.config;
  for (std::string_view backend : kSupportedBackends) {
    const toml::node* sub = instance.table->get(backend);
    if (sub != nullptr && !config.backend.empty() && config.backend != backend) {
      ctx.error(sub->source(), join_key(instance.key, backend),
                "[" + join_key(instance.key, backend) + "] applies only to backend = " + quote(backend) +
                    ", but this instance's backend is " + quote(config.backend));
    }
  }
  struct Needs {
    std::string_view backend;
    std::string_view what;
  };
  for (const Needs& n : {Needs{"pg_ctl", "at least data_dir"}, Needs{"exec", "at least start and stop"},
                         Needs{"systemd", "at least unit"}}) {
    if (config.backend == n.backend && !instance.table->contains(n.backend)) {
      ctx.error(instance.table->source(), join_key(instance.key, n.backend),
                "required key " + quote(n.backend) + " is missing (backend = " + quote(n.backend) + " needs a [" +
                    join_key(instance.key, n.backend) + "] table with " + std::string(n.what) + ")");
    }
  }
  // "postgresql@15-main" names a service; other unit types keep their suffix. The driver's
  // own rule, so that `pgnap check` shows the unit the driver will ask for.
  std::string& unit = instance.config.systemd.unit;
  if (!unit.empty()) unit = systemd_unit_name(unit);
  PgCtlConfig& pg_ctl = instance.config.pg_ctl;
  if (pg_ctl.log_file.empty() && !pg_ctl.data_dir.empty()) {
    pg_ctl.log_file = (fs::path(pg_ctl.data_dir) / "pgnap-postgres.log").string();
  }
}

// Why pgnap cannot read `path` as its auth_file now, or nullopt when it can: a regular file
// (after symlinks) it may open. Opened without blocking and closed at once, so a FIFO or a
// device named by mistake is refused, never read.
std::optional<std::string> unreadable_auth_file(const std::string& path) {
  const auto cannot = [&path](int error) {
    return "cannot read the auth_file " + quote(path) + ": " + std::generic_category().message(error);
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return cannot(errno);
  if (S_ISDIR(st.st_mode)) return "expected a PgBouncer-format auth_file, got the directory " + quote(path);
  if (!S_ISREG(st.st_mode)) {
    return "expected a PgBouncer-format auth_file, got " + quote(path) + ", which is not a regular file";
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return cannot(errno);
  ::close(fd);
  return std::nullopt;
}

// [instances.NAME.auth] across its keys, in gateway mode only: in passthrough mode nothing
// reads the other keys, so the rows check their form and no more (the file need not exist).
void check_auth(ParseContext& ctx, const ParsedInstance& instance) {
  const AuthConfig& auth = instance.config.auth;
  const toml::table* table = instance.table->get_as<toml::table>("auth");
  if (table == nullptr || auth.mode != "gateway") return;
  const std::string auth_key = join_key(instance.key, "auth");
  auto where = [table](std::string_view name) -> const toml::source_region& {
    const toml::node* node = table->get(name);
    return node != nullptr ? node->source() : table->source();
  };
  if (!auth.user.empty() && auth.query.empty()) {
    ctx.error(where("query"), join_key(auth_key, "query"),
              "expected a non-empty query when auth.user is set (auth.user runs it to read a client's password "
              "verifier), got \"\"");
  }
  const bool trust = std::find(auth.methods.begin(), auth.methods.end(), "trust") != auth.methods.end();
  // An empty list was reported by its row.
  if (auth.file.empty() && auth.user.empty() && !trust && !auth.methods.empty()) {
    ctx.error(table->source(), auth_key,
              "mode = \"gateway\" needs a password source: set auth.file (a PgBouncer-format auth_file) or "
              "auth.user (to run auth.query), or allow \"trust\" in auth.methods");
  }
  // Checked at start-up and on every reload, as pgnap check wants: an auth_file pgnap cannot
  // read is an error naming its key, not a surprise at the first client.
  if (!auth.file.empty()) {
    if (std::optional<std::string> why = unreadable_auth_file(auth.file)) {
      ctx.error(where("file"), join_key(auth_key, "file"), std::move(*why));
    }
  }
}

// The pool's bounds: its floor within its size.
void check_pool(ParseContext& ctx, const ParsedInstance& instance) {
  const InstanceConfig& config = instance.config;
  if (config.min_pool_size <= config.pool_size) return;
  const toml::node* node = instance.table->get("min_pool_size");
  ctx.error(node != nullptr ? node->source() : instance.table->source(), join_key(instance.key, "min_pool_size"),
            "expected at most pool_size (" + std::to_string(config.pool_size) + "), got " +
                std::to_string(config.min_pool_size));
}

// A maintenance time of day only says when, once `every` says how often.
void check_maintenance(ParseContext& ctx, const ParsedInstance& instance) {
  const MaintenanceConfig& maintenance = instance.config.maintenance;
  if (maintenance.at.empty() || maintenance.every > Duration(0)) return;
  const toml::node* at = instance.table->at_path("maintenance.at").node();
  ctx.error(at != nullptr ? at->source() : instance.table->source(),
            join_key(join_key(instance.key, "maintenance"), "at"),
            "maintenance.at needs maintenance.every (how often to wake, e.g. \"7d\")");
}

// TLS for clients needs a certificate and its key.
void check_tls(ParseContext& ctx, const toml::table& root, const TlsConfig& tls) {
  if (tls.mode == "disable") return;
  const toml::node* table = root.at_path("gateway.tls").node();
  const toml::source_region where = table ? table->source() : root.source();
  for (auto [name, value] : {std::pair{"cert", &tls.cert}, std::pair{"key", &tls.key}}) {
    if (value->empty()) {
      ctx.error(where, std::string("gateway.tls.") + name,
                "required key " + quote(name) + " is missing (mode = " + quote(tls.mode) +
                    " needs a certificate and its private key)");
    }
  }
}

// Where a database name of an instance was written: its array element, else the instance.
const toml::source_region& database_source(const ParsedInstance& instance, std::string_view name) {
  if (const toml::array* array = instance.table->get_as<toml::array>("databases")) {
    for (const toml::node& item : *array) {
      if (const auto* s = item.as_string(); s != nullptr && s->get() == name) return item.source();
    }
  }
  return instance.table->source();
}

// Every database name (and "*") routes to exactly one instance.
void check_routes(ParseContext& ctx, const std::vector<ParsedInstance>& instances) {
  std::map<std::string, const ParsedInstance*> owner;
  for (const ParsedInstance& instance : instances) {
    for (const std::string& name : instance.config.databases) {
      auto [it, inserted] = owner.emplace(name, &instance);
      if (inserted) continue;
      std::string both = "instance " + quote(it->second->config.name) + " and instance " + quote(instance.config.name);
      ctx.error(database_source(instance, name), join_key(instance.key, "databases"),
                name == "*"
                    ? "\"*\" (any other database) is routed to both " + both + "; only one instance may have \"*\""
                    : "database " + quote(name) + " is routed to both " + both);
    }
  }
}

// [instances]: a table of named instance tables, returned in file order.
struct InstancesValue {
  std::optional<std::vector<InstanceConfig>> operator()(ParseContext& ctx, const toml::node& node,
                                                        const std::string& dotted) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      ctx.error(node.source(), dotted, "expected a table of instances ([instances.NAME]), got " + type_name(node));
      return std::nullopt;
    }
    if (table->empty()) {
      ctx.error(node.source(), dotted, std::string(kNoInstances));
      return std::nullopt;
    }
    std::vector<ParsedInstance> parsed;
    for (auto&& [name, value] : *table) {
      std::string instance_key = join_key(dotted, name.str());
      if (!valid_instance_name(name.str())) {
        ctx.error(name.source(), instance_key,
                  "invalid instance name " + quote(name.str()) + ": use only letters, digits, \"_\" and \"-\"");
      }
      const toml::table* instance_table = value.as_table();
      if (instance_table == nullptr) {
        ctx.error(value.source(), instance_key, "expected a table ([" + instance_key + "]), got " + type_name(value));
        continue;
      }
      ParsedInstance instance{InstanceConfig{}, instance_table, instance_key};
      instance.config.name = std::string(name.str());
      detail::apply_rows(ctx, *instance_table, instance_key, detail::kInstanceKeys, instance.config);
      check_backend_tables(ctx, instance);
      check_auth(ctx, instance);
      check_pool(ctx, instance);
      check_maintenance(ctx, instance);
      parsed.push_back(std::move(instance));
    }
    // toml++ keeps keys sorted; the contract is file order (it decides routing messages,
    // log order and `pgnap check` output).
    std::stable_sort(parsed.begin(), parsed.end(), [](const ParsedInstance& a, const ParsedInstance& b) {
      const auto& pa = a.table->source().begin;
      const auto& pb = b.table->source().begin;
      return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
    });
    check_routes(ctx, parsed);

    std::vector<InstanceConfig> result;
    for (ParsedInstance& instance : parsed) result.push_back(std::move(instance.config));
    return result;
  }
};

const std::vector<KeyRow<Config>> kRootKeys = {
    key("gateway", &Config::gateway, TableValue<GatewayConfig>{detail::kGatewayKeys}),
    key("metrics", &Config::metrics, TableValue<MetricsConfig>{detail::kMetricsKeys}),
    key("instances", &Config::instances, InstancesValue{}),
};

}  // namespace

Config parse_config(std::string_view text, std::string source, std::string base_dir) {
  fs::path base = base_dir.empty() ? fs::current_path() : fs::absolute(base_dir);
  ParseContext ctx(source, base.lexically_normal());

  // toml++ never reads what would make it misbehave (config/toml_guard.h).
  if (std::optional<ConfigError> error = detail::check_tomlpp_safe(text, source)) {
    throw ConfigLoadError({std::move(*error)});
  }
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    throw ConfigLoadError({ConfigError{source,
                                       static_cast<std::uint32_t>(e.source().begin.line),
                                       static_cast<std::uint32_t>(e.source().begin.column),
                                       {},
                                       std::string(e.description())}});
  }

  Config config;
  config.source = source;
  config.text = std::string(text);
  detail::apply_rows(ctx, root, "", kRootKeys, config);
  if (!root.contains("instances")) ctx.error(root.source(), "instances", std::string(kNoInstances));
  check_tls(ctx, root, config.gateway.tls);

  std::vector<ConfigError> errors = ctx.take_errors();
  if (!errors.empty()) throw ConfigLoadError(std::move(errors));
  return config;
}

}  // namespace pgnap::config
