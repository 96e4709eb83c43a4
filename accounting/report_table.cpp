// `pgnap report --format table`: the figures aligned for a terminal, then the measured basis
// (what sleeping avoided), who woke each instance, and the grid intensities used. Names a
// client or the ledger supplied are printed on one line (report_text::one_line).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "accounting/report.h"
#include "accounting/report_text.h"
#include "config/duration.h"

namespace pgnap::accounting {

using namespace report_text;

namespace {

// ---- table helpers ----

std::size_t display_width(std::string_view s) {
  // Code points, not bytes: near enough for names and units (no wide characters expected).
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(),
                                                [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string pad(std::string_view s, std::size_t width, bool left) {
  const std::size_t w = display_width(s);
  const std::string fill(width > w ? width - w : 0, ' ');
  return left ? std::string(s) + fill : fill + std::string(s);
}

std::string percentiles_text(double p50, double p95, std::uint64_t ok_wakes) {
  if (ok_wakes == 0) return "-";
  return fixed(p50, 2) + " / " + fixed(p95, 2);
}

std::string costs_text(const std::map<std::string, double>& by_currency) {
  std::string out;
  for (const auto& [currency, amount] : by_currency) {
    if (!out.empty()) out += " + ";
    out += money(amount, currency);
  }
  return out.empty() ? "-" : out;
}

// Rows aligned in columns (the first to the left, the others to the right), two spaces apart;
// with `total`, a rule above the last row.
std::string aligned(const std::vector<std::vector<std::string>>& rows, bool total = false) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
  }
  std::string out;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (total && r > 0 && r + 1 == rows.size()) {
      std::size_t rule = 0;
      for (const std::size_t w : widths) rule += w + 2;
      out += std::string(rule - 2, '-') + "\n";
    }
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      line += pad(row[i], widths[i], i == 0);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// The measured basis: the physical quantities first (what the database used while idle-awake,
// and what sleeping avoided of it), then the headline figures with the basis each rests on.
std::string measured_section(const Report& report) {
  std::string out =
      "\nWhat sleeping avoided (measured: the database's own processes while awake and idle; "
      "else the model):\n";
  std::vector<std::vector<std::string>> rows = {{"instance", "idle CPU", "idle memory", "CPU-s avoided", "GB-h freed",
                                                 "kWh saved", "gCO2e saved", "money saved", "basis"}};
  for (const InstanceReport& r : report.instances) {
    const MeasuredReport& m = r.measured;
    const auto dash = [&m](const std::string& text) { return m.available ? text : std::string("-"); };
    rows.push_back({one_line(r.name), dash(utilisation_text(m.rates.cpu_utilisation)), dash(bytes_text(m.idle.memory_bytes())),
                    dash(fixed(m.savings.cpu_seconds, 1)), dash(fixed(m.savings.memory_gb_hours, 2)),
                    fixed(r.saved_energy_kwh, 3), fixed(r.saved_carbon_g, 1), money(r.saved_cost, r.accounting.currency),
                    r.basis});
  }
  out += aligned(rows);
  std::size_t name_width = 0;
  for (const InstanceReport& r : report.instances) name_width = std::max(name_width, display_width(one_line(r.name)));
  for (const InstanceReport& r : report.instances) {
    out += "  " + pad(one_line(r.name), name_width, true) + "  " + r.measured.note + "\n";
  }
  return out;
}

// The table's sections about wakes and maintenance, below the figures.
std::string wake_sections(const Report& report) {
  std::size_t name_width = 0;
  for (const InstanceReport& r : report.instances) name_width = std::max(name_width, display_width(one_line(r.name)));
  const std::string gap(name_width + 4, ' ');
  std::string out;

  std::string causes;
  for (const InstanceReport& r : report.instances) {
    if (r.wakes == 0) continue;
    causes += "  " + pad(one_line(r.name), name_width, true) + "  " + wakes_per_day_text(r.wakes, r.wakes_per_day) +
              ": " + std::to_string(r.wakes_client) + " client, " + std::to_string(r.wakes_manual) + " manual, " +
              std::to_string(r.wakes_window) + " window, " + std::to_string(r.wakes_maintenance) + " maintenance\n";
  }
  if (!causes.empty()) out += "\nWakes by cause:\n" + causes;

  std::string who;
  for (const InstanceReport& r : report.instances) {
    if (r.wakes_client == 0) continue;
    who += "  " + pad(one_line(r.name), name_width, true) +
           "  application_name: " + sources_text(r.top_applications, r.other_applications_wakes, true) + "\n";
    who += gap + "address:          " + sources_text(r.top_addresses, r.other_addresses_wakes, false) + "\n";
  }
  if (!who.empty()) {
    out += "\nWho woke them (top " + std::to_string(kTopWakeSources) +
           " application_names and addresses, among all client wakes):\n" + who;
  }

  std::string runs;
  for (const InstanceReport& r : report.instances) {
    if (r.maintenance_runs == 0) continue;
    runs += "  " + pad(one_line(r.name), name_width, true) + "  " + maintenance_text(r) + "\n";
  }
  if (!runs.empty()) out += "\nMaintenance runs:\n" + runs;
  return out;
}

}  // namespace

std::string format_table(const Report& report) {
  const bool any_embodied = std::any_of(report.instances.begin(), report.instances.end(),
                                        [](const InstanceReport& r) { return r.savings.embodied_g != 0; });
  const bool any_failed_hours = report.hours_failed > 0;

  std::vector<std::string> header = {"instance", "asleep h", "awake h"};
  if (any_failed_hours) header.push_back("failed h");
  for (const char* h :
       {"% asleep", "wakes (failed)", "wake p50 / p95 s", "waited", "kWh (model)", "gCO2e (model)", "money (model)"}) {
    header.push_back(h);
  }
  if (any_embodied) header.push_back("embodied gCO2e");

  auto row_of = [&](const std::string& name, double asleep, double awake, double failed_h, double share_asleep,
                    std::uint64_t wakes, std::uint64_t failed, double p50, double p95, std::uint64_t waited, double kwh,
                    double g, const std::string& cost, double embodied) {
    std::vector<std::string> row = {name, fixed(asleep, 2), fixed(awake, 2)};
    if (any_failed_hours) row.push_back(fixed(failed_h, 2));
    row.push_back(asleep + awake > 0 ? fixed(share_asleep * 100, 1) + "%" : "-");
    row.push_back(std::to_string(wakes) + " (" + std::to_string(failed) + ")");
    row.push_back(percentiles_text(p50, p95, wakes - failed));
    row.push_back(std::to_string(waited));
    row.push_back(fixed(kwh, 3));
    row.push_back(fixed(g, 1));
    row.push_back(cost);
    if (any_embodied) row.push_back(fixed(embodied, 1));
    return row;
  };

  std::vector<std::vector<std::string>> rows = {header};
  for (const InstanceReport& r : report.instances) {
    rows.push_back(row_of(r.name, r.activity.hours_asleep, r.activity.hours_awake, r.hours_failed, r.share_asleep,
                          r.wakes, r.wakes_failed, r.wake_p50_s, r.wake_p95_s, r.clients_waited, r.savings.energy_kwh,
                          r.savings.carbon_g, money(r.savings.cost, r.accounting.currency), r.savings.embodied_g));
  }
  rows.push_back(row_of("TOTAL", report.hours_asleep, report.hours_awake, report.hours_failed, report.share_asleep,
                        report.wakes, report.wakes_failed, report.wake_p50_s, report.wake_p95_s, report.clients_waited,
                        report.energy_kwh, report.carbon_g, costs_text(report.cost_by_currency), report.embodied_g));

  std::string out = "pgnap savings from " + iso_utc(report.since) + " to " + iso_utc(report.until) + " (" +
                    config::format_elapsed(std::chrono::duration<double>(report.until - report.since)) + ", UTC)\n\n";
  out += aligned(rows, true);

  if (!report.instances.empty()) out += measured_section(report);
  out += wake_sections(report);
  out += "\nGrid intensity used:\n";
  std::size_t name_width = 0;
  for (const InstanceReport& r : report.instances) name_width = std::max(name_width, display_width(r.name));
  for (const InstanceReport& r : report.instances) {
    out += "  " + pad(r.name, name_width, true) + "  " + grid_text(r.accounting) + "\n";
  }
  if (report.instances.empty()) out += "  (no instances)\n";
  if (std::any_of(report.instances.begin(), report.instances.end(),
                  [](const InstanceReport& r) { return r.savings.energy_kwh < 0; })) {
    out +=
        "\nA negative saving means the wakes cost more energy than the sleep saved: "
        "consider a longer idle_timeout.\n";
  }
  if (any_embodied) {
    out +=
        "\nEmbodied carbon (hardware manufacture attributed to the hours asleep) is reported "
        "apart and not included in gCO2e saved.\n";
  }
  out += "\nEstimates, not meter readings: see docs/accounting.md for the method and its caveats.\n";
  return out;
}

}  // namespace pgnap::accounting
