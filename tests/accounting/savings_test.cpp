// The savings model against figures worked out by hand. Each test writes its arithmetic out,
// so a reader can check the expected value without running anything; docs/accounting.md's
// worked example is WorkedExampleFromTheDocs.
#include "accounting/savings.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

namespace pgnap::accounting {
namespace {

using namespace std::chrono_literals;

// Figures are compared to 1e-9 relative: the hand arithmetic is exact in decimal, the model
// in binary floating point.
void expect_near_rel(double actual, double expected) {
  EXPECT_NEAR(actual, expected, 1e-9 * std::max(1.0, std::abs(expected))) << "expected " << expected;
}

TEST(Power, DefaultsAreCloudCarbonFootprintAwsAverages) {
  const Accounting a;
  EXPECT_EQ(a.vcpus, 2);
  EXPECT_EQ(a.memory_gb, 1);
  EXPECT_EQ(a.idle_watts_per_vcpu, 0.74);
  EXPECT_EQ(a.busy_watts_per_vcpu, 3.5);
  EXPECT_EQ(a.watts_per_gb, 0.392);
  EXPECT_EQ(a.pue, 1.135);
  EXPECT_EQ(a.grid_intensity, 473);
  EXPECT_EQ(a.grid_year, 2024);
  EXPECT_EQ(a.price_per_hour, 0);
  EXPECT_EQ(a.currency, "USD");

  const Power p = power_of(a);
  // P_idle = 2 × 0.74 + 1 × 0.392 = 1.48 + 0.392 = 1.872 W
  expect_near_rel(p.idle_watts, 1.872);
  // P_busy = 2 × 3.5 + 1 × 0.392 = 7 + 0.392 = 7.392 W
  expect_near_rel(p.busy_watts, 7.392);
}

TEST(Power, ResidualWattsComeOffIdleOnlyAndNeverBelowZero) {
  Accounting a;
  a.residual_watts = 1.0;
  Power p = power_of(a);
  // P_idle = 1.872 − 1.0 = 0.872 W; P_busy is what a start draws: still 7.392 W
  expect_near_rel(p.idle_watts, 0.872);
  expect_near_rel(p.busy_watts, 7.392);

  a.residual_watts = 5.0;  // more than the instance draws: nothing is saved by sleeping
  p = power_of(a);
  EXPECT_EQ(p.idle_watts, 0);
  expect_near_rel(p.busy_watts, 7.392);
}

TEST(Power, PowerWattsScalesBusyByTheModelsRatio) {
  Accounting a;
  a.power_watts = 10.0;
  Power p = power_of(a);
  // P_idle = 10 W as given
  expect_near_rel(p.idle_watts, 10.0);
  // P_busy = 10 × 7.392 / 1.872 = 73.92 / 1.872 = 39.487179487… W
  expect_near_rel(p.busy_watts, 73.92 / 1.872);

  a.residual_watts = 2.0;  // residual still comes off the given figure: 10 − 2 = 8 W
  p = power_of(a);
  expect_near_rel(p.idle_watts, 8.0);
  expect_near_rel(p.busy_watts, 73.92 / 1.872);
}

TEST(Power, PowerWattsWithNoModelToScaleByKeepsItForBusy) {
  Accounting a;
  a.power_watts = 12.0;
  a.idle_watts_per_vcpu = 0;
  a.watts_per_gb = 0;  // modelled idle = 0: no ratio; P_busy = power_watts
  const Power p = power_of(a);
  expect_near_rel(p.idle_watts, 12.0);
  expect_near_rel(p.busy_watts, 12.0);
}

TEST(Power, BusyPowerWattsIsTakenAsGiven) {
  Accounting a;
  a.busy_power_watts = 20.0;
  EXPECT_EQ(power_of(a).busy_watts, 20.0);
  a.power_watts = 10.0;  // and wins over the scaled figure
  EXPECT_EQ(power_of(a).busy_watts, 20.0);
  expect_near_rel(power_of(a).idle_watts, 10.0);
}

TEST(Savings, NothingAsleepSavesNothing) {
  const Savings s = savings(Accounting{}, Activity{});
  EXPECT_EQ(s.energy_kwh, 0);
  EXPECT_EQ(s.carbon_g, 0);
  EXPECT_EQ(s.cost, 0);
  EXPECT_EQ(s.embodied_g, 0);
}

// docs/accounting.md, "A worked example": one day of an instance with the defaults, asleep
// 20 hours, woken 6 times, each start taking 0.8 s.
TEST(Savings, WorkedExampleFromTheDocs) {
  Activity day;
  day.hours_asleep = 20;
  day.hours_awake = 4;
  day.starts = 6;
  day.start_seconds = 6 * 0.8;  // 4.8 s
  const Savings s = savings(Accounting{}, day);

  // asleep: 1.135 × 1.872 W × 20 h = 1.135 × 37.44 Wh = 42.4944 Wh = 0.0424944 kWh
  expect_near_rel(s.idle_energy_kwh, 0.0424944);
  // wakes: 1.135 × 7.392 W × 4.8 s / 3600 = 1.135 × 0.009856 Wh = 0.01118656 Wh
  //        = 0.00001118656 kWh
  expect_near_rel(s.wake_energy_kwh, 0.00001118656);
  // saved: 0.0424944 − 0.00001118656 = 0.04248321344 kWh a day
  expect_near_rel(s.energy_kwh, 0.04248321344);
  // carbon: 0.04248321344 × 473 = 20.09455995712 g a day
  expect_near_rel(s.carbon_g, 20.09455995712);
  // price 0 by default: no money figure until the user sets one
  EXPECT_EQ(s.cost, 0);

  // A year of such days: 365 × 0.04248321344 = 15.5063729056 kWh, 365 × 20.09455995712 g
  // = 7334.5143843488 g ≈ 7.3 kg CO2e.
  Activity year = day;
  year.hours_asleep *= 365;
  year.starts *= 365;
  year.start_seconds *= 365;
  const Savings y = savings(Accounting{}, year);
  expect_near_rel(y.energy_kwh, 15.5063729056);
  expect_near_rel(y.carbon_g, 7334.5143843488);
}

TEST(Savings, ResidualWattsReduceTheSaving) {
  Accounting a;
  a.residual_watts = 1.0;
  Activity act;
  act.hours_asleep = 10;
  const Savings s = savings(a, act);
  // 1.135 × (1.872 − 1.0) W × 10 h = 1.135 × 8.72 Wh = 9.8972 Wh = 0.0098972 kWh
  expect_near_rel(s.energy_kwh, 0.0098972);
  // × 473 = 4.6813756 g
  expect_near_rel(s.carbon_g, 4.6813756);
}

TEST(Savings, PowerWattsAndBusyPowerWatts) {
  Accounting a;
  a.power_watts = 30.0;  // a measured small VM
  a.busy_power_watts = 60.0;
  a.pue = 1.0;  // self-hosted: no data-centre overhead counted
  a.grid_intensity = 100;
  Activity act;
  act.hours_asleep = 2;
  act.starts = 1;
  act.start_seconds = 36;  // 0.01 h
  const Savings s = savings(a, act);
  // asleep: 1.0 × 30 W × 2 h = 60 Wh = 0.06 kWh; wake: 1.0 × 60 W × 0.01 h = 0.6 Wh
  expect_near_rel(s.idle_energy_kwh, 0.06);
  expect_near_rel(s.wake_energy_kwh, 0.0006);
  // 0.06 − 0.0006 = 0.0594 kWh; × 100 g/kWh = 5.94 g
  expect_near_rel(s.energy_kwh, 0.0594);
  expect_near_rel(s.carbon_g, 5.94);
}

TEST(Savings, WakeOverheadCanMakeTheSavingNegative) {
  Activity act;
  act.hours_asleep = 0.001;  // 3.6 s asleep
  act.starts = 1;
  act.start_seconds = 2;  // and a 2 s start to end it
  const Savings s = savings(Accounting{}, act);
  // asleep: 1.135 × 1.872 × 0.001 / 1000 = 0.00000212472 kWh
  expect_near_rel(s.idle_energy_kwh, 0.00000212472);
  // wake: 1.135 × 7.392 × (2 / 3600) / 1000 = 8.38992 / 1800 / 1000 = 0.0000046610666… kWh
  expect_near_rel(s.wake_energy_kwh, 8.38992 / 1800 / 1000);
  // saved: 0.00000212472 − 0.0000046610666… < 0: the sleep was too short for its wake.
  // (Break-even: 7.392 / 1.872 = 3.95 s asleep per second of starting.)
  EXPECT_LT(s.energy_kwh, 0);
  expect_near_rel(s.energy_kwh, 0.00000212472 - 8.38992 / 1800 / 1000);
  EXPECT_LT(s.carbon_g, 0);
  expect_near_rel(s.carbon_g, s.energy_kwh * 473);
}

TEST(Savings, CostWithATenMinuteMinimumBilledPerStart) {
  Accounting a;
  a.price_per_hour = 0.017;
  a.wake_billed_minimum = 10min;
  Activity act;
  act.hours_asleep = 20;
  act.starts = 6;
  act.start_seconds = 6 * 30;
  const Savings s = savings(a, act);
  // wakes: 6 × 0.017 × (10 / 60) h = 6 × 0.017 / 6 = 0.017
  expect_near_rel(s.wake_cost, 0.017);
  // saved: 20 × 0.017 − 0.017 = 0.34 − 0.017 = 0.323
  expect_near_rel(s.cost, 0.323);

  act.starts = 200;  // 200 starts × 10 min = 33.3 h billed, more than the 20 h asleep
  EXPECT_LT(savings(a, act).cost, 0);
}

TEST(Savings, EmbodiedIsOptInAndApart) {
  Accounting a;
  Activity act;
  act.hours_asleep = 20;
  EXPECT_EQ(savings(a, act).embodied_g, 0);
  a.embodied_g_per_hour = 2.5;
  const Savings s = savings(a, act);
  // 2.5 g/h × 20 h = 50 g, and not folded into carbon_g
  expect_near_rel(s.embodied_g, 50);
  expect_near_rel(s.carbon_g, savings(Accounting{}, act).carbon_g);
}

TEST(Savings, GridIntensityScalesCarbonOnly) {
  Accounting a;
  a.grid_intensity = 56;  // e.g. a low-carbon grid
  Activity act;
  act.hours_asleep = 20;
  const Savings s = savings(a, act);
  // 0.0424944 kWh × 56 = 2.3796864 g
  expect_near_rel(s.energy_kwh, 0.0424944);
  expect_near_rel(s.carbon_g, 2.3796864);
}

// ---- the measured basis ----

// docs/accounting.md's measured worked example: an idle PostgreSQL measured at 0.15% of a vCPU
// and 40 MB, asleep 20 hours, woken 6 times for 0.8 s each, default coefficients.
TEST(MeasuredSavings, WorkedExampleFromTheDocs) {
  const Accounting a;
  const MeasuredSavings m = measured_savings(a, MeasuredRates{0.0015, 0.04}, Activity{20, 4, 6, 4.8});
  // CPU-seconds avoided = 0.0015 × 20 h × 3600 = 108 s; memory freed = 0.04 GB × 20 h = 0.8 GB-h
  expect_near_rel(m.cpu_seconds, 108);
  expect_near_rel(m.memory_gb_hours, 0.8);
  expect_near_rel(m.start_cpu_seconds, 4.8);
  // watts = 0.0015 × (3.5 − 0.74) + 0.04 × 0.392 = 0.00414 + 0.01568 = 0.01982 W
  expect_near_rel(m.watts, 0.01982);
  // energy = 1.135 × (0.01982 W × 20 h − 2.76 W × 4.8 s / 3600) / 1000
  //        = 1.135 × (0.3964 − 0.00368) / 1000 = 1.135 × 0.39272 / 1000 = 0.0004457372 kWh
  expect_near_rel(m.energy_kwh, 0.0004457372);
  // carbon = 0.0004457372 kWh × 473 g/kWh = 0.2108336956 g
  expect_near_rel(m.carbon_g, 0.2108336956);
  EXPECT_EQ(m.cost, 0);  // no price_per_gb_hour
}

TEST(MeasuredSavings, NeverClaimsTheMachinesIdlePowerNorTheModelsKeys) {
  Accounting a;
  // What describes a whole machine or VM is the model's alone: none of it changes the measured figures.
  a.power_watts = 40;
  a.residual_watts = 3;
  a.vcpus = 8;
  a.memory_gb = 16;
  const MeasuredSavings with = measured_savings(a, MeasuredRates{0.002, 0.05}, Activity{10, 1, 0, 0});
  const MeasuredSavings without = measured_savings(Accounting{}, MeasuredRates{0.002, 0.05}, Activity{10, 1, 0, 0});
  EXPECT_EQ(with.energy_kwh, without.energy_kwh);
  // At 0 % CPU and no memory nothing is saved, whatever min watts per vCPU say.
  const MeasuredSavings nothing = measured_savings(a, MeasuredRates{0, 0}, Activity{10, 1, 0, 0});
  EXPECT_EQ(nothing.watts, 0);
  EXPECT_EQ(nothing.energy_kwh, 0);
}

TEST(MeasuredSavings, MoneyIsTheMemoryFreedAtItsPrice) {
  Accounting a;
  a.price_per_gb_hour = 0.0041;  // a 2 GB VPS at 6 a month: 6 / 730 / 2
  const MeasuredSavings m = measured_savings(a, MeasuredRates{0.0015, 0.04}, Activity{20, 4, 6, 4.8});
  // 0.8 GB-h × 0.0041 = 0.00328
  expect_near_rel(m.cost, 0.00328);
}

}  // namespace
}  // namespace pgnap::accounting
