#include "daemon/session_state.h"

#include <charconv>

#include "daemon/message_reader.h"
#include "protocol/sql_text.h"

namespace pgnap::daemon {

namespace {

namespace msg = protocol::backend_msg;

// The capture's answer is the session's settings and statement texts: bounded, but an app
// may prepare many long statements.
constexpr std::uint32_t kMaxCaptureMessage = 64u << 20;

constexpr std::string_view kCaptureHead =
    "SELECT kind, name, value, types FROM ("
    "SELECT 1 AS o, 'setting' AS kind, 'session_authorization' AS name,"
    " CAST(session_user AS pg_catalog.text) AS value, NULL::pg_catalog.text AS types"
    " UNION ALL SELECT 2, 'setting', 'role', pg_catalog.current_setting('role'), NULL"
    " WHERE pg_catalog.current_setting('role') <> 'none'"
    " UNION ALL SELECT 3, 'setting', s.name, pg_catalog.current_setting(s.name), NULL"
    " FROM pg_catalog.pg_settings s WHERE s.source = 'session'";
// (Then the custom settings asked for by name, if any.)
constexpr std::string_view kCaptureTail =
    // A PREPARE's text is checked for one statement as PostgreSQL lexes it with
    // standard_conforming_strings on; with it off, backslashes escape quotes in '' strings.
    " UNION ALL SELECT 4, CASE WHEN NOT p.from_sql THEN 'protocol'"
    " WHEN pg_catalog.current_setting('standard_conforming_strings') = 'on' THEN 'sql' ELSE 'sql-escapes' END,"
    " p.name, p.statement,"
    " pg_catalog.array_to_string(CAST(p.parameter_types AS pg_catalog.oid[]), ',')"
    " FROM pg_catalog.pg_prepared_statements p"
    " UNION ALL SELECT 5, 'unrestorable', 'temporary tables', NULL, NULL WHERE EXISTS"
    " (SELECT FROM pg_catalog.pg_class c WHERE c.relnamespace = pg_catalog.pg_my_temp_schema())"
    " UNION ALL SELECT 5, 'unrestorable', 'advisory locks', NULL, NULL WHERE EXISTS"
    " (SELECT FROM pg_catalog.pg_locks l WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'advisory')"
    " UNION ALL SELECT 5, 'unrestorable', 'open cursors', NULL, NULL WHERE EXISTS"
    " (SELECT FROM pg_catalog.pg_cursors)"
    " UNION ALL SELECT 5, 'unrestorable', 'listened channels', NULL, NULL WHERE EXISTS"
    " (SELECT FROM pg_catalog.pg_listening_channels())"
    ") AS state ORDER BY o";

std::optional<std::vector<std::uint32_t>> parse_oids(std::string_view list) {
  std::vector<std::uint32_t> out;
  if (list.empty()) return out;
  for (;;) {
    const auto comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    std::uint32_t oid = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), oid);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size()) return std::nullopt;
    out.push_back(oid);
    if (comma == std::string_view::npos) return out;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

std::size_t SessionState::bytes() const {
  std::size_t n = 0;
  for (const auto& s : settings) n += s.name.size() + s.value.size();
  for (const auto& p : statements) n += p.name.size() + p.text.size() + p.parameter_types.size() * 4;
  return n;
}

std::string capture_query(std::span<const std::string> custom_settings) {
  std::string query(kCaptureHead);
  if (!custom_settings.empty()) {
    std::string names;
    for (const auto& name : custom_settings) names += (names.empty() ? "" : ", ") + protocol::sql_literal(name);
    query +=
        " UNION ALL SELECT 3, 'setting', n, pg_catalog.current_setting(n, true), NULL"
        " FROM pg_catalog.unnest(ARRAY[" +
        names +
        "]::pg_catalog.text[]) AS n"
        " WHERE pg_catalog.current_setting(n, true) IS NOT NULL"
        " AND NOT EXISTS (SELECT FROM pg_catalog.pg_settings s WHERE s.name = n)";
  }
  query += kCaptureTail;
  return query;
}

bool add_captured_row(SessionState& state, const std::vector<std::optional<std::string>>& row,
                      std::string_view login_user) {
  if (row.size() != 4 || !row[0] || !row[1]) return false;
  const std::string& kind = *row[0];
  const std::string& name = *row[1];
  if (kind == "setting") {
    if (!row[2]) return false;
    if (name == "session_authorization" && *row[2] == login_user) return true;  // unchanged
    state.settings.push_back(SessionSetting{name, *row[2]});
    return true;
  }
  if (kind == "sql-escapes") {
    state.unrestorable.push_back({"standard_conforming_strings off",
                                  "prepared statement \"" + name + "\" (standard_conforming_strings is off)"});
    return true;
  }
  if (kind == "sql" || kind == "protocol") {
    if (!row[2]) return false;
    const auto types = parse_oids(row[3].value_or(""));
    if (!types) return false;
    const bool from_sql = kind == "sql";
    // A PREPARE recorded with the text of a whole multi-statement query cannot be replayed.
    if (from_sql && !protocol::is_single_statement(*row[2])) {
      state.unrestorable.push_back({"multi-statement prepare",
                                    "prepared statement \"" + name + "\" (prepared in a multi-statement query)"});
      return true;
    }
    state.statements.push_back(PreparedStatementState{name, *row[2], from_sql, *types});
    return true;
  }
  if (kind == "unrestorable") {
    state.unrestorable.push_back({name, name});
    return true;
  }
  return false;
}

asio::awaitable<CaptureResult> capture_session_state(Stream& server, protocol::ParameterList& parameters,
                                                     std::string_view login_user,
                                                     std::span<const std::string> custom_settings,
                                                     Clock::time_point deadline) {
  CaptureResult result;
  const std::string query = protocol::encode_query(capture_query(custom_settings));
  if (const auto ec = co_await write_all(server, query, deadline); ec) {
    result.error = "sending the capture query failed: " + ec.message();
    co_return result;
  }
  MessageReader reader(server, kMaxCaptureMessage);
  SessionState state;
  std::string failure;
  for (;;) {
    const auto read = co_await next_answer(reader, parameters, deadline);
    if (read.status != MessageReader::Status::kMessage) {
      result.error = read.status == MessageReader::Status::kTimedOut ? "the capture query did not finish in time"
                                                                     : "the connection failed during the capture query";
      co_return result;
    }
    switch (read.frame.type) {
      case msg::kDataRow: {
        const auto row = protocol::parse_data_row(read.frame.body);
        if (failure.empty() && (!row || !add_captured_row(state, *row, login_user))) {
          failure = "the capture query returned a row pgnap does not understand";
        }
        break;
      }
      case msg::kErrorResponse: {
        const auto fields = protocol::parse_error_response(read.frame.body);
        failure = "the capture query failed: " + (fields ? fields->sqlstate + " " + fields->message : "an error");
        break;
      }
      case msg::kReadyForQuery: {
        const auto status = protocol::parse_ready_for_query_body(read.frame.body);
        if (failure.empty() && status != 'I') failure = "the capture query left the connection in a transaction";
        if (failure.empty() && reader.buffered() > 0) failure = "unexpected data after the capture query";
        if (!failure.empty()) {
          result.error = std::move(failure);
          co_return result;
        }
        result.state = std::move(state);
        co_return result;
      }
      default:  // RowDescription, CommandComplete
        break;
    }
  }
}

RestorePlan restore_plan(const SessionState& state) {
  RestorePlan plan;
  for (const auto& setting : state.settings) {
    plan.messages += protocol::encode_query("SELECT pg_catalog.set_config(" + protocol::sql_literal(setting.name) +
                                            ", " + protocol::sql_literal(setting.value) + ", false)");
    plan.steps.push_back("setting " + setting.name);
  }
  for (const auto& statement : state.statements) {
    if (!statement.from_sql) continue;
    plan.messages += protocol::encode_query(statement.text);
    plan.steps.push_back("prepared statement \"" + statement.name + "\"");
  }
  plan.queries = plan.steps.size();
  bool any_parse = false;
  for (const auto& statement : state.statements) {
    if (statement.from_sql) continue;
    plan.messages += protocol::encode_parse(statement.name, statement.text, statement.parameter_types);
    plan.steps.push_back("prepared statement \"" + statement.name + "\"");
    any_parse = true;
  }
  if (any_parse) plan.messages += protocol::encode_sync();
  return plan;
}

asio::awaitable<std::optional<RestoreFailure>> restore_session_state(
    Stream& server, protocol::ParameterList& parameters, const SessionState& state, Clock::time_point deadline) {
  const RestorePlan plan = restore_plan(state);
  if (plan.messages.empty()) co_return std::nullopt;
  auto broken = [](std::string why) {
    return RestoreFailure{{}, protocol::ErrorResponse{"FATAL", "08006", std::move(why), {}, {}}};
  };
  if (const auto ec = co_await write_all(server, plan.messages, deadline); ec) {
    co_return broken("sending the restore failed: " + ec.message());
  }
  MessageReader reader(server, 1 << 20);
  // Each query ends with a ReadyForQuery, and so does the Sync after the Parses.
  const std::size_t readies = plan.queries + (plan.steps.size() > plan.queries ? 1 : 0);
  std::size_t ready = 0;
  std::size_t step = 0;  // the step the next answer belongs to
  std::optional<RestoreFailure> failure;
  for (;;) {
    const auto read = co_await next_answer(reader, parameters, deadline);
    if (read.status != MessageReader::Status::kMessage) {
      co_return broken(read.status == MessageReader::Status::kTimedOut ? "the restore did not finish in time"
                                                                       : "the connection failed during the restore");
    }
    switch (read.frame.type) {
      case msg::kErrorResponse:
        if (!failure) {
          auto fields = protocol::parse_error_response(read.frame.body);
          failure = RestoreFailure{step < plan.steps.size() ? plan.steps[step] : "the session",
                                   fields ? *fields : protocol::ErrorResponse{"ERROR", "XX000", "an error", {}, {}}};
        }
        break;
      case protocol::backend_msg::kParseComplete: ++step; break;
      case msg::kReadyForQuery: {
        if (step < plan.queries) ++step;  // a query's end
        if (++ready < readies) break;
        if (!failure && protocol::parse_ready_for_query_body(read.frame.body) != 'I') {
          co_return broken("the restore left the connection in a transaction");
        }
        if (!failure && reader.buffered() > 0) co_return broken("unexpected data after the restore");
        co_return failure;
      }
      default:  // rows of set_config, CommandComplete
        break;
    }
  }
}

}  // namespace pgnap::daemon
