// The report as JSON and CSV. The text helpers every format shares are report_text.cpp, the
// terminal table is report_table.cpp, the HTML page report_html.cpp.
//
// JSON and CSV are built from one ordered list of fields (instance_fields), so the two can
// never disagree on a name; docs/accounting.md documents the schema "pgnap.report/1". A
// field is only ever added, never renamed or retyped, without a new schema version.
#include <algorithm>
#include <chrono>
#include <variant>

#include "accounting/report.h"
#include "accounting/report_text.h"

namespace pgnap::accounting {

namespace {

using namespace report_text;

// ---- one list of fields for JSON and CSV ----

struct Null {};
// Who woke an instance, ranked: a JSON array of {label: name, "wakes": n}; in CSV,
// kTopWakeSources pairs of columns KEY_1, KEY_1_wakes, ... (empty beyond the list).
struct Sources {
  std::string label;  // "application_name" or "address"
  std::vector<WakeSource> items;
};
using Value = std::variant<bool, double, std::uint64_t, std::int64_t, std::string, Null, Sources>;

struct Group {
  std::string name;  // "" = the instance object itself; else a nested object / column prefix
  std::vector<std::pair<std::string, Value>> fields;
};

Value optional_number(const std::optional<double>& v) {
  if (v) return *v;
  return Null{};
}

// Physical quantities first, then what they are worth; all null when nothing was measured.
std::vector<std::pair<std::string, Value>> measured_fields(const MeasuredReport& m) {
  const auto measured = [&m](double v) { return m.available ? Value(v) : Value(Null{}); };
  const auto text = [&m](const std::string& v) { return m.available && !v.empty() ? Value(v) : Value(Null{}); };
  return {{"basis", std::string("measured")},
          {"available", m.available},
          {"note", m.note},
          {"idle_cpu_utilisation", measured(m.rates.cpu_utilisation)},
          {"idle_memory_bytes", measured(m.idle.memory_bytes())},
          {"idle_seconds_measured", m.idle.seconds},
          {"busy_cpu_utilisation", m.busy.seconds > 0 ? Value(m.busy.cpu_utilisation()) : Value(Null{})},
          {"busy_memory_bytes", m.busy.memory_seconds > 0 ? Value(m.busy.memory_bytes()) : Value(Null{})},
          {"busy_seconds_measured", m.busy.seconds},
          {"cpu_source", text(m.cpu_source)},
          {"memory_source", text(m.idle.memory_seconds > 0 ? m.memory_source : std::string())},
          {"cpu_seconds_avoided", measured(m.savings.cpu_seconds)},
          {"memory_gb_hours_freed", measured(m.savings.memory_gb_hours)},
          {"start_cpu_seconds", measured(m.savings.start_cpu_seconds)},
          {"watts", measured(m.savings.watts)},
          {"energy_saved_kwh", measured(m.savings.energy_kwh)},
          {"carbon_saved_g", measured(m.savings.carbon_g)},
          {"cost_saved", measured(m.savings.cost)}};
}

std::vector<Group> instance_fields(const InstanceReport& r) {
  const Accounting& a = r.accounting;
  const Power p = power_of(a);
  const double billed_seconds = std::chrono::duration<double>(a.wake_billed_minimum).count();
  return {
      {"",
       {{"name", r.name},
        {"hours_asleep", r.activity.hours_asleep},
        {"hours_awake", r.activity.hours_awake},
        {"hours_failed", r.hours_failed},
        {"share_asleep", r.share_asleep},
        {"wakes", r.wakes},
        {"wakes_failed", r.wakes_failed},
        {"wake_p50_seconds", r.wake_p50_s},
        {"wake_p95_seconds", r.wake_p95_s},
        {"clients_waited", r.clients_waited},
        {"starts", r.activity.starts},
        {"start_seconds", r.activity.start_seconds},
        {"energy_saved_kwh", r.savings.energy_kwh},
        {"carbon_saved_g", r.savings.carbon_g},
        {"cost_saved", r.savings.cost},
        {"currency", a.currency},
        {"embodied_saved_g", r.savings.embodied_g},
        {"wakes_per_day", r.wakes_per_day},
        {"basis", r.basis}}},
      // The headline: the measured figures when there are, else the model's (docs/accounting.md).
      {"saved",
       {{"basis", r.basis},
        {"energy_kwh", r.saved_energy_kwh},
        {"carbon_g", r.saved_carbon_g},
        {"cost", r.saved_cost}}},
      {"model",
       {{"basis", std::string("model")},
        {"energy_saved_kwh", r.savings.energy_kwh},
        {"carbon_saved_g", r.savings.carbon_g},
        {"cost_saved", r.savings.cost}}},
      {"measured", measured_fields(r.measured)},
      {"grid", {{"intensity_g_per_kwh", a.grid_intensity}, {"source", a.grid_source}, {"year", a.grid_year}}},
      {"coefficients",
       {{"vcpus", a.vcpus},
        {"memory_gb", a.memory_gb},
        {"idle_watts_per_vcpu", a.idle_watts_per_vcpu},
        {"busy_watts_per_vcpu", a.busy_watts_per_vcpu},
        {"watts_per_gb", a.watts_per_gb},
        {"residual_watts", a.residual_watts},
        {"power_watts", optional_number(a.power_watts)},
        {"busy_power_watts", optional_number(a.busy_power_watts)},
        {"pue", a.pue},
        {"grid_intensity", a.grid_intensity},
        {"grid_source", a.grid_source},
        {"grid_year", a.grid_year},
        {"price_per_hour", a.price_per_hour},
        {"currency", a.currency},
        {"wake_billed_minimum_seconds", billed_seconds},
        {"embodied_g_per_hour", a.embodied_g_per_hour},
        {"idle_watts", p.idle_watts},
        {"busy_watts", p.busy_watts}}},
      {"parts",
       {{"idle_energy_kwh", r.savings.idle_energy_kwh},
        {"wake_energy_kwh", r.savings.wake_energy_kwh},
        {"wake_cost", r.savings.wake_cost}}},
      {"wake_causes",
       {{"client", r.wakes_client},
        {"manual", r.wakes_manual},
        {"window", r.wakes_window},
        {"maintenance", r.wakes_maintenance}}},
      // Among all client-caused wakes, whether or not they ran the start command.
      {"client_wakes",
       {{"by_application", Sources{"application_name", r.top_applications}},
        {"other_applications", r.other_applications_wakes},
        {"by_address", Sources{"address", r.top_addresses}},
        {"other_addresses", r.other_addresses_wakes}}},
      {"maintenance",
       {{"runs", r.maintenance_runs},
        {"failed", r.maintenance_failed},
        {"last_started_at", r.last_maintenance ? Value(iso_utc(r.last_maintenance->started_at)) : Value(Null{})},
        {"last_outcome", r.last_maintenance ? Value(r.last_maintenance->outcome) : Value(Null{})},
        {"last_exit_status", r.last_maintenance && r.last_maintenance->exit_status >= 0
                                 ? Value(static_cast<std::int64_t>(r.last_maintenance->exit_status))
                                 : Value(Null{})}}},
  };
}

// The totals, by the instance field names they sum (cost_saved is per currency).
std::vector<Group> total_fields(const Report& r) {
  return {{"",
           {{"hours_asleep", r.hours_asleep},
            {"hours_awake", r.hours_awake},
            {"hours_failed", r.hours_failed},
            {"share_asleep", r.share_asleep},
            {"wakes", r.wakes},
            {"wakes_failed", r.wakes_failed},
            {"wake_p50_seconds", r.wake_p50_s},
            {"wake_p95_seconds", r.wake_p95_s},
            {"clients_waited", r.clients_waited},
            {"starts", r.starts},
            {"start_seconds", r.start_seconds},
            {"energy_saved_kwh", r.energy_kwh},
            {"carbon_saved_g", r.carbon_g},
            {"embodied_saved_g", r.embodied_g},
            {"wakes_per_day", r.wakes_per_day},
            {"basis", r.basis}}},
          {"saved", {{"basis", r.basis}, {"energy_kwh", r.saved_energy_kwh}, {"carbon_g", r.saved_carbon_g}}},
          {"model", {{"basis", std::string("model")}, {"energy_saved_kwh", r.energy_kwh}, {"carbon_saved_g", r.carbon_g}}},
          {"measured",
           {{"basis", std::string("measured")},
            {"instances", static_cast<std::uint64_t>(r.instances_measured)},
            {"cpu_seconds_avoided", r.measured_cpu_seconds},
            {"memory_gb_hours_freed", r.measured_memory_gb_hours},
            {"energy_saved_kwh", r.measured_energy_kwh},
            {"carbon_saved_g", r.measured_carbon_g}}},
          {"wake_causes",
           {{"client", r.wakes_client},
            {"manual", r.wakes_manual},
            {"window", r.wakes_window},
            {"maintenance", r.wakes_maintenance}}},
          {"maintenance", {{"runs", r.maintenance_runs}, {"failed", r.maintenance_failed}}}};
}

std::string json_value(const Value& v) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(double d) const { return number(d); }
    std::string operator()(std::uint64_t n) const { return std::to_string(n); }
    std::string operator()(std::int64_t n) const { return std::to_string(n); }
    std::string operator()(const std::string& s) const { return json_string(s); }
    std::string operator()(Null) const { return "null"; }
    std::string operator()(const Sources& s) const {
      std::string out = "[";
      for (std::size_t i = 0; i < s.items.size(); ++i) {
        out += std::string(i ? ", " : "") + "{" + json_string(s.label) + ": " + json_string(s.items[i].name) +
               ", \"wakes\": " + std::to_string(s.items[i].wakes) + "}";
      }
      return out + "]";
    }
  };
  return std::visit(Visitor{}, v);
}

std::string csv_field(std::string_view s) {
  const std::string clean = clean_utf8(s);
  if (clean.find_first_of(",\"\r\n") == std::string::npos) return clean;
  std::string out = "\"";
  for (const char c : clean) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_value(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return csv_field(*s);
  if (std::holds_alternative<Null>(v)) return "";
  return json_value(v);
}

// A field's CSV columns (`column` is its prefixed name) and their cells: one, except for a
// ranking, which has a fixed number of name and count pairs whatever its length.
void csv_columns(const std::string& column, const Value& v, std::vector<std::string>& out) {
  if (!std::holds_alternative<Sources>(v)) {
    out.push_back(column);
    return;
  }
  for (std::size_t i = 1; i <= kTopWakeSources; ++i) {
    out.push_back(column + "_" + std::to_string(i));
    out.push_back(column + "_" + std::to_string(i) + "_wakes");
  }
}
void csv_cells(const Value& v, std::vector<std::string>& out) {
  const auto* sources = std::get_if<Sources>(&v);
  if (!sources) {
    out.push_back(csv_value(v));
    return;
  }
  for (std::size_t i = 0; i < kTopWakeSources; ++i) {
    const bool have = i < sources->items.size();
    out.push_back(have ? csv_field(sources->items[i].name) : "");
    out.push_back(have ? std::to_string(sources->items[i].wakes) : "");
  }
}

}  // namespace

std::string format_json(const Report& report) {
  std::string out = "{\n  \"schema\": \"pgnap.report/1\",\n";
  out += "  \"since\": " + json_string(iso_utc(report.since)) + ",\n";
  out += "  \"until\": " + json_string(iso_utc(report.until)) + ",\n";
  out += "  \"instances\": [";
  for (std::size_t i = 0; i < report.instances.size(); ++i) {
    out += i == 0 ? "\n    {" : ",\n    {";
    bool first = true;
    for (const Group& g : instance_fields(report.instances[i])) {
      const std::string indent = g.name.empty() ? "\n      " : "\n        ";
      if (!g.name.empty()) {
        out += std::string(first ? "" : ",") + "\n      " + json_string(g.name) + ": {";
        first = true;
      }
      for (const auto& [key, value] : g.fields) {
        out += std::string(first ? "" : ",") + indent + json_string(key) + ": " + json_value(value);
        first = false;
      }
      if (!g.name.empty()) out += "\n      }";
      first = false;
    }
    out += "\n    }";
  }
  out += report.instances.empty() ? "],\n" : "\n  ],\n";
  out += "  \"total\": {";
  for (const Group& g : total_fields(report)) {
    if (!g.name.empty()) out += "\n    " + json_string(g.name) + ": {";
    for (std::size_t f = 0; f < g.fields.size(); ++f) {
      const auto& [key, value] = g.fields[f];
      if (g.name.empty()) {
        out += "\n    " + json_string(key) + ": " + json_value(value) + ",";
      } else {
        out += "\n      " + json_string(key) + ": " + json_value(value) + (f + 1 < g.fields.size() ? "," : "");
      }
    }
    if (!g.name.empty()) out += "\n    },";
  }
  out += "\n    \"cost_saved\": {";
  bool first = true;
  for (const auto& [currency, amount] : report.cost_by_currency) {
    out += std::string(first ? "" : ",") + "\n      " + json_string(currency) + ": " + number(amount);
    first = false;
  }
  out += report.cost_by_currency.empty() ? "}" : "\n    }";
  out += "\n  }\n}\n";
  return out;
}

// RFC 4180: CRLF line ends, fields quoted only when they hold a comma, quote or line break.
std::string format_csv(const Report& report) {
  static const InstanceReport kShape{};  // the columns, from an instance's fields
  std::vector<std::string> columns = {"since", "until"};
  for (const Group& g : instance_fields(kShape)) {
    for (const auto& field : g.fields) {
      csv_columns(g.name.empty() ? field.first : g.name + "_" + field.first, field.second, columns);
    }
  }
  auto line = [](const std::vector<std::string>& cells) {
    std::string l;
    for (std::size_t i = 0; i < cells.size(); ++i) l += (i ? "," : "") + cells[i];
    return l + "\r\n";
  };

  std::string out = line(columns);
  const std::string since = iso_utc(report.since), until = iso_utc(report.until);
  for (const InstanceReport& r : report.instances) {
    std::vector<std::string> cells = {since, until};
    for (const Group& g : instance_fields(r)) {
      for (const auto& field : g.fields) csv_cells(field.second, cells);
    }
    out += line(cells);
  }

  // TOTAL: the summed columns; per-instance coefficients stay empty. Money has one total
  // only when every instance uses one currency (the JSON gives every currency's total).
  std::vector<std::string> cells(columns.size());
  cells[0] = since;
  cells[1] = until;
  auto set = [&](const std::string& column, const std::string& text) {
    const auto it = std::find(columns.begin(), columns.end(), column);
    if (it != columns.end()) cells[static_cast<std::size_t>(it - columns.begin())] = text;
  };
  set("name", "TOTAL");
  for (const Group& g : total_fields(report)) {
    for (const auto& [key, value] : g.fields) set(g.name.empty() ? key : g.name + "_" + key, csv_value(value));
  }
  if (report.cost_by_currency.size() == 1) {
    set("cost_saved", number(report.cost_by_currency.begin()->second));
    set("currency", csv_field(report.cost_by_currency.begin()->first));
  }
  out += line(cells);
  return out;
}

}  // namespace pgnap::accounting
