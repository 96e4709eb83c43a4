// The relay of an established session between two socket pairs: the test plays the client
// on one and PostgreSQL on the other. Each check of the relay's state follows the peer's
// read of the bytes that should have changed it: the relay scans bytes before it forwards
// them, so once the far peer has them the state is settled, whatever the scheduling.
#include "daemon/relay.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/socket.h>

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "protocol/encode.h"
#include "tests/daemon/test_sockets.h"

namespace pgnap::daemon {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using namespace boost::asio::experimental::awaitable_operators;
using namespace test_support;
using Why = RelayEnd::Why;

constexpr std::uint32_t kMaxClientMessage = 1 << 20;

// ---- frontend messages ----
std::string query(const std::string& sql) { return message('Q', sql + '\0'); }
std::string parse(const std::string& sql) { return message('P', "\0"s + sql + '\0' + "\0\0"s); }
// Unnamed portal and statement, no formats, no parameters, no result formats.
std::string bind() { return message('B', "\0\0\0\0\0\0\0\0"s); }
std::string execute() { return message('E', "\0\0\0\0\0"s); }
std::string sync() { return message('S', ""); }
std::string terminate() { return message('X', ""); }

// ---- backend messages ----
std::string ready_for_query(char status) { return message('Z', std::string(1, status)); }
std::string command_complete(const std::string& tag) { return message('C', tag + '\0'); }
std::string parse_complete() { return message('1', ""); }
std::string bind_complete() { return message('2', ""); }
std::string data_row(const std::string& value) {
  std::string body;
  body += "\0\x01"s;
  protocol::append_u32(body, static_cast<std::uint32_t>(value.size()));
  body += value;
  return message('D', body);
}
std::string backend_key_data(std::uint32_t pid, std::uint32_t secret) {
  std::string body;
  protocol::append_u32(body, pid);
  protocol::append_u32(body, secret);
  return message('K', body);
}
std::string notification(std::uint32_t pid, const std::string& channel, const std::string& payload) {
  std::string body;
  protocol::append_u32(body, pid);
  body += channel + '\0' + payload + '\0';
  return message('A', body);
}
std::string error_response(const std::string& code, const std::string& text) {
  const protocol::ErrorResponse error{"FATAL", code, text, {}, {}};
  return protocol::encode_error_response(error);
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 31 + seed) % 251);
  return out;
}

struct RelayTest : ::testing::Test {
  asio::io_context io;
  Socket client{io};  // the test's ends
  Socket server{io};
  std::optional<Stream> client_side;  // the relay's ends
  std::optional<Stream> server_side;
  std::vector<protocol::BackendKeyData> keys;
  std::uint64_t bytes_to_server = 0;
  std::uint64_t bytes_to_client = 0;
  std::optional<Relay> relay;
  std::optional<RelayEnd> end;

  RelayTest() {
    auto [c, cs] = socket_pair(io);
    client = std::move(c);
    client_side.emplace(std::move(cs));
    auto [ss, s] = socket_pair(io);
    server = std::move(s);
    server_side.emplace(std::move(ss));
    relay.emplace(
        *client_side, *server_side, kMaxClientMessage,
        [this](const protocol::BackendKeyData& key) { keys.push_back(key); },
        RelayCounters{&bytes_to_server, &bytes_to_client});
  }

  SessionActivity& activity() { return relay->activity(); }

  // Runs the relay beside `script` until both end. The script must end the relay (close a
  // side, call close_idle(), send something it refuses) and may wait for that with
  // wait_for_end().
  template <typename Script>
  void run(Script script) {
    bool scripted = false;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { end = co_await relay->run(); },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await script();
          scripted = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run_for(20s);
    ASSERT_TRUE(scripted) << "the script did not finish";
    ASSERT_TRUE(end.has_value()) << "the relay did not end";
  }

  asio::awaitable<void> wait_for_end() {
    while (!end) co_await sleep_for(1ms);
  }

  // The client sends `bytes`; returns what PostgreSQL received.
  asio::awaitable<std::string> to_server(const std::string& bytes) {
    const std::size_t n = bytes.size();
    if (!co_await send(client, bytes)) co_return std::string();
    co_return co_await read_exactly(server, n);
  }
  // PostgreSQL sends `bytes`; returns what the client received.
  asio::awaitable<std::string> to_client(const std::string& bytes) {
    const std::size_t n = bytes.size();
    if (!co_await send(server, bytes)) co_return std::string();
    co_return co_await read_exactly(client, n);
  }
};

// ---- bytes ----

TEST_F(RelayTest, BytesPassUnchangedBothWays) {
  run([&]() -> asio::awaitable<void> {
    const std::string up = query("SELECT 1") + parse("SELECT $1") + bind() + execute() + sync();
    EXPECT_EQ(co_await to_server(up), up);
    const std::string down = message('T', "\0\0"s) + data_row("1") + command_complete("SELECT 1") +
                             ready_for_query('I');
    EXPECT_EQ(co_await to_client(down), down);
    relay->close_idle();
  });
  EXPECT_EQ(end->why, Why::kIdleClosed);
}

TEST_F(RelayTest, LargeTransfersBothWaysAtOncePassUnchanged) {
  // Larger than a socket buffer, so that writes are partial and each direction waits for
  // its destination (backpressure) while the other keeps flowing.
  run([&]() -> asio::awaitable<void> {
    const std::string up = query(pattern(600 * 1024, 1));
    std::string down;
    for (int i = 0; i < 100; ++i) down += data_row(pattern(8 * 1024, static_cast<unsigned>(i)));
    down += ready_for_query('I');
    std::string at_server;
    std::string at_client;
    auto client_sends = [&]() -> asio::awaitable<void> { EXPECT_TRUE(co_await send(client, up)); };
    auto server_reads = [&]() -> asio::awaitable<void> { at_server = co_await read_exactly(server, up.size()); };
    auto server_sends = [&]() -> asio::awaitable<void> { EXPECT_TRUE(co_await send(server, down)); };
    auto client_reads = [&]() -> asio::awaitable<void> { at_client = co_await read_exactly(client, down.size()); };
    co_await (client_sends() && server_reads() && server_sends() && client_reads());
    EXPECT_TRUE(at_server == up) << "client to server: " << at_server.size() << " of " << up.size() << " bytes";
    EXPECT_TRUE(at_client == down) << "server to client: " << at_client.size() << " of " << down.size() << " bytes";
    relay->close_idle();
  });
  EXPECT_EQ(end->why, Why::kIdleClosed);
}

TEST_F(RelayTest, TheCountersCountTheBytesOfEachDirection) {
  const std::string up = query("SELECT 42");
  const std::string down = data_row("42") + command_complete("SELECT 1") + ready_for_query('I');
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(up);
    (void)co_await to_client(down);
    relay->close_idle();
  });
  EXPECT_EQ(bytes_to_server, up.size());
  EXPECT_EQ(bytes_to_client, down.size());
}

// ---- activity ----

TEST_F(RelayTest, NoTrafficLeavesLastTrafficUnsetAndTheSessionNotAtRest) {
  run([&]() -> asio::awaitable<void> {
    co_await sleep_for(1ms);  // let the relay start and find nothing to read
    relay->close_idle();
  });
  EXPECT_EQ(activity().last_traffic, Clock::time_point{});
  EXPECT_FALSE(activity().at_rest) << "nothing said 'I' yet";
  EXPECT_FALSE(activity().listening);
  EXPECT_EQ(end->why, Why::kIdleClosed);
}

TEST_F(RelayTest, TrafficInEitherDirectionMovesLastTraffic) {
  run([&]() -> asio::awaitable<void> {
    const auto before_up = Clock::now();
    (void)co_await to_server(query("SELECT 1"));
    const auto after_up = activity().last_traffic;
    EXPECT_GE(after_up, before_up);
    const auto before_down = Clock::now();
    (void)co_await to_client(ready_for_query('I'));
    EXPECT_GE(activity().last_traffic, before_down);
    relay->close_idle();
  });
}

TEST_F(RelayTest, AQueryIsNotAtRestUntilTheServerSaysReadyForQueryIdle) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));  // the end of authentication
    EXPECT_TRUE(activity().at_rest);
    EXPECT_EQ(relay->transaction_status(), 'I');

    (void)co_await to_server(query("SELECT pg_sleep(1)"));
    EXPECT_FALSE(activity().at_rest) << "the query is running";
    (void)co_await to_client(message('T', "\0\0"s) + data_row("x") + command_complete("SELECT 1"));
    EXPECT_FALSE(activity().at_rest) << "answered, but not ready yet";
    (void)co_await to_client(ready_for_query('I'));
    EXPECT_TRUE(activity().at_rest);
    relay->close_idle();
  });
}

TEST_F(RelayTest, InsideATransactionTheSessionIsNotAtRest) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    (void)co_await to_server(query("BEGIN"));
    (void)co_await to_client(command_complete("BEGIN") + ready_for_query('T'));
    EXPECT_FALSE(activity().at_rest);
    EXPECT_EQ(relay->transaction_status(), 'T');
    (void)co_await to_server(query("SELECT 1/0"));
    (void)co_await to_client(error_response("22012", "division by zero") + ready_for_query('E'));
    EXPECT_FALSE(activity().at_rest) << "a failed transaction is still a transaction";
    EXPECT_EQ(relay->transaction_status(), 'E');
    (void)co_await to_server(query("ROLLBACK"));
    (void)co_await to_client(command_complete("ROLLBACK") + ready_for_query('I'));
    EXPECT_TRUE(activity().at_rest);
    relay->close_idle();
  });
}

TEST_F(RelayTest, PipelinedQueriesAreAtRestOnlyAfterTheLastReadyForQuery) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    (void)co_await to_server(query("SELECT 1") + query("SELECT 2"));
    (void)co_await to_client(command_complete("SELECT 1") + ready_for_query('I'));
    EXPECT_FALSE(activity().at_rest) << "the second query is not answered yet";
    (void)co_await to_client(command_complete("SELECT 1") + ready_for_query('I'));
    EXPECT_TRUE(activity().at_rest);
    relay->close_idle();
  });
}

TEST_F(RelayTest, AnExtendedBatchWithoutSyncIsNotAtRestAndIsAfterSyncAndReadyForQuery) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    EXPECT_TRUE(activity().at_rest);
    (void)co_await to_server(parse("SELECT 1") + bind() + execute());
    EXPECT_FALSE(activity().at_rest);
    (void)co_await to_client(parse_complete() + bind_complete() + data_row("1") + command_complete("SELECT 1"));
    EXPECT_FALSE(activity().at_rest) << "no Sync yet: the batch is open";
    (void)co_await to_server(sync());
    EXPECT_FALSE(activity().at_rest) << "the Sync is not answered yet";
    (void)co_await to_client(ready_for_query('I'));
    EXPECT_TRUE(activity().at_rest);
    relay->close_idle();
  });
}

TEST_F(RelayTest, AReadyForQueryAnsweringAnEarlierQueryLeavesAnUnsyncedBatchNotAtRest) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    (void)co_await to_server(query("SELECT 1") + parse("SELECT 2") + bind() + execute());
    (void)co_await to_client(command_complete("SELECT 1") + ready_for_query('I'));
    EXPECT_FALSE(activity().at_rest) << "the extended batch after the query has no Sync yet";
    (void)co_await to_server(sync());
    (void)co_await to_client(parse_complete() + bind_complete() + command_complete("SELECT 1") + ready_for_query('I'));
    EXPECT_TRUE(activity().at_rest);
    relay->close_idle();
  });
}

TEST_F(RelayTest, ACommandCompleteListenSetsListeningAndDiscardAllClearsIt) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(query("LISTEN jobs"));
    EXPECT_FALSE(activity().listening) << "not until it completes";
    (void)co_await to_client(command_complete("LISTEN") + ready_for_query('I'));
    EXPECT_TRUE(activity().listening);
    (void)co_await to_server(query("SELECT 1"));
    (void)co_await to_client(command_complete("SELECT 1") + ready_for_query('I'));
    EXPECT_TRUE(activity().listening) << "other commands leave it listening";
    (void)co_await to_server(query("DISCARD ALL"));
    (void)co_await to_client(command_complete("DISCARD ALL") + ready_for_query('I'));
    EXPECT_FALSE(activity().listening);
    relay->close_idle();
  });
}

TEST_F(RelayTest, ACommandCompleteUnlistenDoesNotSetListening) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(query("UNLISTEN *"));
    (void)co_await to_client(command_complete("UNLISTEN") + ready_for_query('I'));
    EXPECT_FALSE(activity().listening);
    relay->close_idle();
  });
}

TEST_F(RelayTest, ANotificationSetsListening) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    EXPECT_FALSE(activity().listening);
    (void)co_await to_client(notification(4242, "jobs", "new"));
    EXPECT_TRUE(activity().listening);
    EXPECT_TRUE(activity().at_rest) << "a notification is not a query in flight";
    relay->close_idle();
  });
}

// ---- what the relay reports ----

TEST_F(RelayTest, BackendKeyDataReachesTheCallbackAndTheClient) {
  run([&]() -> asio::awaitable<void> {
    const std::string key = backend_key_data(4242, 0xdeadbeef);
    EXPECT_EQ(co_await to_client(key), key);
    relay->close_idle();
  });
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].process_id, 4242u);
  EXPECT_EQ(keys[0].secret_key, 0xdeadbeefu);
}

TEST_F(RelayTest, BackendKeyDataSplitAcrossReadsIsReportedOnceWhole) {
  run([&]() -> asio::awaitable<void> {
    const std::string key = backend_key_data(0x01020304, 0x0a0b0c0d);
    (void)co_await to_client(key.substr(0, 7));
    EXPECT_TRUE(keys.empty()) << "only half of it has passed";
    (void)co_await to_client(key.substr(7));
    relay->close_idle();
  });
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].process_id, 0x01020304u);
  EXPECT_EQ(keys[0].secret_key, 0x0a0b0c0du);
}

TEST_F(RelayTest, TheClientStreamIsAtABoundaryOnlyBetweenServerMessages) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(relay->client_stream_at_boundary());
    const std::string row = data_row("a value split in two");
    (void)co_await to_client(row.substr(0, 9));
    EXPECT_FALSE(relay->client_stream_at_boundary());
    (void)co_await to_client(row.substr(9));
    EXPECT_TRUE(relay->client_stream_at_boundary());
    relay->close_idle();
  });
}

// ---- how it ends ----

TEST_F(RelayTest, AClientMessageOverTheMaximumEndsWithClientTooLargeAndIsNotForwarded) {
  run([&]() -> asio::awaitable<void> {
    std::string header(1, 'Q');
    protocol::append_u32(header, kMaxClientMessage + 1);
    CO_ASSERT_TRUE(co_await send(client, header));
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kClientTooLarge);
  EXPECT_EQ(server.available(), 0u);
  EXPECT_EQ(bytes_to_server, 0u);
}

TEST_F(RelayTest, AClientMessageOfExactlyTheMaximumIsRelayed) {
  run([&]() -> asio::awaitable<void> {
    const std::string big = message('d', pattern(kMaxClientMessage - 4, 7));
    std::string at_server;
    auto client_sends = [&]() -> asio::awaitable<void> { EXPECT_TRUE(co_await send(client, big)); };
    auto server_reads = [&]() -> asio::awaitable<void> { at_server = co_await read_exactly(server, big.size()); };
    co_await (client_sends() && server_reads());
    EXPECT_TRUE(at_server == big) << at_server.size() << " of " << big.size() << " bytes";
    relay->close_idle();
  });
  EXPECT_EQ(end->why, Why::kIdleClosed);
}

TEST_F(RelayTest, AClientLengthBelowFourEndsWithClientProtocol) {
  run([&]() -> asio::awaitable<void> {
    std::string header(1, 'Q');
    protocol::append_u32(header, 3);
    CO_ASSERT_TRUE(co_await send(client, header));
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kClientProtocol);
  EXPECT_EQ(server.available(), 0u);
}

TEST_F(RelayTest, TheClientClosingEndsWithClientClosed) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    client.close();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kClientClosed);
  EXPECT_FALSE(relay->client_terminated());
}

TEST_F(RelayTest, ATerminateThenCloseEndsWithClientClosedAndIsRemembered) {
  run([&]() -> asio::awaitable<void> {
    const std::string x = terminate();
    EXPECT_EQ(co_await to_server(x), x) << "Terminate is forwarded to PostgreSQL";
    EXPECT_TRUE(relay->client_terminated());
    client.close();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kClientClosed);
  EXPECT_TRUE(relay->client_terminated());
}

TEST_F(RelayTest, AServerFatalThenCloseEndsWithServerClosedAndItsSqlstate) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    const std::string fatal = error_response("57P01", "terminating connection due to administrator command");
    EXPECT_EQ(co_await to_client(fatal), fatal) << "the client reads PostgreSQL's own error";
    server.close();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kServerClosed);
  EXPECT_EQ(end->server_sqlstate, "57P01");
}

TEST_F(RelayTest, AServerErrorAnsweredByReadyForQueryIsNotWhyItClosed) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(query("SELECT 1/0"));
    (void)co_await to_client(error_response("22012", "division by zero") + ready_for_query('I'));
    server.close();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kServerClosed);
  EXPECT_EQ(end->server_sqlstate, "");
}

TEST_F(RelayTest, AServerErrorWhoseCodeLiesBeyondTheCapturedHeadIsReportedAsUnknown) {
  run([&]() -> asio::awaitable<void> {
    // A long first field pushes 'C' past the bytes the scanner keeps.
    std::string body = "S" + std::string(protocol::kScanCaptureBytes + 10, 'x') + '\0' + "C57P01\0Mbye\0\0"s;
    (void)co_await to_client(message('E', body));
    server.close();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kServerClosed);
  EXPECT_EQ(end->server_sqlstate, "?");
}

TEST_F(RelayTest, TheServerClosingWithoutAnErrorEndsWithServerClosedAndNoSqlstate) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    server.close();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kServerClosed);
  EXPECT_EQ(end->server_sqlstate, "");
}

TEST_F(RelayTest, CloseIdleEndsTheRelayWithIdleClosed) {
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_client(ready_for_query('I'));
    CO_ASSERT_TRUE(activity().at_rest);
    relay->close_idle();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kIdleClosed);
}

TEST_F(RelayTest, CancellingTheRelayEndsItWithShutdown) {
  asio::cancellation_signal shutdown;
  bool scripted = false;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { end = co_await relay->run(); },
      asio::bind_cancellation_slot(shutdown.slot(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      }));
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        (void)co_await to_client(ready_for_query('I'));
        shutdown.emit(asio::cancellation_type::terminal);
        co_await wait_for_end();
        scripted = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run_for(20s);
  ASSERT_TRUE(scripted);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->why, Why::kShutdown);
}

// ---- keeping the server for the pool ----

using Parameters = std::vector<std::pair<std::string, std::string>>;

std::string parameter_status(const std::string& name, const std::string& value) {
  return message('S', name + '\0' + value + '\0');
}

// Whether the server's socket has a byte to read now (the relay forwarded something).
bool server_has_data(Socket& server) {
  char byte;
  return ::recv(server.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

TEST_F(RelayTest, KeepingTheServerHoldsTheClientsTerminateBackAndTheServerIsReusableAtRest) {
  Parameters parameters{{"application_name", "a"}};
  relay->keep_server(&parameters);
  run([&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await to_server(query("SET application_name = 'b'")), query("SET application_name = 'b'"));
    const std::string down = parameter_status("application_name", "b") + command_complete("SET") + ready_for_query('I');
    EXPECT_EQ(co_await to_client(down), down);
    EXPECT_TRUE(co_await send(client, terminate()));
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kClientClosed);
  EXPECT_TRUE(relay->client_terminated());
  EXPECT_TRUE(relay->server_reusable());
  EXPECT_FALSE(server_has_data(server)) << "the Terminate reached the server";
  ASSERT_EQ(parameters.size(), 1u);
  EXPECT_EQ(parameters[0].second, "b") << "the ParameterStatus the server sent was not tracked";
}

TEST_F(RelayTest, ATerminateInTheSameReadAsAQueryForwardsTheQueryOnlyAndTheServerIsNotAtRest) {
  Parameters parameters;
  relay->keep_server(&parameters);
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await send(client, query("SELECT 1") + terminate()));
    EXPECT_EQ(co_await read_exactly(server, query("SELECT 1").size()), query("SELECT 1"));
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kClientClosed);
  EXPECT_FALSE(relay->server_reusable()) << "its answer is still to come";
  EXPECT_FALSE(server_has_data(server)) << "the Terminate reached the server";
}

TEST_F(RelayTest, AClientLeavingInATransactionLeavesTheServerNotReusable) {
  Parameters parameters;
  relay->keep_server(&parameters);
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(query("BEGIN"));
    (void)co_await to_client(command_complete("BEGIN") + ready_for_query('T'));
    EXPECT_TRUE(co_await send(client, terminate()));
    co_await wait_for_end();
  });
  EXPECT_TRUE(relay->client_terminated());
  EXPECT_FALSE(relay->server_reusable());
}

TEST_F(RelayTest, AParameterStatusTooLongToReadWholeLeavesTheServerNotReusable) {
  Parameters parameters;
  relay->keep_server(&parameters);
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(query("SET application_name = '...'"));
    const std::string down = parameter_status("application_name", std::string(200, 'x')) + command_complete("SET") +
                             ready_for_query('I');
    (void)co_await to_client(down);
    EXPECT_TRUE(co_await send(client, terminate()));
    co_await wait_for_end();
  });
  EXPECT_TRUE(relay->client_terminated());
  EXPECT_FALSE(relay->server_reusable()) << "a value pgnap could not read would be shown to the next client";
}

TEST_F(RelayTest, WithoutKeepingTheServerTheTerminateIsForwarded) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await to_server(terminate()), terminate());
    client.close();
    co_await wait_for_end();
  });
  EXPECT_TRUE(relay->client_terminated());
  EXPECT_FALSE(relay->server_reusable());
}

TEST_F(RelayTest, AParkStopsTheRelayAtRestAndLeavesWhatTheClientSendsNextUnread) {
  Parameters parameters;
  relay->keep_server(&parameters);
  relay->allow_parking();
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(query("SET work_mem = '8MB'"));
    (void)co_await to_client(command_complete("SET") + ready_for_query('I'));
    EXPECT_GT(activity().last_traffic, activity().park_refused_at) << "traffic makes it a candidate again";
    EXPECT_TRUE(relay->request_park());
    EXPECT_TRUE(activity().parking);
    co_await wait_for_end();
    EXPECT_TRUE(co_await send(client, query("SELECT 1")));
    co_await sleep_for(50ms);
  });
  EXPECT_EQ(end->why, Why::kParked);
  EXPECT_TRUE(relay->parkable());
  EXPECT_FALSE(server_has_data(server)) << "a message sent after the park went to the old server";
}

TEST_F(RelayTest, ASessionInATransactionWithAQueryInFlightOrListeningCannotPark) {
  Parameters parameters;
  relay->keep_server(&parameters);
  EXPECT_FALSE(relay->request_park()) << "parking was not allowed";
  relay->allow_parking();
  run([&]() -> asio::awaitable<void> {
    (void)co_await to_server(query("BEGIN"));
    EXPECT_FALSE(relay->request_park()) << "a query in flight";
    (void)co_await to_client(command_complete("BEGIN") + ready_for_query('T'));
    EXPECT_FALSE(relay->request_park()) << "in a transaction";
    (void)co_await to_server(query("LISTEN jobs; COMMIT"));
    (void)co_await to_client(command_complete("LISTEN") + command_complete("COMMIT") + ready_for_query('I'));
    EXPECT_FALSE(relay->request_park()) << "listening";
    client.close();
    co_await wait_for_end();
  });
  EXPECT_EQ(end->why, Why::kClientClosed);
}

}  // namespace
}  // namespace pgnap::daemon
