// The readers of config/keys.h: each kind of value the schema knows (strings, paths,
// numbers, durations, sizes, commands), its type check, its bounds and its error message.
// Addresses have a grammar of their own: config/address.cpp.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "config/keys.h"

namespace pgnap::config::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDurationForms = R"(("250ms", "30s", "10m", "2h"))";

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

std::string describe_duration_bounds(Duration min, Duration max) {
  if (min == Duration(1)) return "greater than 0 and at most " + format_duration(max);
  if (min == Duration(0)) return "of at most " + format_duration(max);
  return "between " + format_duration(min) + " and " + format_duration(max);
}

}  // namespace

fs::path normal_path(const fs::path& path) {
  fs::path result = path.lexically_normal();
  if (!result.has_filename() && result.has_relative_path()) result = result.parent_path();
  return result;
}

const std::string* as_string(ParseContext& ctx, const toml::node& node, const std::string& key,
                             std::string_view expected) {
  if (const auto* value = node.as_string()) return &value->get();
  ctx.error(node.source(), key, "expected " + std::string(expected) + ", got " + type_name(node));
  return nullptr;
}

void ParseContext::error(const toml::source_region& where, std::string key, std::string message) {
  errors_.push_back(ConfigError{file_, static_cast<std::uint32_t>(where.begin.line),
                                static_cast<std::uint32_t>(where.begin.column), std::move(key), std::move(message)});
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
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
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
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
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

std::optional<std::vector<std::string>> ChoiceListValue::operator()(ParseContext& ctx, const toml::node& node,
                                                                    const std::string& key) const {
  std::string list;
  for (std::string_view choice : choices) list += (list.empty() ? "" : ", ") + quote(choice);
  std::vector<std::string> words;
  const auto* array = node.as_array();
  if (array == nullptr) {
    ctx.error(node.source(), key,
              "expected an array of words from " + list + " (e.g. [" + quote(choices.front()) + "]), got " +
                  type_name(node));
    return words;
  }
  if (array->empty()) {
    ctx.error(node.source(), key, "expected at least one of " + list + ", got an empty array");
    return words;
  }
  for (const toml::node& item : *array) {
    const auto* word = item.as_string();
    if (word == nullptr || std::find(choices.begin(), choices.end(), word->get()) == choices.end()) {
      ctx.error(item.source(), key, "expected one of " + list + ", got " + describe_value(item));
    } else if (std::find(words.begin(), words.end(), word->get()) != words.end()) {
      ctx.error(item.source(), key, quote(word->get()) + " is listed twice");
    } else {
      words.push_back(word->get());
    }
  }
  return words;
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
  return normal_path(path).string();
}

std::optional<bool> BoolValue::operator()(ParseContext& ctx, const toml::node& node, const std::string& key) const {
  if (const auto* b = node.as_boolean()) return b->get();
  ctx.error(node.source(), key, "expected true or false, got " + describe_value(node));
  return std::nullopt;
}

std::optional<std::int64_t> IntegerValue::operator()(ParseContext& ctx, const toml::node& node,
                                                     const std::string& key) const {
  const auto* i = node.as_integer();
  if (i != nullptr && i->get() >= min && i->get() <= max) return i->get();
  ctx.error(node.source(), key,
            "expected an integer between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                describe_value(node));
  return std::nullopt;
}

std::optional<double> NumberValue::operator()(ParseContext& ctx, const toml::node& node, const std::string& key) const {
  std::optional<double> value;
  if (const auto* i = node.as_integer()) value = static_cast<double>(i->get());
  if (const auto* f = node.as_floating_point()) value = f->get();
  std::string expected = std::string(exclusive ? "> " : ">= ") + format_number(min);
  if (!value || !std::isfinite(*value) || (exclusive ? *value <= min : *value < min)) {
    ctx.error(node.source(), key, "expected a number " + expected + ", got " + describe_value(node));
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
              "expected a duration with a unit " + std::string(kDurationForms) + ", got " + describe_value(node));
    return std::nullopt;
  }
  if (*value < min || *value > max) {
    ctx.error(node.source(), key,
              "expected a duration " + describe_duration_bounds(min, max) + ", got " + describe_value(node));
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> CurrencyValue::operator()(ParseContext& ctx, const toml::node& node,
                                                     const std::string& key) const {
  const std::string* s = as_string(ctx, node, key);
  if (s == nullptr) return std::nullopt;
  if (s->size() == 3 && std::all_of(s->begin(), s->end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return *s;
  }
  ctx.error(node.source(), key,
            "expected a currency code of three upper-case letters (ISO 4217, e.g. \"USD\", "
            "\"EUR\"), got " +
                quote(*s));
  return std::nullopt;
}

std::optional<std::vector<std::string>> DatabaseListValue::operator()(ParseContext& ctx, const toml::node& node,
                                                                      const std::string& key) const {
  const auto* array = node.as_array();
  std::vector<std::string> names;
  if (array == nullptr) {
    ctx.error(node.source(), key,
              "expected an array of database names (e.g. [\"app\"], or [\"*\"] for any), got " + type_name(node));
    return names;
  }
  if (array->empty()) {
    ctx.error(node.source(), key, "expected at least one database name (or \"*\" for any), got an empty array");
    return names;
  }
  for (const toml::node& item : *array) {
    const auto* name = item.as_string();
    if (name == nullptr || name->get().empty()) {
      ctx.error(item.source(), key, "expected a database name (a non-empty string), got " + describe_value(item));
    } else if (std::find(names.begin(), names.end(), name->get()) != names.end()) {
      ctx.error(item.source(), key, "database " + quote(name->get()) + " is listed twice");
    } else {
      names.push_back(name->get());
    }
  }
  return names;
}

std::optional<std::vector<std::string>> CustomSettingListValue::operator()(ParseContext& ctx, const toml::node& node,
                                                                           const std::string& key) const {
  const auto* array = node.as_array();
  std::vector<std::string> names;
  if (array == nullptr) {
    ctx.error(node.source(), key,
              "expected an array of custom setting names (e.g. [\"app.tenant_id\"]), got " + type_name(node));
    return names;
  }
  auto valid = [](const std::string& name) {
    bool part_empty = true;
    bool dotted = false;
    for (const char c : name) {
      if (c == '.') {
        if (part_empty) return false;
        dotted = true;
        part_empty = true;
      } else if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$') {
        part_empty = false;
      } else {
        return false;
      }
    }
    return dotted && !part_empty;
  };
  for (const toml::node& item : *array) {
    const auto* name = item.as_string();
    if (name == nullptr || !valid(name->get())) {
      ctx.error(item.source(), key,
                "expected a custom setting name (a class and a name joined by a dot, e.g. \"app.tenant_id\"), got " +
                    describe_value(item));
    } else if (std::find(names.begin(), names.end(), name->get()) != names.end()) {
      ctx.error(item.source(), key, "setting " + quote(name->get()) + " is listed twice");
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
    static const std::pair<const char*, std::uint64_t> kUnits[] = {{"", 1},
                                                                   {"B", 1},
                                                                   {"kB", 1024ull},
                                                                   {"MB", 1024ull * 1024},
                                                                   {"GB", 1024ull * 1024 * 1024},
                                                                   {"KiB", 1024ull},
                                                                   {"MiB", 1024ull * 1024},
                                                                   {"GiB", 1024ull * 1024 * 1024}};
    // At most 12 digits, so the number fits; the product is checked before it is formed.
    if (digits > 0 && digits <= 12) {
      const std::uint64_t number = std::stoull(text.substr(0, digits));
      for (const auto& [name, factor] : kUnits) {
        if (unit != name) continue;
        if (number > std::numeric_limits<std::uint64_t>::max() / factor) {
          ctx.error(node.source(), key,
                    "expected a size between " + std::to_string(min) + " and " + std::to_string(max) + " bytes, got " +
                        describe_value(node));
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
              "for a shell, [\"sh\", \"-c\", \"...\"]), got " +
                  type_name(node));
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

std::optional<std::vector<std::pair<std::string, std::string>>> EnvValue::operator()(
    ParseContext& ctx, const toml::node& node, const std::string& key) const {
  const auto* table = node.as_table();
  if (table == nullptr) {
    ctx.error(node.source(), key,
              "expected a table of environment variables (NAME = \"value\"), got " + type_name(node));
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

}  // namespace pgnap::config::detail
