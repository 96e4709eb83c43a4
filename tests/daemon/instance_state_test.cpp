// The lifecycle's transition table, tried pair by pair: every transition the lifecycle
// of docs/architecture.md has is legal, every other one is refused — a state never "changes" to itself.
#include "daemon/instance_state.h"

#include <set>
#include <utility>

#include <gtest/gtest.h>

namespace pgnap::daemon {
namespace {

using S = InstanceState;
constexpr S kAll[] = {S::kAdopting, S::kAsleep, S::kWaking, S::kAwake, S::kSuspending, S::kFailed};

TEST(InstanceState, EveryPairIsLegalExactlyWhenTheLifecycleHasIt) {
  const std::set<std::pair<S, S>> lifecycle = {
      {S::kAdopting, S::kAsleep},    // adopted: not running
      {S::kAdopting, S::kAwake},     // adopted: accepting connections
      {S::kAdopting, S::kWaking},    // adopted: found starting
      {S::kAsleep, S::kWaking},      // a client
      {S::kWaking, S::kAwake},       // ready
      {S::kWaking, S::kFailed},      // the start failed or timed out
      {S::kAwake, S::kSuspending},   // idle
      {S::kAwake, S::kAsleep},       // stopped without pgnap; suspended on exit
      {S::kSuspending, S::kAsleep},  // stopped
      {S::kSuspending, S::kAwake},   // the stop failed
      {S::kSuspending, S::kFailed},  // a start that timed out was stopped
      {S::kFailed, S::kWaking},      // the next client, after the backoff
      {S::kFailed, S::kSuspending},  // stopping a start that timed out
  };
  for (const S from : kAll) {
    for (const S to : kAll) {
      EXPECT_EQ(legal_transition(from, to), lifecycle.contains({from, to}))
          << to_string(from) << " -> " << to_string(to);
    }
  }
}

TEST(InstanceState, NoStateReturnsToAdopting) {
  for (const S from : kAll) EXPECT_FALSE(legal_transition(from, S::kAdopting)) << to_string(from);
}

TEST(InstanceState, NamesAreTheOnesTheMetricsAndTheLedgerUse) {
  EXPECT_EQ(to_string(S::kAsleep), "asleep");
  EXPECT_EQ(to_string(S::kWaking), "waking");
  EXPECT_EQ(to_string(S::kAwake), "awake");
  EXPECT_EQ(to_string(S::kSuspending), "suspending");
  EXPECT_EQ(to_string(S::kFailed), "failed");
  EXPECT_EQ(to_string(S::kAdopting), "adopting");
}

}  // namespace
}  // namespace pgnap::daemon
