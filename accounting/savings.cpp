#include "accounting/savings.h"

#include <algorithm>

namespace pgnap::accounting {

namespace {

// The instance's draw from the per-vCPU and per-GB coefficients at a given load.
double modelled_watts(const Accounting& a, double watts_per_vcpu) {
  return a.vcpus * watts_per_vcpu + a.memory_gb * a.watts_per_gb;
}

}  // namespace

Power power_of(const Accounting& a) {
  const double model_idle = modelled_watts(a, a.idle_watts_per_vcpu);
  const double model_busy = modelled_watts(a, a.busy_watts_per_vcpu);

  Power p;
  // Residual watts are what the machine keeps drawing while PostgreSQL is stopped (the OS,
  // a stopped VM's host share): sleeping does not save them.
  const double gross_idle = a.power_watts.value_or(model_idle);
  p.idle_watts = std::max(0.0, gross_idle - a.residual_watts);

  if (a.busy_power_watts) {
    p.busy_watts = *a.busy_power_watts;
  } else if (a.power_watts) {
    // A measured idle figure keeps the model's busy/idle ratio. With every coefficient 0
    // there is no ratio to apply: assume starting draws what idling does.
    p.busy_watts = model_idle > 0 ? *a.power_watts * (model_busy / model_idle) : *a.power_watts;
  } else {
    p.busy_watts = model_busy;
  }
  // Residual is not subtracted from P_busy: a wake is charged everything the machine draws
  // while starting. (Strictly, the idle counterfactual would have drawn P_idle then too;
  // charging the whole P_busy errs on the side of claiming less.)
  return p;
}

Savings savings(const Accounting& a, const Activity& activity) {
  const Power p = power_of(a);
  const double hours_asleep = std::max(0.0, activity.hours_asleep);
  const double start_hours = std::max(0.0, activity.start_seconds) / 3600.0;
  const double billed_minimum_hours = std::chrono::duration<double, std::ratio<3600>>(a.wake_billed_minimum).count();

  Savings s;
  s.idle_energy_kwh = a.pue * p.idle_watts * hours_asleep / 1000.0;
  s.wake_energy_kwh = a.pue * p.busy_watts * start_hours / 1000.0;
  s.energy_kwh = s.idle_energy_kwh - s.wake_energy_kwh;
  s.carbon_g = s.energy_kwh * a.grid_intensity;
  s.wake_cost = static_cast<double>(activity.starts) * a.price_per_hour * billed_minimum_hours;
  s.cost = hours_asleep * a.price_per_hour - s.wake_cost;
  s.embodied_g = a.embodied_g_per_hour * hours_asleep;
  return s;
}

MeasuredSavings measured_savings(const Accounting& a, const MeasuredRates& rates, const Activity& activity) {
  const double hours_asleep = std::max(0.0, activity.hours_asleep);
  const double start_hours = std::max(0.0, activity.start_seconds) / 3600.0;
  const double utilisation = std::max(0.0, rates.cpu_utilisation);
  const double memory_gb = std::max(0.0, rates.memory_gb);
  // The CCF range per vCPU; a configuration with busy below idle claims nothing for CPU.
  const double range = std::max(0.0, a.busy_watts_per_vcpu - a.idle_watts_per_vcpu);

  MeasuredSavings m;
  m.cpu_seconds = utilisation * hours_asleep * 3600.0;
  m.memory_gb_hours = memory_gb * hours_asleep;
  m.start_cpu_seconds = start_hours * 3600.0;
  m.watts = utilisation * range + memory_gb * a.watts_per_gb;
  m.energy_kwh = a.pue * (m.watts * hours_asleep - range * start_hours) / 1000.0;
  m.carbon_g = m.energy_kwh * a.grid_intensity;
  m.cost = m.memory_gb_hours * a.price_per_gb_hour;
  return m;
}

}  // namespace pgnap::accounting
