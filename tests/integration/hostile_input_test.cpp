// Bytes no well-behaved client sends, straight onto pgnap's listening socket: each malformed
// startup gets a FATAL ErrorResponse with SQLSTATE 08P01 (never a silently dropped socket),
// none of them wakes the instance, and well-behaved clients are served throughout.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgnap::it {
namespace {

using ::testing::AnyOf;
using ::testing::StartsWith;

constexpr std::uint32_t kProtocol3 = 196608;  // 3.0
constexpr std::uint32_t kSslRequest = 80877103;
constexpr std::uint32_t kGssEncRequest = 80877104;
constexpr std::uint32_t kCancelRequest = 80877102;

struct Malformed {
  std::string name;
  std::string bytes;
  // DESIGN.md: a malformed packet's message starts "invalid startup packet". A well-formed
  // packet asking for a protocol version the gateway does not speak may instead say so in
  // PostgreSQL's own words; the SQLSTATE is 08P01 either way.
  bool unsupported_version = false;
};

// https://www.postgresql.org/docs/15/protocol-message-formats.html (StartupMessage): an int32
// length counting itself, an int32 protocol version, name/value strings, a final NUL; at most
// 10 000 bytes (MAX_STARTUP_PACKET_LENGTH in PostgreSQL's pqcomm.h).
std::vector<Malformed> malformed_startups() {
  std::string v2 = be32(296) + be32(0x00020000) + "postgres";  // protocol 2.0's fixed layout
  v2.resize(296, '\0');
  const std::string params = std::string("user") + '\0' + "postgres";  // no final NUL
  return {
      {"a length of 5", be32(5) + std::string(1, '\x03')},
      {"a length of 4 (no room for a version)", be32(4)},
      {"garbage: an HTTP request", "GET / HTTP/1.1\r\nHost: localhost:5432\r\n\r\n"},
      {"garbage: random-looking bytes",
       std::string("\x00\x00\x00\x10\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06\x07\x08", 16),
       true},
      {"protocol 2.0", v2, true},
      {"a length over 10000 bytes", be32(10001) + be32(kProtocol3)},
      {"a packet without its final terminator",
       be32(static_cast<std::uint32_t>(8 + params.size())) + be32(kProtocol3) + params},
  };
}

// read_until's predicate: the reply to a startup or a query is complete at ReadyForQuery,
// or ends at an ErrorResponse.
bool ready_for_query_or_error(std::string_view bytes) {
  for (const auto& m : split_backend_messages(bytes)) {
    if (m.type == 'Z' || m.type == 'E') return true;
  }
  return false;
}

GatewayOptions hostile_options(const Cluster& cluster) {
  auto options = GatewayOptions::for_cluster(cluster);
  options.login_timeout = "1s";
  options.idle_timeout = "1m";
  return options;
}

TEST(HostileInputTest, MalformedStartupsGetFatal08P01AndTheGatewayKeepsServing) {
  Cluster cluster;
  Gateway gateway(hostile_options(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  for (const auto& m : malformed_startups()) {
    SCOPED_TRACE(m.name);
    auto raw = RawClient::tcp(gateway.port());
    raw.send(m.bytes);  // pgnap may close before reading it all; the reply is what counts
    const auto reply = raw.read_until_closed(10s);
    EXPECT_TRUE(reply.closed) << "connection left open";
    const auto e = first_error(reply.bytes);
    ASSERT_TRUE(e.has_value()) << "no ErrorResponse; got " << reply.bytes.size() << " bytes";
    EXPECT_EQ(e->severity, "FATAL");
    EXPECT_EQ(e->sqlstate, "08P01");
    if (m.unsupported_version) {
      EXPECT_THAT(e->message, AnyOf(StartsWith("invalid startup packet"),
                                    StartsWith("unsupported frontend protocol")));
    } else {
      EXPECT_THAT(e->message, StartsWith("invalid startup packet"));
    }
  }
  EXPECT_EQ(cluster.ready_count(), 0) << "a malformed startup woke the instance";

  const auto r = psql(gateway.conninfo(), "select 'still serving'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "still serving\n");
}

TEST(HostileInputTest, ClientStuckInItsStartupDoesNotBlockOthersAndIsDroppedAtLoginTimeout) {
  Cluster cluster;
  Gateway gateway(hostile_options(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  // Half a startup packet, then silence.
  auto stuck = RawClient::tcp(gateway.port());
  const std::string startup = startup_packet({{"user", "postgres"}, {"database", "postgres"}});
  ASSERT_TRUE(stuck.send(startup.substr(0, startup.size() / 2)));
  auto silent = RawClient::tcp(gateway.port());

  const auto r = psql(gateway.conninfo(), "select 'served meanwhile'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "served meanwhile\n");

  // login_timeout is 1s; 10 s is only the bound on a broken gateway.
  EXPECT_TRUE(stuck.read_until_closed(10s).closed) << "half-started client never dropped";
  EXPECT_TRUE(silent.read_until_closed(10s).closed) << "silent client never dropped";
}

TEST(HostileInputTest, CancelRequestWithAnUnknownKeyIsClosedQuietly) {
  Cluster cluster;
  Gateway gateway(hostile_options(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto raw = RawClient::tcp(gateway.port());
  ASSERT_TRUE(raw.send(be32(16) + be32(kCancelRequest) + be32(12345) + be32(67890)));
  EXPECT_TRUE(raw.read_until_closed(10s).closed);
  EXPECT_EQ(cluster.ready_count(), 0) << "a cancel for nobody woke the instance";
  EXPECT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0);
}

TEST(HostileInputTest, EncryptionRequestsAreRefusedWithNThenTheStartupIsRelayed) {
  Cluster cluster;
  Gateway gateway(hostile_options(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto raw = RawClient::tcp(gateway.port());
  auto one_byte = [](std::string_view b) { return !b.empty(); };
  ASSERT_TRUE(raw.send(be32(8) + be32(kGssEncRequest)));
  EXPECT_EQ(raw.read_until(one_byte, 10s).bytes, "N");
  ASSERT_TRUE(raw.send(be32(8) + be32(kSslRequest)));
  EXPECT_EQ(raw.read_until(one_byte, 10s).bytes, "N");

  ASSERT_TRUE(raw.send(startup_packet({{"user", "postgres"}, {"database", "postgres"}})));
  // Trust authentication: AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery.
  const auto reply = raw.read_until(
      ready_for_query_or_error,
      60s);
  const auto messages = split_backend_messages(reply.bytes);
  ASSERT_FALSE(messages.empty()) << "no reply to the startup";
  ASSERT_FALSE(first_error(reply.bytes).has_value()) << first_error(reply.bytes)->message;
  EXPECT_EQ(messages.front().type, 'R');
  EXPECT_EQ(messages.back().type, 'Z');
  bool key_data = false;
  for (const auto& m : messages) key_data = key_data || (m.type == 'K' && m.body.size() == 8);
  EXPECT_TRUE(key_data) << "no BackendKeyData relayed";
  raw.send(std::string("X") + be32(4));  // Terminate
  EXPECT_TRUE(raw.read_until_closed(10s).closed);
}

}  // namespace
}  // namespace pgnap::it

namespace pgnap::it {
namespace {

// A client asking for protocol 3.2 with a "_pq_." extension (what a newer libpq may send) is
// answered as PostgreSQL 15 would: NegotiateProtocolVersion first, naming 3.0 as the newest
// minor and the extension as unrecognised, then its session runs on 3.0.
// https://www.postgresql.org/docs/15/protocol-message-formats.html (NegotiateProtocolVersion)
TEST(HostileInputTest, NewerMinorVersionIsNegotiatedDownTo30) {
  Cluster cluster;
  Gateway gateway(hostile_options(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto raw = RawClient::tcp(gateway.port());
  ASSERT_TRUE(raw.send(startup_packet(
      {{"user", "postgres"}, {"database", "postgres"}, {"_pq_.future_extension", "on"}}, (3u << 16) | 2u)));
  const auto reply = raw.read_until(
      ready_for_query_or_error,
      60s);
  const auto messages = split_backend_messages(reply.bytes);
  ASSERT_GE(messages.size(), 2u) << "no reply to the startup";
  ASSERT_FALSE(first_error(reply.bytes).has_value()) << first_error(reply.bytes)->message;

  const auto& v = messages.front();
  ASSERT_EQ(v.type, 'v') << "NegotiateProtocolVersion must come before anything else";
  // Int32 newest minor, Int32 count, then the option names.
  ASSERT_GE(v.body.size(), 8u);
  EXPECT_EQ(v.body.substr(0, 4), be32(0));
  EXPECT_EQ(v.body.substr(4, 4), be32(1));
  EXPECT_EQ(v.body.substr(8), std::string("_pq_.future_extension") + '\0');
  EXPECT_EQ(messages[1].type, 'R');
  EXPECT_EQ(messages.back().type, 'Z');

  // The session works: a simple query on protocol 3.0.
  const std::string query = "select 42";
  ASSERT_TRUE(raw.send("Q" + be32(static_cast<std::uint32_t>(4 + query.size() + 1)) + query + '\0'));
  const auto result = raw.read_until(ready_for_query_or_error, 10s);
  bool saw_row = false;
  for (const auto& m : split_backend_messages(result.bytes)) {
    if (m.type == 'D') saw_row = m.body.find("42") != std::string::npos;
  }
  EXPECT_TRUE(saw_row) << "no DataRow with 42";
  raw.send(std::string("X") + be32(4));
}

}  // namespace
}  // namespace pgnap::it
