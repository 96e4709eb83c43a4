// Private to the config loader: the machinery behind the key tables of
// config/schema.cpp. A table is a list of rows, one per TOML key: its name, whether it
// is required, and how its value is read (type and bounds) into which struct member. The
// default is whatever the struct's initializer says, because a key that is absent is simply
// never assigned. (Redis src/config.c `createIntConfig(...)` rows; PgBouncer's CF_ABS table.)
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/config.h"

namespace pgnap::config::detail {

// Collects every error of one parse, so the user sees all of them at once.
class ParseContext {
 public:
  ParseContext(std::string file, std::filesystem::path base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  void error(const toml::source_region& where, std::string key, std::string message);
  [[nodiscard]] const std::filesystem::path& base_dir() const { return base_dir_; }
  // All errors so far, in file order.
  [[nodiscard]] std::vector<ConfigError> take_errors();

 private:
  std::string file_;
  std::filesystem::path base_dir_;
  std::vector<ConfigError> errors_;
};

// "a string", "an integer", ...: what the user wrote, for "expected X, got Y".
[[nodiscard]] std::string type_name(const toml::node& node);
// The value as the user wrote it: "10" (quoted) for strings, 10 for numbers, else type_name.
[[nodiscard]] std::string describe_value(const toml::node& node);
// `s` in double quotes, with quotes, backslashes and control characters escaped.
[[nodiscard]] std::string quote(std::string_view s);
// Appends `name` to a dotted key, quoting it as TOML would when it is not a bare key.
[[nodiscard]] std::string join_key(std::string_view prefix, std::string_view name);
// `unknown key "x"; valid keys here: a, b, c`
[[nodiscard]] std::string unknown_key_message(std::string_view name, std::span<const std::string_view> valid);
// The node's string, or nullptr after reporting "expected <expected>, got <its type>".
[[nodiscard]] const std::string* as_string(ParseContext& ctx, const toml::node& node, const std::string& key,
                                           std::string_view expected = "a string");
// lexically_normal, without the trailing separator it keeps for "dir/".
[[nodiscard]] std::filesystem::path normal_path(const std::filesystem::path& path);

enum class Presence { kOptional, kRequired };
// Whether a running gateway applies a change of the key on SIGHUP, or needs a restart.
enum class Reload { kLive, kRestart };

template <class Target>
struct KeyRow {
  std::string_view name;
  Presence presence = Presence::kOptional;
  // Reads `node` (found under the dotted `key`) into `target`, or reports why it cannot.
  std::function<void(ParseContext&, const toml::node& node, const std::string& key, Target&)> set;
  Reload reload = Reload::kLive;
  // Whether two targets hold the same value for this key.
  std::function<bool(const Target&, const Target&)> same;
  // Copies this key's value from `from` to `to`.
  std::function<void(Target& to, const Target& from)> copy;
  // Only for a sub-table whose keys reload differently (sub_table() below): the reload diff
  // and merge descend into its own rows instead of taking the table as one key.
  std::function<void(const Target&, const Target&, const std::string& dotted, std::vector<ConfigChange>&)> diff;
  std::function<void(Target& next, const Target& running)> keep_restart;
};

// One row: `reader` checks the node's type and bounds and returns the value, or reports an
// error and returns nullopt (the member then keeps its default; the parse fails anyway).
template <class Target, class Field, class Reader>
KeyRow<Target> key(std::string_view name, Field Target::*field, Reader reader, Presence presence = Presence::kOptional,
                   Reload reload = Reload::kLive) {
  return KeyRow<Target>{name,
                        presence,
                        [field, reader](ParseContext& ctx, const toml::node& node, const std::string& dotted,
                                        Target& target) {
                          if (auto value = reader(ctx, node, dotted)) {
                            target.*field = static_cast<Field>(std::move(*value));
                          }
                        },
                        reload,
                        [field](const Target& a, const Target& b) { return a.*field == b.*field; },
                        [field](Target& to, const Target& from) { to.*field = from.*field; },
                        {},
                        {}};
}

// Applies `table` to `target` row by row: unknown keys and missing required keys are errors.
template <class Target>
void apply_rows(ParseContext& ctx, const toml::table& table, std::string_view prefix,
                std::span<const KeyRow<std::type_identity_t<Target>>> rows, Target& target) {
  std::vector<std::string_view> names;
  names.reserve(rows.size());
  for (const auto& row : rows) names.push_back(row.name);

  for (auto&& [name, node] : table) {
    std::string dotted = join_key(prefix, name.str());
    const KeyRow<Target>* row = nullptr;
    for (const auto& candidate : rows) {
      if (candidate.name == name.str()) row = &candidate;
    }
    if (row == nullptr) {
      ctx.error(name.source(), std::move(dotted), unknown_key_message(name.str(), names));
      continue;
    }
    row->set(ctx, node, dotted, target);
  }
  for (const auto& row : rows) {
    if (row.presence == Presence::kRequired && !table.contains(row.name)) {
      ctx.error(table.source(), join_key(prefix, row.name), "required key " + quote(row.name) + " is missing");
    }
  }
}

// ---- Readers: one per kind of value. Each returns the value or reports an error. ----------

struct StringValue {
  bool allow_empty = true;
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// One of a fixed set of words, e.g. log levels.
struct ChoiceValue {
  std::span<const std::string_view> choices;
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// A non-empty array of distinct words, each one of `choices` (e.g. authentication methods).
// On error it still returns the words it understood (perhaps none), so the checks across
// keys do not report phantom problems.
struct ChoiceListValue {
  std::span<const std::string_view> choices;
  std::optional<std::vector<std::string>> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// A filesystem path; relative paths resolve against the config file's directory.
struct PathValue {
  bool allow_empty = false;
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

struct BoolValue {
  std::optional<bool> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// An integer in [min, max].
struct IntegerValue {
  std::int64_t min;
  std::int64_t max;
  std::optional<std::int64_t> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// A finite number (TOML integer or float) >= min, or > min when `exclusive`.
struct NumberValue {
  double min;
  bool exclusive = false;
  std::optional<double> operator()(ParseContext&, const toml::node&, const std::string&) const;
};
inline NumberValue at_least(double min) { return NumberValue{min, false}; }
inline NumberValue greater_than(double min) { return NumberValue{min, true}; }

// A duration string ("250ms", "30s", "10m", "2h", "1d") in [min, max].
struct DurationValue {
  Duration min;
  Duration max;
  std::optional<Duration> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// An ISO 4217 currency code: three upper-case letters.
struct CurrencyValue {
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// [gateway].listen: one address or an array of them.
struct ListenListValue {
  std::optional<std::vector<ListenAddress>> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// [metrics].listen: "" or a TCP host:port; stored in canonical form.
struct MetricsListenValue {
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// An instance's address: host:port, a socket directory or a socket file.
struct BackendAddressValue {
  std::optional<BackendAddress> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// A non-empty array of distinct, non-empty database names. On error it still returns the
// names it understood, so the routing checks do not report phantom conflicts.
struct DatabaseListValue {
  std::optional<std::vector<std::string>> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// An array (perhaps empty) of distinct custom setting names, each a class and a name joined by
// dots, as PostgreSQL takes them (`app.tenant_id`): letters, digits, '_' and '$' in each part.
struct CustomSettingListValue {
  std::optional<std::vector<std::string>> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// A command as an argument array: ["pg_ctl", "start", ...]. At least the program; no empty
// strings. Run without a shell.
struct CommandValue {
  std::optional<std::vector<std::string>> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// A table of environment variables: NAME = "value".
struct EnvValue {
  std::optional<std::vector<std::pair<std::string, std::string>>> operator()(ParseContext&, const toml::node&,
                                                                             const std::string&) const;
};

// A size in bytes: an integer, or a string with a unit as postgresql.conf writes them
// ("64kB", "16MB", "1GB", powers of 1024; "64KiB", "16MiB", "1GiB" the same), within [min, max].
struct SizeValue {
  std::uint64_t min;
  std::uint64_t max;
  std::optional<std::uint64_t> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// ---- [instances.NAME.wake] and [instances.NAME.maintenance] (config/wake_values.cpp) -------

// An ignore rule's address: "unix", an IP address or a CIDR (config/wake_rules.h).
struct AddressPatternValue {
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// wake.ignore: an array (perhaps empty) of rules, each a table read with `rows` that sets at
// least one of them. Rules are named "KEY[0]", "KEY[1]", ... in errors.
struct IgnoreRuleListValue {
  std::span<const KeyRow<WakeIgnoreRule>> rows;
  std::optional<std::vector<WakeIgnoreRule>> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// wake.awake_during: an array (perhaps empty) of keep-warm windows (config/schedule.h),
// kept as written.
struct WindowListValue {
  std::optional<std::vector<std::string>> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// wake.time_zone: an IANA time zone name the system's tzdata knows.
struct TimeZoneValue {
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// maintenance.at: "" (not set) or a time of day "HH:MM".
struct TimeOfDayValue {
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// [gateway].control_socket: "" (none) or an absolute path a Unix socket can be bound to
// (config/address.cpp).
struct SocketPathValue {
  std::optional<std::string> operator()(ParseContext&, const toml::node&, const std::string&) const;
};

// A sub-table, read with its own rows into a default-constructed `Sub`.
template <class Sub>
struct TableValue {
  std::span<const KeyRow<Sub>> rows;
  std::optional<Sub> operator()(ParseContext& ctx, const toml::node& node, const std::string& dotted) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      ctx.error(node.source(), dotted, "expected a table, got " + type_name(node));
      return std::nullopt;
    }
    Sub sub{};
    apply_rows(ctx, *table, dotted, rows, sub);
    return sub;
  }
};

// ---- What a reload does with the rows (config/reload.cpp) ---------------------------------

// The keys whose values differ between `a` and `b`, under the dotted `prefix`, in row order.
template <class Target>
void diff_rows(std::span<const KeyRow<std::type_identity_t<Target>>> rows, const Target& a, const Target& b,
               const std::string& prefix, std::vector<ConfigChange>& out) {
  for (const auto& row : rows) {
    if (row.same(a, b)) continue;
    if (row.diff) {
      row.diff(a, b, join_key(prefix, row.name), out);
    } else {
      out.push_back({join_key(prefix, row.name), "changed", row.reload == Reload::kRestart});
    }
  }
}

// The restart-only keys of `next` take their `running` values back.
template <class Target>
void keep_restart_keys(std::span<const KeyRow<std::type_identity_t<Target>>> rows, const Target& running,
                       Target& next) {
  for (const auto& row : rows) {
    if (row.reload == Reload::kRestart) {
      row.copy(next, running);
    } else if (row.keep_restart) {
      row.keep_restart(next, running);
    }
  }
}

// A sub-table row whose keys keep their own reload classes (a table read whole, such as a
// backend's, is one key(..., TableValue) row with one class): a reload names each changed
// key of it, and keeps its restart-only keys as they run.
template <class Target, class Sub>
KeyRow<Target> sub_table(std::string_view name, Sub Target::*field, std::span<const KeyRow<Sub>> rows) {
  KeyRow<Target> row = key(name, field, TableValue<Sub>{rows});
  row.diff = [field, rows](const Target& a, const Target& b, const std::string& dotted,
                           std::vector<ConfigChange>& out) { diff_rows<Sub>(rows, a.*field, b.*field, dotted, out); };
  row.keep_restart = [field, rows](Target& next, const Target& running) {
    keep_restart_keys<Sub>(rows, running.*field, next.*field);
  };
  return row;
}

// ---- Address grammar (config/address.cpp), shared with the schema's checks. ---------------

// Parses "host:port" / "[v6]:port" with a port in [min_port, 65535]. On failure returns
// nullopt and sets `why` to what was expected.
[[nodiscard]] std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(
    std::string_view text, std::uint16_t min_port, std::string& why);
[[nodiscard]] std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string& why);
[[nodiscard]] std::optional<BackendAddress> parse_backend_address(std::string_view text, std::string& why);

// `host:port`, bracketing IPv6 literals.
[[nodiscard]] std::string format_host_port(std::string_view host, std::uint16_t port);

// ---- The tables a reload reads (defined in config/schema.cpp with the others) -------------

extern const std::vector<KeyRow<GatewayConfig>> kGatewayKeys;
extern const std::vector<KeyRow<MetricsConfig>> kMetricsKeys;
extern const std::vector<KeyRow<InstanceConfig>> kInstanceKeys;
// [instances.NAME.auth], which `pgnap check` also reads (the keys passthrough ignores).
extern const std::vector<KeyRow<AuthConfig>> kAuthKeys;

}  // namespace pgnap::config::detail
