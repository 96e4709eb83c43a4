#include "metrics/instance_metrics.h"

#include <algorithm>

namespace pgnap::metrics {

namespace {

template <std::size_t N>
std::size_t index_of(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return i;
  }
  return N;
}

bool counts_as_awake(std::string_view state) { return state == "waking" || state == "awake" || state == "suspending"; }

}  // namespace

void DurationHistogram::observe(double seconds) {
  ++count;
  sum += seconds;
  for (std::size_t i = 0; i < kDurationBuckets.size(); ++i) {
    if (seconds <= kDurationBuckets[i]) {
      ++buckets[i];
      return;
    }
  }
  // Above the last bound: only in +Inf (count).
}

InstanceMetrics::InstanceMetrics(std::string name, Accounting accounting)
    : name_(std::move(name)), accounting_(std::move(accounting)) {
  for (auto code : kInstanceErrorCodes) client_errors_.emplace(std::string(code), 0);
}

void InstanceMetrics::set_lifetime(const Lifetime& lifetime) { lifetime_ = lifetime; }

std::optional<MeasuredRates> InstanceMetrics::measured_rates() const {
  const UsageTotals& idle = lifetime_.idle_usage;
  if (!(idle.seconds > 0) || idle.samples == 0) return std::nullopt;
  return MeasuredRates{idle.cpu_utilisation(), idle.memory_bytes() / 1e9};
}

void InstanceMetrics::set_state(std::string_view state, Clock::time_point now) {
  if (!state_.empty()) {
    const double seconds = std::chrono::duration<double>(now - state_since_).count();
    if (state_ == "asleep") closed_asleep_ += seconds;
    else if (counts_as_awake(state_)) closed_awake_ += seconds;
  }
  state_ = state;
  state_since_ = now;
}

void InstanceMetrics::wake_finished(std::string_view outcome, double seconds, bool started) {
  const auto i = index_of(kWakeOutcomes, outcome);
  if (i < wakes_.size()) ++wakes_[i];
  if (outcome == "ok") wake_duration_.observe(seconds);
  if (started) {
    ++starts_;
    start_seconds_ += seconds;
  }
}

void InstanceMetrics::suspended(std::string_view reason) {
  const auto i = index_of(kSuspendReasons, reason);
  if (i < suspends_.size()) ++suspends_[i];
}

void InstanceMetrics::authenticated(std::string_view method, std::string_view outcome) {
  ++authentications_[{std::string(method), std::string(outcome)}];
}

void InstanceMetrics::wake_caused(std::string_view cause) {
  auto it = wake_causes_.find(cause);
  if (it == wake_causes_.end()) it = wake_causes_.emplace(std::string(cause), 0).first;
  ++it->second;
}

void InstanceMetrics::client_error(std::string_view sqlstate) {
  auto it = client_errors_.find(sqlstate);
  if (it == client_errors_.end()) it = client_errors_.emplace(std::string(sqlstate), 0).first;
  ++it->second;
}

Accrued InstanceMetrics::accrued(Clock::time_point now) const {
  Accrued a;
  a.asleep_seconds = lifetime_.asleep_seconds + closed_asleep_;
  a.awake_seconds = lifetime_.awake_seconds + closed_awake_;
  if (!state_.empty()) {
    const double open = std::max(0.0, std::chrono::duration<double>(now - state_since_).count());
    if (state_ == "asleep") a.asleep_seconds += open;
    else if (counts_as_awake(state_)) a.awake_seconds += open;
  }
  a.starts = lifetime_.starts + starts_;
  a.start_seconds = lifetime_.start_seconds + start_seconds_;
  return a;
}

ReportedCounters InstanceMetrics::counters(Clock::time_point now) const {
  const Accrued a = accrued(now);
  const Savings s = savings(accounting_,
                            Activity{a.asleep_seconds / 3600.0, a.awake_seconds / 3600.0, a.starts, a.start_seconds});
  held_.asleep_seconds = std::max(held_.asleep_seconds, a.asleep_seconds);
  held_.awake_seconds = std::max(held_.awake_seconds, a.awake_seconds);
  held_.energy_kwh = std::max(held_.energy_kwh, s.energy_kwh);
  held_.carbon_g = std::max(held_.carbon_g, s.carbon_g);
  held_.cost = std::max(held_.cost, s.cost);
  held_.embodied_g = std::max(held_.embodied_g, s.embodied_g);
  // The measured basis at the idle rates known now, over every hour asleep; held like the rest.
  if (const auto rates = measured_rates()) {
    const MeasuredSavings m = accounting::measured_savings(
        accounting_, *rates, Activity{a.asleep_seconds / 3600.0, a.awake_seconds / 3600.0, a.starts, a.start_seconds});
    held_.measured_cpu_seconds = std::max(held_.measured_cpu_seconds, m.cpu_seconds);
    held_.measured_memory_gb_hours = std::max(held_.measured_memory_gb_hours, m.memory_gb_hours);
    held_.measured_energy_kwh = std::max(held_.measured_energy_kwh, m.energy_kwh);
    held_.measured_carbon_g = std::max(held_.measured_carbon_g, m.carbon_g);
  }
  return held_;
}

std::uint64_t InstanceMetrics::wakes(std::string_view outcome) const {
  const auto i = index_of(kWakeOutcomes, outcome);
  return i < wakes_.size() ? wakes_[i] : 0;
}

std::uint64_t InstanceMetrics::suspends(std::string_view reason) const {
  const auto i = index_of(kSuspendReasons, reason);
  return i < suspends_.size() ? suspends_[i] : 0;
}

GatewayMetrics::GatewayMetrics() {
  for (auto code : kGatewayErrorCodes) errors.emplace(std::string(code), 0);
  for (auto limit : kLimits) limit_hits.emplace(std::string(limit), 0);
}

void GatewayMetrics::limit_hit(std::string_view limit) {
  auto it = limit_hits.find(limit);
  if (it == limit_hits.end()) it = limit_hits.emplace(std::string(limit), 0).first;
  ++it->second;
}

void GatewayMetrics::error(std::string_view sqlstate) {
  auto it = errors.find(sqlstate);
  if (it == errors.end()) it = errors.emplace(std::string(sqlstate), 0).first;
  ++it->second;
}

}  // namespace pgnap::metrics
