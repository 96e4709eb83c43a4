// The readers of config/keys.h for [instances.NAME.wake] and [instances.NAME.maintenance]:
// ignore rules, keep-warm windows, the time zone and a time of day. Their grammars live in
// config/wake_rules.h and config/schedule.h, which the daemon uses too; these only turn a TOML
// node into a value or an error naming its key and line.
#include <optional>
#include <string>
#include <vector>

#include "config/keys.h"
#include "config/schedule.h"
#include "config/wake_rules.h"

namespace pgnap::config::detail {

std::optional<std::string> AddressPatternValue::operator()(ParseContext& ctx, const toml::node& node,
                                                           const std::string& key) const {
  const std::string* s = as_string(ctx, node, key, "an address pattern (a string)");
  if (s == nullptr) return std::nullopt;
  std::string why;
  if (!parse_address_pattern(*s, &why)) {
    ctx.error(node.source(), key, why);
    return std::nullopt;
  }
  return *s;
}

std::optional<std::vector<WakeIgnoreRule>> IgnoreRuleListValue::operator()(ParseContext& ctx, const toml::node& node,
                                                                           const std::string& key) const {
  const auto* array = node.as_array();
  if (array == nullptr) {
    ctx.error(node.source(), key,
              "expected an array of rules (e.g. [{ user = \"monitor\" }, { application_name = \"uptime*\" }]), got " +
                  type_name(node));
    return std::nullopt;
  }
  std::vector<WakeIgnoreRule> rules;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    const std::string rule_key = key + "[" + std::to_string(i) + "]";
    const toml::table* table = item.as_table();
    if (table == nullptr) {
      ctx.error(item.source(), rule_key,
                "expected a rule (a table such as { user = \"monitor\" }), got " + type_name(item));
      continue;
    }
    WakeIgnoreRule rule;
    apply_rows(ctx, *table, rule_key, rows, rule);
    if (table->empty()) {
      ctx.error(item.source(), rule_key, "an ignore rule must set user, application_name or address");
      continue;
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::optional<std::vector<std::string>> WindowListValue::operator()(ParseContext& ctx, const toml::node& node,
                                                                    const std::string& key) const {
  const auto* array = node.as_array();
  if (array == nullptr) {
    ctx.error(node.source(), key,
              "expected an array of windows (e.g. [\"Mon-Fri 08:00-18:00\", \"Sat 10:00-12:30\"]), got " +
                  type_name(node));
    return std::nullopt;
  }
  std::vector<std::string> windows;
  for (const toml::node& item : *array) {
    const std::string* text = as_string(ctx, item, key, "a window (a string such as \"Mon-Fri 08:00-18:00\")");
    if (text == nullptr) continue;
    std::string why;
    if (!parse_window(*text, &why)) {
      ctx.error(item.source(), key, why);
      continue;
    }
    windows.push_back(*text);
  }
  return windows;
}

std::optional<std::string> TimeZoneValue::operator()(ParseContext& ctx, const toml::node& node,
                                                     const std::string& key) const {
  const std::string* s = as_string(ctx, node, key, "a time zone name (a string such as \"Europe/Berlin\")");
  if (s == nullptr) return std::nullopt;
  std::string why;
  if (!TimeZone::load(*s, &why)) {
    ctx.error(node.source(), key, why);
    return std::nullopt;
  }
  return *s;
}

std::optional<std::string> TimeOfDayValue::operator()(ParseContext& ctx, const toml::node& node,
                                                      const std::string& key) const {
  const std::string* s = as_string(ctx, node, key, "a time of day \"HH:MM\" (a string)");
  if (s == nullptr) return std::nullopt;
  if (s->empty()) return *s;
  std::string why;
  if (!parse_time_of_day(*s, &why)) {
    ctx.error(node.source(), key, why);
    return std::nullopt;
  }
  return *s;
}

}  // namespace pgnap::config::detail
