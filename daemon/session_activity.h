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
  // Parking (gateway-auth instances): while `parkable`, `park` asks the session to detach its
  // server connection and keep its client (false: not possible right now). A park refused
  // for what the session holds (a temporary table, ...) clears `parkable` until its next
  // traffic; such a session is then closed like any other when the instance would sleep.
  std::function<bool()> park;
  bool parkable = false;
  bool parking = false;  // asked to park, not yet detached: in use until it is
};

}  // namespace pgnap::daemon
