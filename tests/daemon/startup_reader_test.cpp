// The startup phase over a real socket pair: the test plays the client on one end,
// read_startup() reads the other. What is asserted is the typed outcome and the bytes the
// client receives ('N', or an ErrorResponse decoded from the wire), never how long it took.
#include "daemon/startup_reader.h"

#include <chrono>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include "protocol/encode.h"
#include "tests/daemon/test_sockets.h"

namespace pgnap::daemon {
namespace {

using namespace std::chrono_literals;
using namespace test_support;
using Kind = StartupOutcome::Kind;

std::string startup_packet(const std::string& user, const std::string& database) {
  protocol::StartupMessage msg;
  msg.parameters = {{"user", user}, {"database", database}};
  return protocol::encode_startup_message(msg);
}

// An 8-byte request: SSLRequest or GSSENCRequest.
std::string request_packet(std::uint32_t code) {
  std::string out;
  protocol::append_u32(out, 8);
  protocol::append_u32(out, code);
  return out;
}
const std::string kSslRequest = request_packet(protocol::kSslRequestCode);
const std::string kGssEncRequest = request_packet(protocol::kGssEncRequestCode);

struct StartupReaderTest : ::testing::Test {
  asio::io_context io;
  Socket client{io};              // the test's end
  std::optional<Stream> gateway;  // the end read_startup() reads
  StartupOutcome outcome;

  StartupReaderTest() {
    auto [a, b] = socket_pair(io);
    client = std::move(a);
    gateway.emplace(std::move(b));
  }

  // Writes `first` before the reader starts (so that it arrives in one read), then runs
  // read_startup() beside the client's `script`, both to completion.
  template <typename Script>
  void run(const std::string& first, Script script, Clock::duration login_timeout = 10s) {
    if (!first.empty()) asio::write(client, asio::buffer(first));
    const Clock::time_point deadline = Clock::now() + login_timeout;
    bool read = false;
    bool scripted = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const TlsServer* no_tls = nullptr;
          outcome = co_await read_startup(*gateway, deadline, no_tls);
          read = true;
        },
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
    ASSERT_TRUE(read) << "read_startup() did not finish";
    ASSERT_TRUE(scripted) << "the client's script did not finish";
  }
  void run(const std::string& first) {
    run(first, []() -> asio::awaitable<void> { co_return; });
  }

  // What the client had received when the gateway closed its sending side.
  std::string refusal_on_the_wire;
  auto read_refusal() {
    return [this]() -> asio::awaitable<void> { refusal_on_the_wire = co_await read_to_eof(client); };
  }
};

// ---- accepted ----

TEST_F(StartupReaderTest, AStartupMessageEndsTheStartupPhase) {
  run(startup_packet("alice", "shop"));
  ASSERT_EQ(outcome.kind, Kind::kStartup) << outcome.reason;
  EXPECT_EQ(outcome.startup.user(), "alice");
  EXPECT_EQ(outcome.startup.database(), "shop");
  EXPECT_TRUE(outcome.pipelined.empty());
  EXPECT_FALSE(outcome.refused());
  EXPECT_FALSE(outcome.login_timeout);
  EXPECT_EQ(client.available(), 0u) << "nothing is answered to a StartupMessage here";
}

TEST_F(StartupReaderTest, BytesPipelinedAfterTheStartupMessageAreKeptForTheServer) {
  const std::string query = message('Q', std::string("SELECT 1\0", 9));
  const std::string sync = message('S', "");
  run(startup_packet("alice", "shop") + query + sync);
  ASSERT_EQ(outcome.kind, Kind::kStartup) << outcome.reason;
  EXPECT_EQ(outcome.startup.user(), "alice");
  EXPECT_EQ(outcome.pipelined, query + sync);
}

TEST_F(StartupReaderTest, AStartupMessageSentOneByteAtATimeIsAssembled) {
  const std::string packet = startup_packet("bob", "blog");
  run("", [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (char c : packet) {
      std::string byte(1, c);
      CO_ASSERT_TRUE(co_await send(client, byte));
      co_await asio::post(executor, asio::use_awaitable);
    }
  });
  ASSERT_EQ(outcome.kind, Kind::kStartup) << outcome.reason;
  EXPECT_EQ(outcome.startup.user(), "bob");
  EXPECT_EQ(outcome.startup.database(), "blog");
  EXPECT_TRUE(outcome.pipelined.empty());
}

TEST_F(StartupReaderTest, ANewerMinorVersionIsPassedOnForTheCallerToNegotiate) {
  std::string packet;
  protocol::append_u32(packet, 0);
  protocol::append_u32(packet, protocol::make_protocol(3, 2));
  packet += std::string("user\0alice\0\0", 12);
  protocol::put_u32(packet, 0, static_cast<std::uint32_t>(packet.size()));
  run(packet);
  ASSERT_EQ(outcome.kind, Kind::kStartup) << outcome.reason;
  EXPECT_EQ(outcome.startup.major, 3);
  EXPECT_EQ(outcome.startup.minor, 2);
}

TEST_F(StartupReaderTest, ACancelRequestIsReturnedWithItsKeyAndNothingIsAnswered) {
  const protocol::CancelRequest request{4242, 0xdeadbeef};
  run(protocol::encode_cancel_request(request));
  ASSERT_EQ(outcome.kind, Kind::kCancel) << outcome.reason;
  EXPECT_EQ(outcome.cancel.process_id, 4242u);
  EXPECT_EQ(outcome.cancel.secret_key, 0xdeadbeefu);
  EXPECT_FALSE(outcome.refused());
  EXPECT_EQ(client.available(), 0u);
}

TEST_F(StartupReaderTest, AnSslRequestWithoutTlsIsAnsweredNThenTheStartupFollows) {
  std::string answer;
  run(kSslRequest, [&]() -> asio::awaitable<void> {
    answer = co_await read_exactly(client, 1);
    std::string startup = startup_packet("alice", "shop");
    CO_ASSERT_TRUE(co_await send(client, startup));
  });
  EXPECT_EQ(answer, "N");
  ASSERT_EQ(outcome.kind, Kind::kStartup) << outcome.reason;
  EXPECT_EQ(outcome.startup.user(), "alice");
  EXPECT_EQ(client.available(), 0u) << "one 'N', nothing else";
}

TEST_F(StartupReaderTest, AGssEncRequestIsAnsweredNThenTheStartupFollows) {
  std::string answer;
  run(kGssEncRequest, [&]() -> asio::awaitable<void> {
    answer = co_await read_exactly(client, 1);
    std::string startup = startup_packet("alice", "shop");
    CO_ASSERT_TRUE(co_await send(client, startup));
  });
  EXPECT_EQ(answer, "N");
  ASSERT_EQ(outcome.kind, Kind::kStartup) << outcome.reason;
  EXPECT_EQ(outcome.startup.database(), "shop");
}

TEST_F(StartupReaderTest, AGssEncRequestThenAnSslRequestAreEachAnsweredN) {
  // libpq's order with gssencmode=prefer and sslmode=prefer: GSS first, then SSL.
  std::string answers;
  run(kGssEncRequest, [&]() -> asio::awaitable<void> {
    answers += co_await read_exactly(client, 1);
    std::string ssl = kSslRequest;
    CO_ASSERT_TRUE(co_await send(client, ssl));
    answers += co_await read_exactly(client, 1);
    std::string startup = startup_packet("alice", "shop");
    CO_ASSERT_TRUE(co_await send(client, startup));
  });
  EXPECT_EQ(answers, "NN");
  EXPECT_EQ(outcome.kind, Kind::kStartup) << outcome.reason;
}

TEST_F(StartupReaderTest, ACancelRequestMayFollowAnSslRequestAnsweredN) {
  std::string answer;
  run(kSslRequest, [&]() -> asio::awaitable<void> {
    answer = co_await read_exactly(client, 1);
    const protocol::CancelRequest request{7, 8};
    std::string cancel = protocol::encode_cancel_request(request);
    CO_ASSERT_TRUE(co_await send(client, cancel));
  });
  EXPECT_EQ(answer, "N");
  ASSERT_EQ(outcome.kind, Kind::kCancel) << outcome.reason;
  EXPECT_EQ(outcome.cancel.process_id, 7u);
  EXPECT_EQ(outcome.cancel.secret_key, 8u);
}

// ---- refused: an 08P01 ErrorResponse on the wire ----

void expect_protocol_violation(const StartupOutcome& outcome, const std::string& wire) {
  EXPECT_TRUE(outcome.refused());
  EXPECT_EQ(outcome.error.sqlstate, protocol::sqlstate::kProtocolViolation);
  EXPECT_EQ(outcome.error.severity, "FATAL");
  const auto fields = decode_error_response(wire);
  ASSERT_TRUE(fields.has_value()) << "the client did not receive exactly one ErrorResponse: "
                                  << ::testing::PrintToString(wire);
  EXPECT_EQ(fields->at('C'), "08P01");
  EXPECT_EQ(fields->at('S'), "FATAL");
  EXPECT_EQ(fields->at('M'), outcome.error.message);
}

TEST_F(StartupReaderTest, ADuplicateSslRequestIsRefusedWith08P01) {
  std::string answer;
  run(kSslRequest, [&]() -> asio::awaitable<void> {
    answer = co_await read_exactly(client, 1);
    std::string again = kSslRequest;
    CO_ASSERT_TRUE(co_await send(client, again));
    refusal_on_the_wire = co_await read_to_eof(client);
  });
  EXPECT_EQ(answer, "N");
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
  EXPECT_TRUE(outcome.error.message.starts_with("invalid startup packet")) << outcome.error.message;
  EXPECT_FALSE(outcome.login_timeout);
}

TEST_F(StartupReaderTest, ADuplicateGssEncRequestIsRefusedWith08P01) {
  std::string answer;
  run(kGssEncRequest, [&]() -> asio::awaitable<void> {
    answer = co_await read_exactly(client, 1);
    std::string again = kGssEncRequest;
    CO_ASSERT_TRUE(co_await send(client, again));
    refusal_on_the_wire = co_await read_to_eof(client);
  });
  EXPECT_EQ(answer, "N");
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
  EXPECT_TRUE(outcome.error.message.starts_with("invalid startup packet")) << outcome.error.message;
}

TEST_F(StartupReaderTest, BytesPipelinedAfterAnSslRequestAreRefusedWithoutAnswering) {
  // CVE-2021-23214: bytes sent before the answer to an SSLRequest are never part of the session.
  run(kSslRequest + startup_packet("alice", "shop"), read_refusal());
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  // No 'N' first: the refusal is the only thing on the wire.
  expect_protocol_violation(outcome, refusal_on_the_wire);
  EXPECT_TRUE(outcome.error.message.starts_with("invalid startup packet")) << outcome.error.message;
}

TEST_F(StartupReaderTest, BytesPipelinedAfterAGssEncRequestAreRefused) {
  run(kGssEncRequest + startup_packet("alice", "shop"), read_refusal());
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
}

TEST_F(StartupReaderTest, ALengthBelowTheMinimumIsRefusedWith08P01) {
  std::string packet;
  protocol::append_u32(packet, 5);
  packet += "abcd";
  run(packet, read_refusal());
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
  EXPECT_TRUE(outcome.error.message.starts_with("invalid startup packet")) << outcome.error.message;
}

TEST_F(StartupReaderTest, AnOversizedLengthIsRefusedBeforeTheRestArrives) {
  // Only the header is sent and the connection stays open: the reader must not wait for
  // 10 001 bytes (nor for the login deadline) to refuse it.
  std::string header;
  protocol::append_u32(header, protocol::kMaxStartupPacketLength + 1);
  protocol::append_u32(header, protocol::kProtocol3);
  run(header, read_refusal(), 60s);
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
  EXPECT_TRUE(outcome.error.message.starts_with("invalid startup packet")) << outcome.error.message;
  EXPECT_FALSE(outcome.login_timeout);
}

TEST_F(StartupReaderTest, ACancelRequestOfTheWrongLengthIsRefused) {
  std::string packet;
  protocol::append_u32(packet, 12);
  protocol::append_u32(packet, protocol::kCancelRequestCode);
  protocol::append_u32(packet, 42);
  run(packet, read_refusal());
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
}

TEST_F(StartupReaderTest, ProtocolVersionTwoIsRefusedWith08P01) {
  std::string packet;
  protocol::append_u32(packet, 0);
  protocol::append_u32(packet, protocol::make_protocol(2, 0));
  packet += std::string("user\0alice\0\0", 12);
  protocol::put_u32(packet, 0, static_cast<std::uint32_t>(packet.size()));
  run(packet, read_refusal());
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
}

TEST_F(StartupReaderTest, AStartupMessageWithoutAUserIsRefusedWith08P01) {
  protocol::StartupMessage msg;
  msg.parameters = {{"database", "shop"}};
  run(protocol::encode_startup_message(msg), read_refusal());
  ASSERT_EQ(outcome.kind, Kind::kMalformed) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
}

TEST_F(StartupReaderTest, AHalfSentPacketAtTheDeadlineIsRefusedAsALoginTimeout) {
  const std::string packet = startup_packet("alice", "shop");
  run(packet.substr(0, 6), read_refusal(), 100ms);
  ASSERT_EQ(outcome.kind, Kind::kLoginTimeout) << outcome.reason;
  EXPECT_TRUE(outcome.login_timeout);
  expect_protocol_violation(outcome, refusal_on_the_wire);
  EXPECT_TRUE(outcome.error.message.starts_with("invalid startup packet")) << outcome.error.message;
}

TEST_F(StartupReaderTest, SilenceUntilTheDeadlineIsRefusedAsALoginTimeout) {
  run("", read_refusal(), 100ms);
  ASSERT_EQ(outcome.kind, Kind::kLoginTimeout) << outcome.reason;
  EXPECT_TRUE(outcome.login_timeout);
  expect_protocol_violation(outcome, refusal_on_the_wire);
}

TEST_F(StartupReaderTest, AnSslRequestDoesNotRestartTheLoginDeadline) {
  // The deadline covers the whole startup phase, negotiation included.
  std::string answer;
  run(
      kSslRequest,
      [&]() -> asio::awaitable<void> {
        answer = co_await read_exactly(client, 1);
        refusal_on_the_wire = co_await read_to_eof(client);
      },
      500ms);
  EXPECT_EQ(answer, "N");
  ASSERT_EQ(outcome.kind, Kind::kLoginTimeout) << outcome.reason;
  expect_protocol_violation(outcome, refusal_on_the_wire);
}

// ---- closed: nothing to tell ----

TEST_F(StartupReaderTest, TheClientClosingBeforeSendingAnythingIsClientGone) {
  run("", [&]() -> asio::awaitable<void> {
    client.close();
    co_return;
  });
  EXPECT_EQ(outcome.kind, Kind::kClientGone) << outcome.reason;
  EXPECT_FALSE(outcome.refused());
  EXPECT_FALSE(outcome.login_timeout);
}

TEST_F(StartupReaderTest, TheClientClosingInTheMiddleOfItsPacketIsClientGone) {
  const std::string packet = startup_packet("alice", "shop");
  run(packet.substr(0, 10), [&]() -> asio::awaitable<void> {
    client.close();
    co_return;
  });
  EXPECT_EQ(outcome.kind, Kind::kClientGone) << outcome.reason;
  EXPECT_FALSE(outcome.refused());
}

TEST_F(StartupReaderTest, TheClientClosingAfterTheAnswerToItsSslRequestIsClientGone) {
  // libpq with sslmode=require, told 'N', gives up.
  run(kSslRequest, [&]() -> asio::awaitable<void> {
    const std::string answer = co_await read_exactly(client, 1);
    EXPECT_EQ(answer, "N");
    client.close();
  });
  EXPECT_EQ(outcome.kind, Kind::kClientGone) << outcome.reason;
  EXPECT_FALSE(outcome.refused());
}

}  // namespace
}  // namespace pgnap::daemon
