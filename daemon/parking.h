// Parking an idle session of the authenticating mode (docs/pooling.md, "Parked sessions"):
// the policy around session_state.h — when a capture means the session parks, what is
// logged and counted, and what the client is told when its state cannot be restored.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "daemon/instance.h"
#include "daemon/server_login.h"
#include "daemon/session_state.h"
#include "daemon/stream.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

// The state of a parked session, counted in pgnap_parked_sessions while it is held.
class ParkedSession {
 public:
  explicit ParkedSession(metrics::InstanceMetrics& metrics) : metrics_(metrics) {}
  ~ParkedSession() { clear(); }
  ParkedSession(const ParkedSession&) = delete;
  ParkedSession& operator=(const ParkedSession&) = delete;

  [[nodiscard]] bool parked() const { return state_.has_value(); }
  [[nodiscard]] const SessionState& state() const { return *state_; }
  void park(SessionState state);
  void clear();

 private:
  metrics::InstanceMetrics& metrics_;
  std::optional<SessionState> state_;
};

struct ParkAttempt {
  enum class Outcome {
    kParked,   // `state` holds what to restore; the connection is at rest and reusable
    kRefused,  // the session holds what cannot be restored: it goes on relaying
    kFailed,   // the capture failed: the connection is not reusable, the session ends
  };
  Outcome outcome = Outcome::kFailed;
  SessionState state;
  std::string why;  // kRefused: what it holds; kFailed: what went wrong
};

// Reads the session's state from its server connection (at rest, the relay stopped), within
// the instance's connect_timeout. Logs and counts the outcome.
[[nodiscard]] asio::awaitable<ParkAttempt> try_park(Instance& instance, const std::string& context, Stream& server,
                                                    Parameters& parameters, std::string_view login_user);

// Replays a parked session's state on the server connection it resumes on. nullopt when it
// is restored; otherwise the FATAL for the client, naming what could not be restored. Logs
// and counts the outcome.
[[nodiscard]] asio::awaitable<std::optional<protocol::ErrorResponse>> resume_parked(
    Instance& instance, const std::string& context, ServerSession& server, const SessionState& state);

}  // namespace pgnap::daemon
