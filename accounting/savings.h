// The savings model (docs/accounting.md). The counterfactual is the same instance running
// idle the whole time; what sleeping saved is:
//
//   energy  = PUE × (P_idle × hours asleep − Σ wake duration × P_busy)          [kWh]
//   carbon  = energy × grid intensity                                            [gCO2e]
//   cost    = hours asleep × price per hour − starts × price × minimum billed time
//   embodied (opt-in, reported apart) = hours asleep × embodied gCO2e per hour
//
// with P_idle = vcpus × idle W/vCPU + memory GB × W/GB − residual W (or power_watts given
// directly), P_busy = vcpus × busy W/vCPU + memory GB × W/GB (or busy_power_watts).
// Coefficients default to Cloud Carbon Footprint's AWS averages and Ember's 2024 world
// average grid intensity (Green Software Foundation SCI: O = E × I). Pure arithmetic.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace pgnap::accounting {

// The coefficients: [instances.NAME.accounting] (config/config.h).
using Accounting = config::AccountingConfig;

struct Power {
  double idle_watts = 0;  // P_idle, net of residual watts (never below 0)
  double busy_watts = 0;  // P_busy
};

// P_busy when only power_watts is given: power_watts × (modelled busy / modelled idle), the
// ratio of the vCPU-and-memory model (so a measured idle figure keeps the same relation to
// load as the defaults); power_watts itself when the modelled idle is 0.
[[nodiscard]] Power power_of(const Accounting& a);

// What one instance did over a period, as the ledger shows it.
struct Activity {
  double hours_asleep = 0;
  double hours_awake = 0;    // waking + awake + suspending
  std::uint64_t starts = 0;  // wakes that ran the start command (ok or not)
  double start_seconds = 0;  // their measured durations, summed
};

struct Savings {
  double energy_kwh = 0;  // may be negative: many short sleeps cost more than they save
  double carbon_g = 0;
  double cost = 0;
  double embodied_g = 0;  // 0 unless embodied_g_per_hour is set
  // The parts, for the report and for checking by hand:
  double idle_energy_kwh = 0;  // PUE × P_idle × hours asleep / 1000
  double wake_energy_kwh = 0;  // PUE × P_busy × start hours / 1000
  double wake_cost = 0;        // starts × price × minimum billed hours
};

[[nodiscard]] Savings savings(const Accounting& a, const Activity& activity);

// ---- The measured basis (docs/accounting.md, "Measured") ----
//
// What the database's own processes used while awake and idle (no session in use), measured
// (accounting/usage.h), is what each hour asleep avoids. Energy follows Cloud Carbon
// Footprint's form, W = min + utilisation × (max − min) per vCPU, applied to the difference
// the database makes on a machine that keeps running: the min term (the vCPUs' own idle
// draw) is there whether PostgreSQL runs or not, so only utilisation × (max − min) is
// claimed, plus its memory × W/GB. A start is charged one vCPU fully busy for its measured
// duration. Never the VPS's idle power, residual_watts or power_watts: those are the model's.
struct MeasuredRates {
  double cpu_utilisation = 0;  // vCPUs in use while idle-awake (CPU-seconds per second)
  double memory_gb = 0;        // memory held while idle-awake, GB (10^9 bytes)
};

struct MeasuredSavings {
  double cpu_seconds = 0;        // CPU time not used while asleep: utilisation × seconds asleep
  double memory_gb_hours = 0;    // memory freed while asleep: GB × hours asleep
  double start_cpu_seconds = 0;  // what the starts cost: one vCPU for their measured duration
  double watts = 0;              // the idle-awake database's draw: u × (max − min) + GB × W/GB
  double energy_kwh = 0;         // PUE × (watts × hours asleep − (max − min) × start hours) / 1000
  double carbon_g = 0;           // energy × grid intensity
  double cost = 0;               // memory_gb_hours × price_per_gb_hour
};

[[nodiscard]] MeasuredSavings measured_savings(const Accounting& a, const MeasuredRates& rates,
                                               const Activity& activity);

}  // namespace pgnap::accounting
