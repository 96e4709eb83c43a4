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

namespace pgnap::metrics {

// [instances.NAME.accounting]
struct Accounting {
  double vcpus = 2;
  double memory_gb = 1;
  double idle_watts_per_vcpu = 0.74;  // Cloud Carbon Footprint, AWS average min watts per vCPU
  double busy_watts_per_vcpu = 3.5;   // Cloud Carbon Footprint, AWS average max watts per vCPU
  double watts_per_gb = 0.392;        // Cloud Carbon Footprint memory coefficient (W/GB)
  double residual_watts = 0;          // power still drawn while asleep (subtracted from P_idle)
  std::optional<double> power_watts;       // P_idle given directly (residual still subtracted)
  std::optional<double> busy_power_watts;  // P_busy given directly
  double pue = 1.135;                 // Cloud Carbon Footprint, AWS PUE
  double grid_intensity = 473;        // gCO2e/kWh
  std::string grid_source = "Ember, Global Electricity Review 2025 (world average)";
  std::int64_t grid_year = 2024;
  double price_per_hour = 0;          // what an hour of the instance running costs
  std::string currency = "USD";
  std::chrono::milliseconds wake_billed_minimum{0};  // billed per start (RDS: 10 minutes)
  double embodied_g_per_hour = 0;     // embodied gCO2e per hour of the hardware share; 0 = off
  bool operator==(const Accounting&) const = default;
};

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
  double hours_awake = 0;          // waking + awake + suspending
  std::uint64_t starts = 0;        // wakes that ran the start command (ok or not)
  double start_seconds = 0;        // their measured durations, summed
};

struct Savings {
  double energy_kwh = 0;           // may be negative: many short sleeps cost more than they save
  double carbon_g = 0;
  double cost = 0;
  double embodied_g = 0;           // 0 unless embodied_g_per_hour is set
  // The parts, for the report and for checking by hand:
  double idle_energy_kwh = 0;      // PUE × P_idle × hours asleep / 1000
  double wake_energy_kwh = 0;      // PUE × P_busy × start hours / 1000
  double wake_cost = 0;            // starts × price × minimum billed hours
};

[[nodiscard]] Savings savings(const Accounting& a, const Activity& activity);

}  // namespace pgnap::metrics
