// What a session's traffic says about its use. The relay keeps it as bytes pass (plain
// fields, no call into the instance per message); the instance reads it when its idle timer
// decides whether the sessions left are used or only open, as an application's connection
// pool keeps them all day (docs/pooled-apps.md).
#pragma once

#include <chrono>
#include <functional>

namespace pgnap::daemon {

struct SessionActivity {
  std::chrono::steady_clock::time_point last_traffic{};  // the last bytes read, either way
  // PostgreSQL's last ReadyForQuery said 'I' (not in a transaction) and everything the
  // client sent since has been answered: no query, COPY or extended-protocol batch in flight.
  bool at_rest = false;
  bool listening = false;  // a LISTEN completed, or a notification arrived
  // Ends the session with pgnap's "terminating idle connection" FATAL, now.
  std::function<void()> close;
  // Parking (gateway-auth instances): `park` asks the session to detach its server connection
  // and keep its client (false: not possible right now). A park refused for what the session
  // holds (a temporary table, ...) records the session's last traffic then: it is not asked
  // again before newer traffic, and is closed like any other when the instance would sleep.
  std::function<bool()> park;
  std::chrono::steady_clock::time_point park_refused_at{};
  bool parking = false;  // asked to park, not yet detached: in use until it is

  // Whether the instance may ask this session to park (once it is at rest and idle long enough).
  [[nodiscard]] bool may_be_parked() const { return park && !listening && last_traffic > park_refused_at; }
};

}  // namespace pgnap::daemon
