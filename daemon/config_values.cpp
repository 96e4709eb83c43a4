// The readers of config_keys.h: each kind of value the schema knows (strings, paths,
// numbers, durations, addresses), its type check, its bounds and its error message.
#include <arpa/inet.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <tuple>

#include "daemon/config_keys.h"

namespace pgnap::daemon::config_detail {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDurationForms = R"(("250ms", "30s", "10m", "2h"))";
constexpr std::string_view kSocketPrefix = ".s.PGSQL.";
constexpr std::string_view kListenForm =
    R"(host:port (e.g. "127.0.0.1:6432") or a Unix socket path (e.g. "/run/pgnap/.s.PGSQL.6432"))";
constexpr std::string_view kBackendForm =
    R"(host:port (e.g. "127.0.0.1:5432") or an absolute Unix socket directory )"
    R"((e.g. "/var/run/postgresql"))";
constexpr std::string_view kMetricsForm = R"(host:port (e.g. "127.0.0.1:9932") or "" to disable)";

std::string format_number(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc{} ? std::string(buffer, end) : std::to_string(value);
}

// A TOML float as written: 10.0 stays "10.0", so "expected an integer, got 10.0" makes sense.
std::string format_float(double value) {
  std::string text = format_number(value);
  if (text.find_first_of(".eni") == std::string::npos) text += ".0";
  return text;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A port number of at most 5 digits in [min_port, 65535].
std::optional<std::uint16_t> parse_port(std::string_view text, std::uint16_t min_port) {
  if (!all_digits(text) || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value < min_port || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// RFC 1123 host names, plus "_" (container and compose service names use it).
bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_';
      if (!ok) return false;
    }
    start = dot + 1;
  }
  return true;
}

// The kernel's limit for a Unix socket path (sun_path, including its terminating NUL).
constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

std::string socket_too_long(std::string_view path) {
  return "the Unix socket path " + quote(path) + " is too long (" + std::to_string(path.size()) +
         " bytes; the kernel allows at most " + std::to_string(kMaxSocketPath) + ")";
}

// lexically_normal, without the trailing separator it keeps for "dir/".
fs::path normal(const fs::path& path) {
  fs::path result = path.lexically_normal();
  if (!result.has_filename() && result.has_relative_path()) result = result.parent_path();
  return result;
}

const std::string* as_string(ParseContext& ctx, const toml::node& node, const std::string& key,
                             std::string_view expected = "a string") {
  if (const auto* value = node.as_string()) return &value->get();
  ctx.error(node.source(), key, "expected " + std::string(expected) + ", got " + type_name(node));
  return nullptr;
}

std::string describe_duration_bounds(Duration min, Duration max) {
  if (min == Duration(1)) return "greater than 0 and at most " + format_duration(max);
  if (min == Duration(0)) return "of at most " + format_duration(max);
  return "between " + format_duration(min) + " and " + format_duration(max);
}

}  // namespace

void ParseContext::error(const toml::source_region& where, std::string key, std::string message) {
  errors_.push_back(ConfigError{file_, static_cast<std::uint32_t>(where.begin.line),
                                static_cast<std::uint32_t>(where.begin.column), std::move(key),
                                std::move(message)});
}

std::vector<ConfigError> ParseContext::take_errors() {
  // File order; errors without a position (whole-file checks) last.
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    auto rank = [](const ConfigError& e) { return std::tuple(e.line == 0, e.line, e.column); };
    return rank(a) < rank(b);
  });
  return std::move(errors_);
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string describe_value(const toml::node& node) {
  if (const auto* s = node.as_string()) return quote(s->get());
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* f = node.as_floating_point()) return format_float(f->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  return type_name(node);
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string join_key(std::string_view prefix, std::string_view name) {
  bool bare = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  std::string part = bare ? std::string(name) : quote(name);
  return prefix.empty() ? part : std::string(prefix) + "." + part;
}

std::string unknown_key_message(std::string_view name, std::span<const std::string_view> valid) {
  std::string message = "unknown key " + quote(name) + "; valid keys here: ";
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if (i > 0) message += ", ";
    message += valid[i];
  }
  return message;
}

std::optional<std::string> StringValue::operator()(ParseContext& ctx, const toml::node& node,
                                                   const std::string& key) const {
  const std::string* s = as_string(ctx, node, key);
  if (s == nullptr) return std::nullopt;
  if (s->empty() && !allow_empty) {
    ctx.error(node.source(), key, "expected a non-empty string, got \"\"");
    return std::nullopt;
  }
  return *s;
}

std::optional<std::string> ChoiceValue::operator()(ParseContext& ctx, const toml::node& node,
                                                   const std::string& key) const {
  const std::string* s = as_string(ctx, node, key);
  if (s == nullptr) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *s) != choices.end()) return *s;
  std::string list;
  for (std::string_view choice : choices) list += (list.empty() ? "" : ", ") + quote(choice);
  ctx.error(node.source(), key, "expected one of " + list + ", got " + quote(*s));
  return std::nullopt;
}

std::optional<std::string> PathValue::operator()(ParseContext& ctx, const toml::node& node,
                                                 const std::string& key) const {
  const std::string* s = as_string(ctx, node, key, "a path (a string)");
  if (s == nullptr) return std::nullopt;
  if (s->empty()) {
    if (allow_empty) return std::string();
    ctx.error(node.source(), key, "expected a path, got \"\"");
    return std::nullopt;
  }
  fs::path path(*s);
  if (path.is_relative()) path = ctx.base_dir() / path;
  return normal(path).string();
}

std::optional<bool> BoolValue::operator()(ParseContext& ctx, const toml::node& node,
                                          const std::string& key) const {
  if (const auto* b = node.as_boolean()) return b->get();
  ctx.error(node.source(), key, "expected true or false, got " + describe_value(node));
  return std::nullopt;
}

std::optional<std::int64_t> IntegerValue::operator()(ParseContext& ctx, const toml::node& node,
                                                     const std::string& key) const {
  const auto* i = node.as_integer();
  if (i != nullptr && i->get() >= min && i->get() <= max) return i->get();
  ctx.error(node.source(), key,
            "expected an integer between " + std::to_string(min) + " and " + std::to_string(max) +
                ", got " + describe_value(node));
  return std::nullopt;
}

std::optional<double> NumberValue::operator()(ParseContext& ctx, const toml::node& node,
                                              const std::string& key) const {
  std::optional<double> value;
  if (const auto* i = node.as_integer()) value = static_cast<double>(i->get());
  if (const auto* f = node.as_floating_point()) value = f->get();
  std::string expected = std::string(exclusive ? "> " : ">= ") + format_number(min);
  if (!value || !std::isfinite(*value) || (exclusive ? *value <= min : *value < min)) {
    ctx.error(node.source(), key,
              "expected a number " + expected + ", got " + describe_value(node));
    return std::nullopt;
  }
  return value;
}

std::optional<Duration> DurationValue::operator()(ParseContext& ctx, const toml::node& node,
                                                  const std::string& key) const {
  const auto* s = node.as_string();
  std::optional<Duration> value = s != nullptr ? parse_duration(s->get()) : std::nullopt;
  if (!value) {
    ctx.error(node.source(), key,
              "expected a duration with a unit " + std::string(kDurationForms) + ", got " +
                  describe_value(node));
    return std::nullopt;
  }
  if (*value < min || *value > max) {
    ctx.error(node.source(), key,
              "expected a duration " + describe_duration_bounds(min, max) + ", got " +
                  describe_value(node));
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> CurrencyValue::operator()(ParseContext& ctx, const toml::node& node,
                                                     const std::string& key) const {
  const std::string* s = as_string(ctx, node, key);
  if (s == nullptr) return std::nullopt;
  if (s->size() == 3 &&
      std::all_of(s->begin(), s->end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return *s;
  }
  ctx.error(node.source(), key,
            "expected a currency code of three upper-case letters (ISO 4217, e.g. \"USD\", "
            "\"EUR\"), got " +
                quote(*s));
  return std::nullopt;
}

std::optional<std::vector<ListenAddress>> ListenListValue::operator()(
    ParseContext& ctx, const toml::node& node, const std::string& key) const {
  std::vector<const toml::node*> items;
  if (node.is_string()) {
    items.push_back(&node);
  } else if (const auto* array = node.as_array()) {
    for (const toml::node& item : *array) items.push_back(&item);
    if (items.empty()) {
      ctx.error(node.source(), key, "expected at least one listen address, got an empty array");
      return std::nullopt;
    }
  } else {
    ctx.error(node.source(), key,
              "expected a listen address or an array of them (e.g. [\"127.0.0.1:6432\"]), got " +
                  type_name(node));
    return std::nullopt;
  }

  std::vector<ListenAddress> result;
  std::set<std::string> seen;
  bool ok = true;
  for (const toml::node* item : items) {
    const std::string* text = as_string(ctx, *item, key, "a listen address (a string)");
    if (text == nullptr) {
      ok = false;
      continue;
    }
    std::string why;
    std::optional<ListenAddress> address = parse_listen_address(*text, why);
    if (!address) {
      ctx.error(item->source(), key, why);
      ok = false;
    } else if (!seen.insert(address->to_string()).second) {
      ctx.error(item->source(), key,
                "listen address " + quote(address->to_string()) + " is given twice");
      ok = false;
    } else {
      result.push_back(std::move(*address));
    }
  }
  if (!ok) return std::nullopt;
  return result;
}

std::optional<std::string> MetricsListenValue::operator()(ParseContext& ctx, const toml::node& node,
                                                          const std::string& key) const {
  const std::string* text = as_string(ctx, node, key);
  if (text == nullptr) return std::nullopt;
  if (text->empty()) return std::string();
  std::string why;
  auto host_port = parse_host_port(*text, 0, why);
  if (!host_port) {
    ctx.error(
        node.source(), key,
        why.empty() ? "expected " + std::string(kMetricsForm) + ", got " + quote(*text) : why);
    return std::nullopt;
  }
  return format_host_port(host_port->first, host_port->second);
}

std::optional<BackendAddress> BackendAddressValue::operator()(ParseContext& ctx,
                                                              const toml::node& node,
                                                              const std::string& key) const {
  const std::string* text = as_string(ctx, node, key);
  if (text == nullptr) return std::nullopt;
  std::string why;
  std::optional<BackendAddress> address = parse_backend_address(*text, why);
  if (!address) ctx.error(node.source(), key, why);
  return address;
}

std::optional<std::vector<std::string>> DatabaseListValue::operator()(
    ParseContext& ctx, const toml::node& node, const std::string& key) const {
  const auto* array = node.as_array();
  std::vector<std::string> names;
  if (array == nullptr) {
    ctx.error(node.source(), key,
              "expected an array of database names (e.g. [\"app\"], or [\"*\"] for any), got " +
                  type_name(node));
    return names;
  }
  if (array->empty()) {
    ctx.error(node.source(), key,
              "expected at least one database name (or \"*\" for any), got an empty array");
    return names;
  }
  for (const toml::node& item : *array) {
    const auto* name = item.as_string();
    if (name == nullptr || name->get().empty()) {
      ctx.error(item.source(), key,
                "expected a database name (a non-empty string), got " + describe_value(item));
    } else if (std::find(names.begin(), names.end(), name->get()) != names.end()) {
      ctx.error(item.source(), key, "database " + quote(name->get()) + " is listed twice");
    } else {
      names.push_back(name->get());
    }
  }
  return names;
}

std::optional<std::uint64_t> SizeValue::operator()(ParseContext& ctx, const toml::node& node,
                                                   const std::string& key) const {
  const std::string expected =
      "expected a size: bytes as an integer, or a string with PostgreSQL's units (\"64kB\", \"16MB\", "
      "\"1GB\"; 1kB = 1024 bytes)";
  std::optional<std::uint64_t> bytes;
  if (const auto* i = node.as_integer()) {
    if (i->get() >= 0) bytes = static_cast<std::uint64_t>(i->get());
  } else if (const auto* s = node.as_string()) {
    const std::string& text = s->get();
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    // As postgresql.conf: spaces may separate the number and its unit.
    std::size_t unit_at = digits;
    while (unit_at < text.size() && text[unit_at] == ' ') ++unit_at;
    const std::string unit = text.substr(unit_at);
    // As postgresql.conf: kB, MB and GB are powers of 1024 (and so are KiB, MiB, GiB).
    static const std::pair<const char*, std::uint64_t> kUnits[] = {
        {"", 1},       {"B", 1},           {"kB", 1024ull},     {"MB", 1024ull * 1024}, {"GB", 1024ull * 1024 * 1024},
        {"KiB", 1024ull}, {"MiB", 1024ull * 1024}, {"GiB", 1024ull * 1024 * 1024}};
    // At most 12 digits, so the number fits; the product is checked before it is formed.
    if (digits > 0 && digits <= 12) {
      const std::uint64_t number = std::stoull(text.substr(0, digits));
      for (const auto& [name, factor] : kUnits) {
        if (unit != name) continue;
        if (number > std::numeric_limits<std::uint64_t>::max() / factor) {
          ctx.error(node.source(), key,
                    "expected a size between " + std::to_string(min) + " and " + std::to_string(max) +
                        " bytes, got " + describe_value(node));
          return std::nullopt;
        }
        bytes = number * factor;
      }
    }
  }
  if (!bytes) {
    ctx.error(node.source(), key, expected + ", got " + describe_value(node));
    return std::nullopt;
  }
  if (*bytes < min || *bytes > max) {
    ctx.error(node.source(), key,
              "expected a size between " + std::to_string(min) + " and " + std::to_string(max) + " bytes, got " +
                  std::to_string(*bytes));
    return std::nullopt;
  }
  return bytes;
}

std::optional<std::vector<std::string>> CommandValue::operator()(ParseContext& ctx, const toml::node& node,
                                                                 const std::string& key) const {
  const auto* array = node.as_array();
  if (array == nullptr) {
    ctx.error(node.source(), key,
              "expected a command as an array of strings (e.g. [\"/usr/bin/docker\", \"start\", \"db\"]; "
              "for a shell, [\"sh\", \"-c\", \"...\"]), got " + type_name(node));
    return std::nullopt;
  }
  if (array->empty()) {
    ctx.error(node.source(), key, "expected a command (at least the program to run), got an empty array");
    return std::nullopt;
  }
  std::vector<std::string> argv;
  bool ok = true;
  for (const toml::node& item : *array) {
    const auto* s = item.as_string();
    if (s == nullptr || s->get().empty()) {
      ctx.error(item.source(), key, "expected a non-empty string in the command, got " + describe_value(item));
      ok = false;
    } else {
      argv.push_back(s->get());
    }
  }
  if (!ok) return std::nullopt;
  return argv;
}

std::optional<std::vector<std::pair<std::string, std::string>>> EnvValue::operator()(ParseContext& ctx,
                                                                                      const toml::node& node,
                                                                                      const std::string& key) const {
  const auto* table = node.as_table();
  if (table == nullptr) {
    ctx.error(node.source(), key, "expected a table of environment variables (NAME = \"value\"), got " +
                                      type_name(node));
    return std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> env;
  for (auto&& [name, value] : *table) {
    const std::string n(name.str());
    const bool valid_name = !n.empty() && n.find('=') == std::string::npos && n.find('\0') == std::string::npos;
    const auto* s = value.as_string();
    if (!valid_name) {
      ctx.error(name.source(), join_key(key, n), "invalid environment variable name " + quote(n));
    } else if (s == nullptr) {
      ctx.error(value.source(), join_key(key, n), "expected a string, got " + type_name(value));
    } else {
      env.emplace_back(n, s->get());
    }
  }
  return env;
}

// ---- Address grammar ---------------------------------------------------------------------

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view text,
                                                                     std::uint16_t min_port,
                                                                     std::string& why) {
  why.clear();
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    bracketed = true;
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    if (text.find(':') != colon) {
      why = "expected an IPv6 address in brackets, e.g. \"[::1]:6432\", got " + quote(text);
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return std::nullopt;

  std::string host_string(host);
  unsigned char binary[16];
  if (bracketed) {
    if (inet_pton(AF_INET6, host_string.c_str(), binary) != 1) {
      why = "expected a valid IPv6 address in brackets, got " + quote(text);
      return std::nullopt;
    }
  } else if (std::all_of(host.begin(), host.end(),
                         [](char c) { return c == '.' || (c >= '0' && c <= '9'); })) {
    if (inet_pton(AF_INET, host_string.c_str(), binary) != 1) {
      why = "expected a valid IPv4 address, got " + quote(host) + " in " + quote(text);
      return std::nullopt;
    }
  } else if (!valid_host_name(host)) {
    why = "expected a host name, an IPv4 address or an [IPv6] address before the port, got " +
          quote(host) + " in " + quote(text);
    return std::nullopt;
  }

  std::optional<std::uint16_t> port_number = parse_port(port, min_port);
  if (!port_number) {
    why = "expected a port between " + std::to_string(min_port) + " and 65535, got " + quote(port) +
          " in " + quote(text);
    return std::nullopt;
  }
  return std::pair{std::move(host_string), *port_number};
}

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string& why) {
  if (text.find('/') == std::string_view::npos) {
    auto host_port = parse_host_port(text, 0, why);
    if (!host_port) {
      if (why.empty()) why = "expected " + std::string(kListenForm) + ", got " + quote(text);
      return std::nullopt;
    }
    return ListenAddress{ListenAddress::Kind::kTcp, std::move(host_port->first), host_port->second,
                         ""};
  }
  fs::path path(text);
  if (path.is_relative()) {
    why = "expected an absolute Unix socket path (e.g. \"/run/pgnap/.s.PGSQL.6432\"), got " +
          quote(text);
    return std::nullopt;
  }
  path = normal(path);
  std::string name = path.filename().string();
  std::optional<std::uint16_t> port;
  if (name.starts_with(kSocketPrefix)) {
    port = parse_port(std::string_view(name).substr(kSocketPrefix.size()), 1);
  }
  if (!port) {
    why =
        "expected a Unix socket path whose file name is \".s.PGSQL.<port>\" (the name libpq "
        "looks for, e.g. \"/run/pgnap/.s.PGSQL.6432\"), got " +
        quote(text);
    return std::nullopt;
  }
  if (path.string().size() > kMaxSocketPath) {
    why = socket_too_long(path.string());
    return std::nullopt;
  }
  return ListenAddress{ListenAddress::Kind::kUnix, "", *port, path.string()};
}

std::optional<BackendAddress> parse_backend_address(std::string_view text, std::string& why) {
  if (text.find('/') == std::string_view::npos) {
    auto host_port = parse_host_port(text, 1, why);
    if (!host_port) {
      if (why.empty()) why = "expected " + std::string(kBackendForm) + ", got " + quote(text);
      return std::nullopt;
    }
    return BackendAddress{BackendAddress::Kind::kTcp, std::move(host_port->first),
                          host_port->second, ""};
  }
  fs::path path(text);
  if (path.is_relative()) {
    why = "expected " + std::string(kBackendForm) + "; a socket directory must be absolute, got " +
          quote(text);
    return std::nullopt;
  }
  path = normal(path);
  BackendAddress address{BackendAddress::Kind::kUnix, "", 5432, path.string()};
  std::string name = path.filename().string();
  if (name.starts_with(kSocketPrefix)) {
    std::optional<std::uint16_t> port =
        parse_port(std::string_view(name).substr(kSocketPrefix.size()), 1);
    if (!port) {
      why =
          "expected a socket file named \".s.PGSQL.<port>\" with a port between 1 and 65535, got " +
          quote(text);
      return std::nullopt;
    }
    address.port = *port;
    address.socket_dir = path.parent_path().string();
  }
  if (address.socket_path().size() > kMaxSocketPath) {
    why = socket_too_long(address.socket_path());
    return std::nullopt;
  }
  return address;
}

std::string format_host_port(std::string_view host, std::uint16_t port) {
  std::string result =
      host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" : std::string(host);
  return result + ":" + std::to_string(port);
}

}  // namespace pgnap::daemon::config_detail
