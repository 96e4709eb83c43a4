#include "daemon/parking.h"

#include "daemon/log.h"

namespace pgnap::daemon {

namespace {

std::string describe(const std::vector<Unrestorable>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item.what;
  return out;
}

}  // namespace

void ParkedSession::park(SessionState state) {
  if (!state_) ++metrics_.parked_sessions;
  state_ = std::move(state);
}

void ParkedSession::clear() {
  if (!state_) return;
  state_.reset();
  if (metrics_.parked_sessions > 0) --metrics_.parked_sessions;
}

asio::awaitable<ParkAttempt> try_park(Instance& instance, const std::string& context, Stream& server,
                                      Parameters& parameters, std::string_view login_user) {
  auto& metrics = instance.metrics();
  const auto started = Clock::now();
  const auto& config = instance.config();
  auto captured = co_await capture_session_state(server, parameters, login_user, config.park_custom_settings,
                                                 started + config.connect_timeout);
  ParkAttempt attempt;
  if (!captured.state) {
    ++metrics.parks_refused["capture failed"];
    attempt.why = std::move(captured.error);
    PGNAP_LOG(kInfo, context, "could not park the idle session: " << attempt.why);
    co_return attempt;
  }
  if (!captured.state->unrestorable.empty()) {
    // Counted by the first reason found (a reason, never a statement's name: one series each).
    ++metrics.parks_refused[captured.state->unrestorable.front().reason];
    attempt.outcome = ParkAttempt::Outcome::kRefused;
    attempt.why = describe(captured.state->unrestorable);
    PGNAP_LOG(kDebug, context, "not parking the idle session: it holds " << attempt.why);
    co_return attempt;
  }
  attempt.outcome = ParkAttempt::Outcome::kParked;
  attempt.state = std::move(*captured.state);
  ++metrics.session_parks;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  PGNAP_LOG(kDebug, context,
            "parked: " << attempt.state.settings.size() << " setting(s), " << attempt.state.statements.size()
                       << " prepared statement(s), " << attempt.state.bytes() << " bytes kept (capture " << us
                       << " us)");
  co_return attempt;
}

asio::awaitable<std::optional<protocol::ErrorResponse>> resume_parked(
    Instance& instance, const std::string& context, ServerSession& server, const SessionState& state) {
  auto& metrics = instance.metrics();
  const auto failure = co_await restore_session_state(server.connection.stream, server.parameters, state,
                                                      Clock::now() + instance.config().connect_timeout);
  if (!failure) {
    ++metrics.session_resumes;
    PGNAP_LOG(kDebug, context, "resumed on " << server.key.process_id);
    co_return std::nullopt;
  }
  ++metrics.session_restore_failures;
  const std::string what = failure->step.empty() ? "the server connection failed" : failure->step;
  PGNAP_LOG(kInfo, context,
            "could not restore the parked session's " << what << ": " << failure->error.sqlstate << " "
                                                      << failure->error.message);
  protocol::ErrorResponse fatal{
      "FATAL", failure->error.sqlstate,
      failure->step.empty() ? "could not resume the parked session: " + failure->error.message
                            : "could not restore the parked session's " + failure->step,
      failure->step.empty() ? std::string() : "PostgreSQL said: " + failure->error.message,
      "The session was parked while idle and its state could not be restored on a new server connection. "
      "Reconnect to start a new session."};
  metrics.client_error(fatal.sqlstate);
  co_return fatal;
}

}  // namespace pgnap::daemon
