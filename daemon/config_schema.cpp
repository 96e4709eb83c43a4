// The configuration schema: every TOML key pgnap knows, declared once per table as a row of
// (name, struct member, type and bounds, required or not). Defaults are the initializers in
// daemon/config.h; docs/configuration.md documents the same rows. Checks that span several
// keys (backend sub-tables, routing) follow the tables.
#include <algorithm>
#include <array>
#include <chrono>
#include <map>

#include "backends/systemd_backend.h"
#include "daemon/config.h"
#include "daemon/config_keys.h"

namespace pgnap::daemon {
namespace {

namespace fs = std::filesystem;
using config_detail::at_least;
using config_detail::BackendAddressValue;
using config_detail::BoolValue;
using config_detail::ChoiceValue;
using config_detail::CommandValue;
using config_detail::EnvValue;
using config_detail::CurrencyValue;
using config_detail::DatabaseListValue;
using config_detail::DurationValue;
using config_detail::greater_than;
using config_detail::IntegerValue;
using config_detail::join_key;
using config_detail::key;
using config_detail::KeyRow;
using config_detail::ListenListValue;
using config_detail::MetricsListenValue;
using config_detail::ParseContext;
using config_detail::PathValue;
using config_detail::Presence;
using config_detail::quote;
using config_detail::Reload;
using config_detail::SizeValue;
using config_detail::StringValue;
using config_detail::TableValue;
using config_detail::type_name;

constexpr Duration kDay = std::chrono::hours(24);
// No timer needs more than a year, and the cap keeps `now + timeout` far from overflow.
constexpr Duration kMaxDuration = 365 * kDay;
constexpr DurationValue kPositive{Duration(1), kMaxDuration};
constexpr DurationValue kNonNegative{Duration(0), kMaxDuration};

constexpr std::array<std::string_view, 4> kLogLevels{"debug", "info", "warning", "error"};
constexpr std::array<std::string_view, 3> kTlsModes{"disable", "allow", "require"};
constexpr std::array<std::string_view, 3> kBackendTlsModes{"disable", "prefer", "require"};
// Backends DESIGN.md names. Only the supported ones have a driver (and a sub-table) today.
constexpr std::array<std::string_view, 3> kSupportedBackends{"pg_ctl", "exec", "systemd"};
constexpr std::array<std::string_view, 1> kPlannedBackends{"kubernetes"};

std::string quoted_list(std::span<const std::string_view> words) {
  std::string list;
  for (std::string_view word : words) list += (list.empty() ? "" : ", ") + quote(word);
  return list;
}

// instances.NAME.backend: a supported driver; a planned one gets "not supported yet".
struct BackendNameValue {
  std::optional<std::string> operator()(ParseContext& ctx, const toml::node& node,
                                        const std::string& dotted) const {
    std::optional<std::string> name = StringValue{}(ctx, node, dotted);
    if (!name) return std::nullopt;
    auto in = [&](auto& names) {
      return std::find(names.begin(), names.end(), *name) != names.end();
    };
    if (in(kSupportedBackends)) return name;
    std::string supported = "supported backends: " + quoted_list(kSupportedBackends);
    if (in(kPlannedBackends)) {
      ctx.error(node.source(), dotted,
                "backend " + quote(*name) + " is not supported yet; " + supported);
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
};

const std::vector<KeyRow<InstanceConfig>> kInstanceKeys = {
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
    key("tls", &InstanceConfig::tls, ChoiceValue{kBackendTlsModes}),
    // A backend's own table: a new driver, so a restart.
    key("pg_ctl", &InstanceConfig::pg_ctl, TableValue<PgCtlConfig>{kPgCtlKeys}, Presence::kOptional, Reload::kRestart),
    key("exec", &InstanceConfig::exec, TableValue<ExecConfig>{kExecKeys}, Presence::kOptional, Reload::kRestart),
    key("systemd", &InstanceConfig::systemd, TableValue<SystemdConfig>{kSystemdKeys}, Presence::kOptional,
        Reload::kRestart),
    key("accounting", &InstanceConfig::accounting, TableValue<AccountingConfig>{kAccountingKeys}),
};

const std::vector<KeyRow<TlsConfig>> kTlsKeys = {
    key("mode", &TlsConfig::mode, ChoiceValue{kTlsModes}),
    key("cert", &TlsConfig::cert, PathValue{.allow_empty = true}),
    key("key", &TlsConfig::key, PathValue{.allow_empty = true}),
    key("ca", &TlsConfig::ca, PathValue{.allow_empty = true}),
};

const std::vector<KeyRow<GatewayConfig>> kGatewayKeys = {
    key("listen", &GatewayConfig::listen, ListenListValue{}),
    key("max_clients", &GatewayConfig::max_clients, IntegerValue{1, 1'000'000}),
    key("login_timeout", &GatewayConfig::login_timeout, kPositive),
    key("ledger", &GatewayConfig::ledger, PathValue{}, Presence::kOptional, Reload::kRestart),
    key("ledger_heartbeat", &GatewayConfig::ledger_heartbeat, kPositive),
    key("shutdown_timeout", &GatewayConfig::shutdown_timeout, kNonNegative),
    key("log_level", &GatewayConfig::log_level, ChoiceValue{kLogLevels}),
    key("max_message_size", &GatewayConfig::max_message_size, SizeValue{1024, 1024ull * 1024 * 1024}),
    key("tcp_keepalive_idle", &GatewayConfig::tcp_keepalive_idle, kPositive),
    key("tcp_keepalive_interval", &GatewayConfig::tcp_keepalive_interval, kPositive),
    key("tcp_keepalive_count", &GatewayConfig::tcp_keepalive_count, IntegerValue{1, 127}),
    key("tls", &GatewayConfig::tls, TableValue<TlsConfig>{kTlsKeys}),
};

const std::vector<KeyRow<MetricsConfig>> kMetricsKeys = {
    key("listen", &MetricsConfig::listen, MetricsListenValue{}),
};

// ---- Checks across keys -------------------------------------------------------------------

constexpr std::string_view kNoInstances =
    "at least one instance is required: add an [instances.NAME] table";

bool valid_instance_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
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
                "[" + join_key(instance.key, backend) + "] applies only to backend = " +
                    quote(backend) + ", but this instance's backend is " + quote(config.backend));
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
  if (!unit.empty()) unit = backends::systemd_unit_name(unit);
  PgCtlConfig& pg_ctl = instance.config.pg_ctl;
  if (pg_ctl.log_file.empty() && !pg_ctl.data_dir.empty()) {
    pg_ctl.log_file = (fs::path(pg_ctl.data_dir) / "pgnap-postgres.log").string();
  }
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
      std::string both = "instance " + quote(it->second->config.name) + " and instance " +
                         quote(instance.config.name);
      ctx.error(database_source(instance, name), join_key(instance.key, "databases"),
                name == "*" ? "\"*\" (any other database) is routed to both " + both +
                                  "; only one instance may have \"*\""
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
      ctx.error(node.source(), dotted,
                "expected a table of instances ([instances.NAME]), got " + type_name(node));
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
                  "invalid instance name " + quote(name.str()) +
                      ": use only letters, digits, \"_\" and \"-\"");
      }
      const toml::table* instance_table = value.as_table();
      if (instance_table == nullptr) {
        ctx.error(value.source(), instance_key,
                  "expected a table ([" + instance_key + "]), got " + type_name(value));
        continue;
      }
      ParsedInstance instance{InstanceConfig{}, instance_table, instance_key};
      instance.config.name = std::string(name.str());
      config_detail::apply_rows(ctx, *instance_table, instance_key, kInstanceKeys, instance.config);
      check_backend_tables(ctx, instance);
      parsed.push_back(std::move(instance));
    }
    // toml++ keeps keys sorted; the contract is file order (it decides routing messages,
    // log order and `pgnap check` output).
    std::stable_sort(parsed.begin(), parsed.end(),
                     [](const ParsedInstance& a, const ParsedInstance& b) {
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
    key("gateway", &Config::gateway, TableValue<GatewayConfig>{kGatewayKeys}),
    key("metrics", &Config::metrics, TableValue<MetricsConfig>{kMetricsKeys}),
    key("instances", &Config::instances, InstancesValue{}),
};

// toml++ 3.3 (Debian bookworm's) asks whether a non-ASCII character is whitespace wherever
// whitespace may come, and for many (U+00A1 to U+0499 among them: "é = 1") that question
// reaches __builtin_unreachable(), undefined behaviour (marzer/tomlplusplus#190 and #295;
// found by tests/fuzz/fuzz_config). TOML allows non-ASCII only in strings and comments, so
// such a character anywhere else is refused here, before toml++ reads the text. So is one
// that a multi-line basic string puts right after a backslash: an invalid escape, or the
// first character after a line-ending backslash (valid TOML, but toml++ misreads it). A quote
// starts a string only where TOML allows one (toml++ reads `0"x` as one bad value).
std::optional<ConfigError> check_non_ascii(std::string_view text, const std::string& source) {
  enum class In { kCode, kComment, kString, kLiteral, kMultiString, kMultiLiteral };
  In in = In::kCode;
  bool escaped = false;   // the previous character was a backslash in a basic string
  bool trimming = false;  // after a line-ending backslash, before the next character
  char last = '\n';       // the last character outside strings, but for spaces and comments
  std::uint32_t line = 1;
  std::uint32_t column = 0;  // in characters, as toml++ counts them
  auto error = [&](std::string_view what) { return ConfigError{source, line, column, {}, std::string(what)}; };
  auto space = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  // The number of `q` characters from `i` on.
  auto run_of = [&](std::size_t i, char q) {
    std::size_t n = 0;
    while (i + n < text.size() && text[i + n] == q) ++n;
    return n;
  };
  const std::size_t start = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 byte order mark
  for (std::size_t i = start; i < text.size(); ++i) {
    if (i > start && text[i - 1] == '\n') {
      ++line;
      column = 0;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) ++column;  // not a UTF-8 continuation byte
    const bool multi = in == In::kMultiString;
    if (escaped) {
      escaped = false;
      if (multi && c >= 0x80) return error("a backslash followed by a non-ASCII character is not a valid escape");
      trimming = multi && space(c);
      continue;
    }
    if (trimming) {
      if (space(c)) continue;
      if (c >= 0x80) {
        return error("the first character after a line-ending backslash must be ASCII: put the non-ASCII text "
                     "on the backslash's line, or drop the backslash");
      }
      trimming = false;
    }
    switch (in) {
      case In::kCode:
        if (c == ' ' || c == '\t' || c == '\r') break;
        if (c >= 0x80) return error("non-ASCII character outside a string or a comment");
        if (c == '#') {
          in = In::kComment;
          break;
        }
        // Keys start lines or follow '.', '{' or ','; values follow '=', '[' or ','.
        if ((c == '"' || c == '\'') && std::string_view("\n.{,=[").find(last) != std::string_view::npos) {
          const std::size_t n = std::min<std::size_t>(run_of(i, static_cast<char>(c)), 3);
          if (n != 2) {  // "" and '' are empty strings
            in = c == '"' ? (n == 3 ? In::kMultiString : In::kString) : (n == 3 ? In::kMultiLiteral : In::kLiteral);
          }
          i += n - 1;
          column += static_cast<std::uint32_t>(n - 1);
        }
        last = static_cast<char>(c);
        break;
      case In::kComment:
      case In::kString:
      case In::kLiteral:
        if (c == '\n') {  // a string cannot span lines: toml++ reports it
          in = In::kCode;
          last = '\n';
        }
        if (in == In::kString && c == '\\') escaped = true;
        if ((in == In::kString && c == '"') || (in == In::kLiteral && c == '\'')) in = In::kCode;
        break;
      case In::kMultiString:
      case In::kMultiLiteral: {
        if (multi && c == '\\') {
          escaped = true;
          break;
        }
        const char q = multi ? '"' : '\'';
        if (c != static_cast<unsigned char>(q)) break;
        // Three quotes end the string; up to two more before them belong to it.
        const std::size_t n = run_of(i, q);
        if (n >= 3) in = In::kCode;
        i += n - 1;
        column += static_cast<std::uint32_t>(n - 1);
        break;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

Config parse_config(std::string_view text, std::string source, std::string base_dir) {
  fs::path base = base_dir.empty() ? fs::current_path() : fs::absolute(base_dir);
  ParseContext ctx(source, base.lexically_normal());

  if (std::optional<ConfigError> error = check_non_ascii(text, source)) throw ConfigLoadError({std::move(*error)});
  // check_non_ascii follows TOML's grammar, not toml++'s error recovery, which reads some
  // invalid values past a quote ("e=0[[\"н"). So toml++ first reads a copy in which every
  // non-ASCII character is an ASCII '?' (one character for one: positions stay right): if
  // that copy is not valid TOML, neither is the file, and toml++ never sees the original's
  // non-ASCII text outside a string or a comment.
  if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    std::string probe;
    probe.reserve(text.size());
    for (const char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x80) {
        probe += c;
      } else if ((u & 0xC0) != 0x80) {
        probe += '?';  // the lead byte of a character; its continuation bytes are dropped
      }
    }
    try {
      (void)toml::parse(probe, std::string_view(source));
    } catch (const toml::parse_error& e) {
      throw ConfigLoadError({ConfigError{source, static_cast<std::uint32_t>(e.source().begin.line),
                                         static_cast<std::uint32_t>(e.source().begin.column), {},
                                         std::string(e.description()) +
                                             " (non-ASCII characters are allowed only in strings and comments)"}});
    }
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
  config_detail::apply_rows(ctx, root, "", kRootKeys, config);
  if (!root.contains("instances")) ctx.error(root.source(), "instances", std::string(kNoInstances));
  check_tls(ctx, root, config.gateway.tls);

  std::vector<ConfigError> errors = ctx.take_errors();
  if (!errors.empty()) throw ConfigLoadError(std::move(errors));
  return config;
}

namespace {

template <class Target>
void diff_rows(std::span<const KeyRow<Target>> rows, const Target& a, const Target& b, const std::string& prefix,
               std::vector<ConfigChange>& out) {
  for (const auto& row : rows) {
    if (!row.same(a, b)) {
      out.push_back({join_key(prefix, row.name), "changed", row.reload == Reload::kRestart});
    }
  }
}

}  // namespace

template <class Target>
void keep_restart_keys(std::span<const KeyRow<Target>> rows, const Target& running, Target& next) {
  for (const auto& row : rows) {
    if (row.reload == Reload::kRestart) row.copy(next, running);
  }
}

Config merge_live(const Config& running, const Config& next) {
  Config merged = next;
  keep_restart_keys<GatewayConfig>(kGatewayKeys, running.gateway, merged.gateway);
  keep_restart_keys<MetricsConfig>(kMetricsKeys, running.metrics, merged.metrics);
  for (auto& instance : merged.instances) {
    for (const auto& old_instance : running.instances) {
      if (old_instance.name == instance.name) keep_restart_keys<InstanceConfig>(kInstanceKeys, old_instance, instance);
    }
  }
  return merged;
}

std::vector<ConfigChange> diff_config(const Config& running, const Config& next) {
  std::vector<ConfigChange> changes;
  diff_rows<GatewayConfig>(kGatewayKeys, running.gateway, next.gateway, "gateway", changes);
  diff_rows<MetricsConfig>(kMetricsKeys, running.metrics, next.metrics, "metrics", changes);
  auto find = [](const std::vector<InstanceConfig>& list, const std::string& name) -> const InstanceConfig* {
    for (const auto& i : list) {
      if (i.name == name) return &i;
    }
    return nullptr;
  };
  for (const auto& old_instance : running.instances) {
    const std::string prefix = join_key("instances", old_instance.name);
    if (const InstanceConfig* n = find(next.instances, old_instance.name)) {
      diff_rows<InstanceConfig>(kInstanceKeys, old_instance, *n, prefix, changes);
    } else {
      changes.push_back({prefix, "removed", false});
    }
  }
  for (const auto& new_instance : next.instances) {
    if (find(running.instances, new_instance.name) == nullptr) {
      changes.push_back({join_key("instances", new_instance.name), "added", false});
    }
  }
  return changes;
}

}  // namespace pgnap::daemon
