// The parked session's state (daemon/session_state.h): the capture's rows (a multi-statement
// PREPARE is not restorable), the restore's messages and steps, and the restore's answer read
// from a scripted server.
#include "daemon/session_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "protocol/message_scanner.h"
#include "tests/daemon/test_sockets.h"

namespace pgnap::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Row = std::vector<std::optional<std::string>>;
using namespace std::chrono_literals;

TEST(CapturedRowTest, SettingsKeepTheirOrderAndAnUnchangedSessionAuthorizationIsDropped) {
  SessionState state;
  EXPECT_TRUE(add_captured_row(state, Row{"setting", "session_authorization", "alice", std::nullopt}, "alice"));
  EXPECT_TRUE(add_captured_row(state, Row{"setting", "role", "reader", std::nullopt}, "alice"));
  EXPECT_TRUE(add_captured_row(state, Row{"setting", "search_path", "app, \"$user\"", std::nullopt}, "alice"));
  ASSERT_EQ(state.settings.size(), 2u);
  EXPECT_EQ(state.settings[0].name, "role");
  EXPECT_EQ(state.settings[1].value, "app, \"$user\"");

  SessionState other;
  EXPECT_TRUE(add_captured_row(other, Row{"setting", "session_authorization", "bob", std::nullopt}, "alice"));
  ASSERT_EQ(other.settings.size(), 1u);
  EXPECT_EQ(other.settings[0].value, "bob");
}

TEST(CapturedRowTest, StatementsKeepTheirTypesAndAMultiStatementPrepareCannotBeRestored) {
  SessionState state;
  EXPECT_TRUE(add_captured_row(state, Row{"protocol", "S_1", "select $1::int, $2", "23,25"}, "u"));
  EXPECT_TRUE(add_captured_row(state, Row{"protocol", "no_params", "select 1", ""}, "u"));
  EXPECT_TRUE(add_captured_row(state, Row{"sql", "p1", "PREPARE p1 AS select 1;", ""}, "u"));
  EXPECT_TRUE(add_captured_row(state, Row{"sql", "p2", "select 1; PREPARE p2 AS select 2", ""}, "u"));
  EXPECT_TRUE(add_captured_row(state, Row{"sql-escapes", "p3", "PREPARE p3 AS select '\\'''", ""}, "u"));
  ASSERT_EQ(state.statements.size(), 3u);
  EXPECT_THAT(state.statements[0].parameter_types, ElementsAre(23u, 25u));
  EXPECT_TRUE(state.statements[1].parameter_types.empty());
  EXPECT_TRUE(state.statements[2].from_sql);
  ASSERT_EQ(state.unrestorable.size(), 2u);
  EXPECT_THAT(state.unrestorable[0].what, HasSubstr("\"p2\""));
  EXPECT_EQ(state.unrestorable[0].reason, "multi-statement prepare");
  EXPECT_THAT(state.unrestorable[1].what, HasSubstr("standard_conforming_strings"));
  EXPECT_EQ(state.unrestorable[1].reason, "standard_conforming_strings off");
  EXPECT_GT(state.bytes(), 0u);
}

TEST(CapturedRowTest, WhatCannotBeRestoredIsNamedAndMalformedRowsAreRejected) {
  SessionState state;
  EXPECT_TRUE(add_captured_row(state, Row{"unrestorable", "temporary tables", std::nullopt, std::nullopt}, "u"));
  ASSERT_EQ(state.unrestorable.size(), 1u);
  EXPECT_EQ(state.unrestorable[0].reason, "temporary tables");
  EXPECT_EQ(state.unrestorable[0].what, "temporary tables");
  EXPECT_FALSE(add_captured_row(state, Row{"setting", "x"}, "u"));
  EXPECT_FALSE(add_captured_row(state, Row{std::nullopt, "x", "y", std::nullopt}, "u"));
  EXPECT_FALSE(add_captured_row(state, Row{"setting", "x", std::nullopt, std::nullopt}, "u"));
  EXPECT_FALSE(add_captured_row(state, Row{"protocol", "s", "select 1", "23,x"}, "u"));
  EXPECT_FALSE(add_captured_row(state, Row{"protocol", "s", "select 1", "23,"}, "u"));
  EXPECT_FALSE(add_captured_row(state, Row{"something else", "s", "v", std::nullopt}, "u"));
}

TEST(CaptureQueryTest, CustomSettingsAreAskedForByNameAsQuotedLiterals) {
  EXPECT_THAT(capture_query(), ::testing::Not(HasSubstr("unnest")));
  const std::vector<std::string> names{"app.tenant_id", "odd.na'me"};
  EXPECT_THAT(capture_query(names), HasSubstr("ARRAY['app.tenant_id', 'odd.na''me']::pg_catalog.text[]"));
}

TEST(CaptureQueryTest, EveryCatalogNameIsSchemaQualified) {
  const std::vector<std::string> names{"app.tenant_id"};
  const std::string query(capture_query(names));
  for (const char* name :
       {"pg_settings", "pg_prepared_statements", "pg_class", "pg_locks", "pg_cursors", "pg_listening_channels",
        "current_setting", "pg_my_temp_schema", "pg_backend_pid", "unnest"}) {
    std::size_t at = 0;
    while ((at = query.find(name, at)) != std::string::npos) {
      EXPECT_EQ(query.substr(at >= 11 ? at - 11 : 0, 11), "pg_catalog.") << name << " at " << at;
      at += 1;
    }
  }
}

// The frontend messages of `bytes`, as (type, body) pairs.
std::vector<std::pair<char, std::string>> messages_of(const std::string& bytes) {
  std::vector<std::pair<char, std::string>> out;
  std::size_t at = 0;
  while (at + 5 <= bytes.size()) {
    const auto length = protocol::read_u32(reinterpret_cast<const std::uint8_t*>(bytes.data()) + at + 1);
    out.emplace_back(bytes[at], bytes.substr(at + 5, length - 4));
    at += 1 + length;
  }
  EXPECT_EQ(at, bytes.size());
  return out;
}

SessionState sample_state() {
  SessionState state;
  state.settings = {{"search_path", "it's, public"}, {"work_mem", "8MB"}};
  state.statements = {{"S_1", "select $1::int", false, {23}},
                      {"by_sql", "PREPARE by_sql AS select 2", true, {}},
                      {"S_2", "select 3", false, {}}};
  return state;
}

TEST(RestorePlanTest, SettingsThenSqlStatementsAsQueriesThenParsesUnderTheirNamesAndOneSync) {
  const RestorePlan plan = restore_plan(sample_state());
  EXPECT_THAT(plan.steps, ElementsAre("setting search_path", "setting work_mem", "prepared statement \"by_sql\"",
                                      "prepared statement \"S_1\"", "prepared statement \"S_2\""));
  EXPECT_EQ(plan.queries, 3u);
  const auto m = messages_of(plan.messages);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].first, 'Q');
  EXPECT_THAT(m[0].second, HasSubstr("pg_catalog.set_config('search_path', 'it''s, public', false)"));
  EXPECT_EQ(m[2].first, 'Q');
  EXPECT_THAT(m[2].second, HasSubstr("PREPARE by_sql AS select 2"));
  EXPECT_EQ(m[3].first, 'P');
  // Parse: name, query, then the parameter types (count 1, OID 23).
  EXPECT_EQ(m[3].second, std::string("S_1\0select $1::int\0", 19) + std::string("\0\1\0\0\0\x17", 6));
  EXPECT_EQ(m[5].first, 'S');
}

TEST(RestorePlanTest, NothingToRestoreIsNoMessageAndOnlyQueriesNeedNoSync) {
  EXPECT_TRUE(restore_plan(SessionState{}).messages.empty());
  SessionState only_settings;
  only_settings.settings = {{"work_mem", "8MB"}};
  const auto m = messages_of(restore_plan(only_settings).messages);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].first, 'Q');
}

using test_support::message;

std::string ready() { return message('Z', "I"); }
std::string error(const std::string& code, const std::string& text) {
  return message('E', std::string("SERROR\0C", 8) + code + std::string("\0M", 2) + text + std::string("\0\0", 2));
}

// Runs `call` (a coroutine given the client's Stream, returning T) against a server that
// reads `request_size` bytes, answers with `answers`, and closes.
template <typename T, typename Call>
T against_server(std::size_t request_size, const std::string& answers, Call call) {
  asio::io_context io;
  auto [ours, theirs] = test_support::socket_pair(io);
  Stream stream(std::move(ours));
  T result{};
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        (void)co_await test_support::read_exactly(theirs, request_size);
        (void)co_await test_support::send(theirs, answers);
        theirs.close();
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result = co_await call(stream);
        done = true;
      },
      asio::detached);
  io.run_for(10s);
  EXPECT_TRUE(done);
  return result;
}

// The restore of sample_state() against a server that answers with `answers`.
std::optional<RestoreFailure> restore_against(const std::string& answers, protocol::ParameterList& parameters) {
  // (Named: a coroutine keeps references to its arguments, never a temporary's.)
  const SessionState state = sample_state();
  return against_server<std::optional<RestoreFailure>>(
      restore_plan(state).messages.size(), answers,
      [&](Stream& stream) { return restore_session_state(stream, parameters, state, Clock::now() + 5s); });
}

// A capture (no custom settings, logged in as "alice") against a server that answers with
// `answers`.
CaptureResult capture_against(const std::string& answers, protocol::ParameterList& parameters) {
  return against_server<CaptureResult>(protocol::encode_query(capture_query()).size(), answers, [&](Stream& stream) {
    return capture_session_state(stream, parameters, "alice", {}, Clock::now() + 5s);
  });
}

std::string data_row(std::initializer_list<std::optional<std::string>> columns) {
  std::string body;
  protocol::append_u16(body, static_cast<std::uint16_t>(columns.size()));
  for (const auto& column : columns) {
    if (!column) {
      protocol::append_u32(body, 0xffffffffu);
      continue;
    }
    protocol::append_u32(body, static_cast<std::uint32_t>(column->size()));
    body += *column;
  }
  return message('D', body);
}

TEST(CaptureTest, RowsBecomeTheStateAndParameterChangesAndNoticesAreTakenOnTheWay) {
  protocol::ParameterList parameters;
  const std::string answers =
      message('T', std::string("\0\0", 2)) + data_row({"setting", "session_authorization", "alice", std::nullopt}) +
      data_row({"setting", "work_mem", "8MB", std::nullopt}) + message('N', std::string("SNOTICE\0\0", 9)) +
      message('S', std::string("TimeZone\0UTC\0", 13)) + data_row({"protocol", "S_1", "select $1", "23"}) +
      message('C', std::string("SELECT 3\0", 9)) + ready();
  const auto captured = capture_against(answers, parameters);
  ASSERT_TRUE(captured.state.has_value()) << captured.error;
  ASSERT_EQ(captured.state->settings.size(), 1u) << "alice's own session authorization is no change";
  EXPECT_EQ(captured.state->settings[0].name, "work_mem");
  ASSERT_EQ(captured.state->statements.size(), 1u);
  EXPECT_EQ(captured.state->statements[0].name, "S_1");
  ASSERT_NE(protocol::find_parameter(parameters, "TimeZone"), nullptr);
}

TEST(CaptureTest, AnErrorARowItCannotReadOrATransactionLeftOpenIsAFailedCapture) {
  protocol::ParameterList parameters;
  const auto refused = capture_against(error("42501", "permission denied for view pg_locks") + ready(), parameters);
  EXPECT_FALSE(refused.state.has_value());
  EXPECT_THAT(refused.error, HasSubstr("42501 permission denied"));
  const auto odd = capture_against(data_row({"something", "x", "y", std::nullopt}) + ready(), parameters);
  EXPECT_FALSE(odd.state.has_value());
  EXPECT_THAT(odd.error, HasSubstr("does not understand"));
  const auto open = capture_against(message('Z', "T"), parameters);
  EXPECT_FALSE(open.state.has_value());
  EXPECT_THAT(open.error, HasSubstr("transaction"));
  const auto gone = capture_against("", parameters);
  EXPECT_FALSE(gone.state.has_value());
  EXPECT_THAT(gone.error, HasSubstr("connection failed"));
}

std::string all_ok() {
  return message('T', std::string("\0\0", 2)) + message('C', std::string("SELECT 1\0", 9)) + ready() +
         message('S', std::string("search_path\0app\0", 16)) + ready() + message('C', std::string("PREPARE\0", 8)) +
         ready() + message('1', "") + message('1', "") + ready();
}

TEST(RestoreTest, AllStepsAnsweredIsSuccessAndParameterChangesAreKept) {
  protocol::ParameterList parameters;
  EXPECT_FALSE(restore_against(all_ok(), parameters).has_value());
  ASSERT_NE(protocol::find_parameter(parameters, "search_path"), nullptr);
  EXPECT_EQ(*protocol::find_parameter(parameters, "search_path"), "app");
}

TEST(RestoreTest, AFailedStepIsNamedWithTheServersError) {
  protocol::ParameterList parameters;
  // The second setting fails; the rest goes on as PostgreSQL would answer it.
  const std::string answers = ready() + error("22023", "invalid value for parameter \"work_mem\"") + ready() + ready() +
                              message('1', "") + message('1', "") + ready();
  const auto failure = restore_against(answers, parameters);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->step, "setting work_mem");
  EXPECT_EQ(failure->error.sqlstate, "22023");

  // A Parse fails: PostgreSQL skips to the Sync.
  const std::string parse_fails = ready() + ready() + ready() + message('1', "") +
                                  error("42P01", "relation \"t\" does not exist") + ready();
  const auto second = restore_against(parse_fails, parameters);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->step, "prepared statement \"S_2\"");
  EXPECT_EQ(second->error.sqlstate, "42P01");
}

TEST(RestoreTest, AConnectionThatClosesOrLeavesATransactionIsABrokenRestore) {
  protocol::ParameterList parameters;
  const auto closed = restore_against(ready(), parameters);  // then EOF when the server side closes
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->step, "");
  EXPECT_EQ(closed->error.sqlstate, "08006");
  const auto in_transaction = restore_against(
      ready() + ready() + ready() + message('1', "") + message('1', "") + message('Z', "T"), parameters);
  ASSERT_TRUE(in_transaction.has_value());
  EXPECT_THAT(in_transaction->error.message, HasSubstr("transaction"));
}

}  // namespace
}  // namespace pgnap::daemon
