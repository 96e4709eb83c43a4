// A session's state as PostgreSQL holds it, for parking (docs/pooling.md, "Parked sessions"):
// read from the server connection before it is detached, replayed on the next one.
//
// Captured from the server, never guessed from the SQL that went by: one query reads the
// settings whose source is the session (pg_settings, plus the role and session
// authorization, which pg_settings hides), the prepared statements (pg_prepared_statements,
// SQL-level and protocol-level, with their text and parameter types), and whether the session
// holds what cannot be moved to another connection — temporary tables, advisory locks, open
// (holdable) cursors, listened channels. A session with any of those is not parked.
//
// Restored by pipelining, in one write: a set_config() per setting (the function form of SET,
// which also takes list values such as search_path as they were displayed), each SQL-level
// PREPARE as it was sent, and a Parse per protocol-level statement under its own name with its
// parameter types, then Sync. Each step's answer says whether it failed, so the FATAL the
// client gets names what could not be restored.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "daemon/net.h"
#include "daemon/stream.h"
#include "protocol/encode.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

struct SessionSetting {
  std::string name;
  std::string value;  // as current_setting() shows it (with its unit, list values quoted)
};

struct PreparedStatementState {
  std::string name;
  std::string text;  // SQL-level: the PREPARE statement; protocol-level: the Parse's query
  bool from_sql = false;
  std::vector<std::uint32_t> parameter_types;  // OIDs, as the server resolved them
};

// Something the session holds that another connection cannot be given.
struct Unrestorable {
  std::string reason;  // the metric's label: "temporary tables", "multi-statement prepare", ...
  std::string what;    // for the log: the reason, or the statement it is about
};

struct SessionState {
  std::vector<SessionSetting> settings;  // in restore order (session authorization, role, the rest)
  std::vector<PreparedStatementState> statements;
  std::vector<Unrestorable> unrestorable;  // not empty: the session is not parked
  // The memory the parked session keeps for it (the strings' contents), for the log.
  [[nodiscard]] std::size_t bytes() const;
};

// The capture query: rows of (kind, name, value, parameter types). Every name is
// schema-qualified, so a session's search_path cannot redirect it. `custom_settings`: names
// of custom settings (`app.tenant_id`) to read with current_setting() when no loaded
// extension defines them — PostgreSQL lists those nowhere (pg_settings hides placeholders).
[[nodiscard]] std::string capture_query(std::span<const std::string> custom_settings = {});

// Adds one row of the capture query's result to `state`. `login_user`: the user the server
// connection logged in as (a session authorization equal to it is not a change). False for a
// row the query cannot produce.
bool add_captured_row(SessionState& state, const std::vector<std::optional<std::string>>& row,
                      std::string_view login_user);

struct CaptureResult {
  std::optional<SessionState> state;  // nullopt: the capture failed (`error` says why)
  std::string error;
};
// Runs the capture on a connection at rest (ReadyForQuery 'I' was its last message), which
// it leaves at rest. ParameterStatus messages update `parameters`.
[[nodiscard]] asio::awaitable<CaptureResult> capture_session_state(Stream& server, protocol::ParameterList& parameters,
                                                                   std::string_view login_user,
                                                                   std::span<const std::string> custom_settings,
                                                                   Clock::time_point deadline);

// The restore, as messages and the step each answer (a ReadyForQuery, or a ParseComplete)
// belongs to.
struct RestorePlan {
  std::string messages;
  std::vector<std::string> steps;  // "setting search_path", "prepared statement \"s1\""
  std::size_t queries = 0;         // the first `queries` steps end with their own ReadyForQuery
};
[[nodiscard]] RestorePlan restore_plan(const SessionState& state);

struct RestoreFailure {
  std::string step;  // what could not be restored, or "" when the connection failed
  protocol::ErrorResponse error;
};
// Replays `state` on a fresh connection at rest. ParameterStatus messages update
// `parameters`. nullopt on success.
[[nodiscard]] asio::awaitable<std::optional<RestoreFailure>> restore_session_state(
    Stream& server, protocol::ParameterList& parameters, const SessionState& state, Clock::time_point deadline);

}  // namespace pgnap::daemon
