// The report's measured basis (docs/accounting.md, "Measured"): the usage rows the daemon's
// sampler wrote while an instance was awake, summed into idle and busy rates, and what the
// idle rates avoided over the hours the window says it slept. Where nothing could be
// measured, the note says why and the model's figures stay the headline.
#include <cmath>
#include <string>
#include <vector>

#include "accounting/report.h"
#include "accounting/report_text.h"

namespace pgnap::accounting {

using report_text::fixed;

namespace {

std::string hours_text(double seconds) {
  if (seconds < 120) return fixed(seconds, 0) + " s";
  if (seconds < 7200) return fixed(seconds / 60, 1) + " min";
  return fixed(seconds / 3600, 1) + " h";
}

std::string sources_note(const MeasuredReport& m) {
  std::string out = "CPU from " + std::string(m.cpu_source == "cgroup" ? "the cgroup's cpu.stat" : "/proc");
  if (m.idle.memory_seconds <= 0) return out + ", memory unreadable (counted as 0)";
  if (m.memory_source == "pss") return out + ", memory as PSS";
  if (m.memory_source == "cgroup") return out + ", memory as the cgroup's memory.current";
  return out + ", memory as resident pages (an estimate: PSS was unreadable)";
}

}  // namespace

std::string utilisation_text(double vcpus) {
  if (!std::isfinite(vcpus)) return "n/a";
  if (vcpus >= 1) return fixed(vcpus, 2) + " vCPUs";
  const double percent = vcpus * 100;
  return fixed(percent, percent >= 1 ? 1 : percent >= 0.1 ? 2 : 3) + "% of a vCPU";
}

std::string bytes_text(double bytes) {
  if (!std::isfinite(bytes)) return "n/a";
  if (bytes >= 1e9) return fixed(bytes / 1e9, 2) + " GB";
  return fixed(bytes / 1e6, 1) + " MB";
}

void add_measured(InstanceReport& r, const std::vector<const UsageRow*>& rows, const std::string& not_measurable) {
  MeasuredReport& m = r.measured;
  for (const UsageRow* row : rows) {
    (row->idle ? m.idle : m.busy) += row->totals;
    m.cpu_source = row->cpu_source;  // rows come by start: the latest wins
    m.memory_source = row->memory_source;
  }
  const std::string lookback = "in the 30 days up to the report's end";
  if (m.idle.seconds > 0 && m.idle.samples > 0) {
    m.available = true;
    m.rates.cpu_utilisation = m.idle.cpu_utilisation();
    m.rates.memory_gb = m.idle.memory_bytes() / 1e9;
    m.savings = measured_savings(r.accounting, m.rates, r.activity);
    m.note = "measured over " + hours_text(m.idle.seconds) + " idle-awake " + lookback + " (" +
             std::to_string(m.idle.samples) + " readings; " + sources_note(m) + ")";
  } else if (!not_measurable.empty() && rows.empty()) {
    m.note = "nothing to measure: " + not_measurable + "; the model alone is reported";
  } else if (!r.accounting.measure && rows.empty()) {
    m.note = "measurement is off (accounting.measure = false); the model alone is reported";
  } else if (rows.empty()) {
    m.note = "nothing measured " + lookback + " (never awake while pgnap measured it); the model alone is reported";
  } else {
    m.note = "never idle while awake " + lookback + " (a session was in use at every reading, " +
             hours_text(m.busy.seconds) + " measured busy): no idle rate, the model alone is reported";
  }

  if (m.available) {
    r.basis = "measured";
    r.saved_energy_kwh = m.savings.energy_kwh;
    r.saved_carbon_g = m.savings.carbon_g;
    r.saved_cost = m.savings.cost;
  } else {
    r.basis = "model";
    r.saved_energy_kwh = r.savings.energy_kwh;
    r.saved_carbon_g = r.savings.carbon_g;
    r.saved_cost = r.savings.cost;
  }
}

}  // namespace pgnap::accounting
