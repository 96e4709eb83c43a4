// The lifecycle of one backing PostgreSQL instance (docs/architecture.md, "The instance
// lifecycle"):
//
//   adopting ─┬─▶ asleep ──client──▶ waking ──ready──▶ awake ──idle──▶ suspending ──▶ asleep
//             ├─▶ waking                 │                │  ▲               │
//             └─▶ awake                  ▼                │  └─ stop failed ─┘
//                                      failed             └──▶ asleep (it stopped without pgnap)
//                      failed ──client──▶ waking;  failed ◀─▶ suspending (stopping a start that
//                                                                         timed out)
//
// The table of legal transitions is here, beside the states; Instance::change_state() is
// the only place that changes an instance's state and refuses anything else.
#pragma once

#include <string_view>

namespace pgnap::daemon {

enum class InstanceState {
  kAdopting,    // pgnap has just started and does not know yet whether the server runs
  kAsleep,      // stopped; the next client wakes it
  kWaking,      // the start command runs and the probe waits for a real handshake
  kAwake,       // accepting connections
  kSuspending,  // the stop command runs
  kFailed,      // the last wake failed; the next client retries after a backoff
};

[[nodiscard]] std::string_view to_string(InstanceState state);

// Whether `from` → `to` is a transition of the lifecycle above. A state never "changes" to
// itself.
[[nodiscard]] constexpr bool legal_transition(InstanceState from, InstanceState to) {
  using S = InstanceState;
  switch (from) {
    case S::kAdopting: return to == S::kAsleep || to == S::kAwake || to == S::kWaking;
    case S::kAsleep: return to == S::kWaking;
    case S::kWaking: return to == S::kAwake || to == S::kFailed;
    // asleep: the server stopped without pgnap (killed, stopped by an operator).
    case S::kAwake: return to == S::kSuspending || to == S::kAsleep;
    // awake: the stop failed and the server still runs; failed: the stop of a start that
    // timed out is done.
    case S::kSuspending: return to == S::kAsleep || to == S::kAwake || to == S::kFailed;
    // suspending: stopping the server whose start did not become ready in time.
    case S::kFailed: return to == S::kWaking || to == S::kSuspending;
  }
  return false;
}

}  // namespace pgnap::daemon
