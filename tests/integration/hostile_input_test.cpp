// Bytes no well-behaved client sends, straight onto pgnap's listening socket: each malformed
// startup gets a FATAL ErrorResponse with SQLSTATE 08P01 (never a silently dropped socket),
// none of them wakes the instance, and well-behaved clients are served throughout.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
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
  // docs/architecture.md ("What a client sees"): a malformed packet's message starts "invalid startup packet". A
  // well-formed packet asking for a protocol version the gateway does not speak may instead say so in PostgreSQL's own
  // words; the SQLSTATE is 08P01 either way.
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
       std::string("\x00\x00\x00\x10\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06\x07\x08", 16), true},
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
      EXPECT_THAT(e->message, AnyOf(StartsWith("invalid startup packet"), StartsWith("unsupported frontend protocol")));
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
  const auto reply = raw.read_until(ready_for_query_or_error, 60s);
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
  ASSERT_TRUE(raw.send(startup_packet({{"user", "postgres"}, {"database", "postgres"}, {"_pq_.future_extension", "on"}},
                                      (3u << 16) | 2u)));
  const auto reply = raw.read_until(ready_for_query_or_error, 60s);
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

namespace pgnap::it {
namespace {

// One hostile connection of the barrage below: what it sends, and what must come back.
struct Barrage {
  std::string name;
  // Sent one after the other; before each send but the first, the one-byte answer to an
  // encryption request ('N') is read and must be `preamble`'s next byte.
  std::vector<std::string> sends;
  std::string preamble;        // bytes that precede the ErrorResponse ("N" per answered request)
  std::string message;         // the ErrorResponse's message starts with this
  bool after_startup = false;  // a real session first (startup, ReadyForQuery), then `sends`
  bool stalls = false;         // refused only at login_timeout (an incomplete packet)
};

constexpr auto kBarrageLoginTimeout = 3s;

std::vector<Barrage> barrage_cases() {
  const std::string user = std::string("user") + '\0' + "postgres" + '\0';
  const std::string db = std::string("database") + '\0' + "postgres" + '\0';
  auto packet = [](std::uint32_t version, const std::string& body) {
    return be32(static_cast<std::uint32_t>(8 + body.size())) + be32(version) + body;
  };
  const std::string startup = startup_packet({{"user", "postgres"}, {"database", "postgres"}});
  const std::string ssl = be32(8) + be32(kSslRequest);
  const std::string gss = be32(8) + be32(kGssEncRequest);
  const std::string bad = "invalid startup packet";
  const std::string unsupported = "unsupported frontend protocol";
  const std::string too_long = "invalid startup packet: length";
  std::vector<Barrage> cases{
      // Length words PostgreSQL's ProcessStartupPacket refuses ("invalid length of startup
      // packet", logged as COMMERROR: PostgreSQL closes silently; pgnap says why).
      {"a length of 0", {be32(0)}, "", too_long},
      {"a length of 7", {be32(7) + "abc"}, "", too_long},
      {"a length of 2^31-1", {be32(0x7fffffff) + be32(kProtocol3)}, "", too_long},
      {"a negative length (0x80000000)", {be32(0x80000000u) + be32(kProtocol3)}, "", too_long},
      {"a negative length (-1)", {be32(0xffffffffu) + be32(kProtocol3)}, "", too_long},
      // Announced 200 bytes, sent 30, then silence: refused at login_timeout.
      {"a truncated packet, then silence",
       {be32(200) + be32(kProtocol3) + user.substr(0, 22)},
       "",
       "invalid startup packet: startup not completed within login_timeout",
       false,
       true},
      {"protocol 4.0", {packet(0x00040000, user + '\0')}, "", unsupported},
      {"protocol 0.0", {packet(0, user + '\0')}, "", unsupported},
      {"protocol 1234.5677 (beside the request codes)", {packet(80877101, user + '\0')}, "", unsupported},
      {"a parameter name without its terminator", {packet(kProtocol3, "user")}, "", bad},
      {"a value without its terminator", {packet(kProtocol3, user + "database" + '\0' + "postgres")}, "", bad},
      {"an odd number of strings", {packet(kProtocol3, user + "database" + '\0' + '\0')}, "", bad},
      {"no terminator after the version", {packet(kProtocol3, "")}, "", bad},
      {"bytes after the terminator", {packet(kProtocol3, user + '\0' + "x")}, "", bad},
      // PostgreSQL answers these two with 28000 ("no PostgreSQL user name specified in
      // startup packet"); pgnap refuses them as malformed, before routing.
      {"no user", {packet(kProtocol3, db + '\0')}, "", "invalid startup packet: no user name specified"},
      {"an empty user",
       {packet(kProtocol3, std::string("user") + '\0' + '\0' + db + '\0')},
       "",
       "invalid startup packet: no user name specified"},
      {"a CancelRequest of 12 bytes", {be32(12) + be32(kCancelRequest) + be32(1)}, "", bad},
      {"a CancelRequest of 20 bytes", {be32(20) + be32(kCancelRequest) + be32(1) + be32(2) + be32(3)}, "", bad},
      {"an SSLRequest of 12 bytes", {be32(12) + be32(kSslRequest) + be32(0)}, "", bad},
      // Anything sent before the answer to an encryption request is refused (PostgreSQL:
      // "received unencrypted data after SSL request").
      {"a startup pipelined after an SSLRequest",
       {ssl + startup},
       "",
       "invalid startup packet: received unencrypted data after SSL request"},
      {"a startup pipelined after a GSSENCRequest",
       {gss + startup},
       "",
       "invalid startup packet: received unencrypted data after GSSAPI encryption request"},
      {"one byte pipelined after an SSLRequest",
       {ssl + "x"},
       "",
       "invalid startup packet: received unencrypted data after SSL request"},
      {"a second SSLRequest", {ssl, ssl}, "N", "invalid startup packet: duplicate SSLRequest"},
      {"a second GSSENCRequest", {gss, gss}, "N", "invalid startup packet: duplicate GSSENCRequest"},
      {"GSSENC, SSL, then SSL again", {gss, ssl, ssl}, "NN", "invalid startup packet: duplicate SSLRequest"},
      // After a real startup: a message header claiming far more than max_message_size
      // (1 MiB here) is refused at once, without waiting for (or forwarding) its body.
      {"a Query claiming 2^31-1 bytes after startup",
       {"Q" + be32(0x7fffffff)},
       "",
       "invalid message from client: message of type 'Q' claims length 2147483647, above the maximum",
       true},
      {"a message claiming 0xffffffff bytes after startup",
       {"P" + be32(0xffffffffu)},
       "",
       "invalid message from client: message of type 'P' claims length 4294967295, above the maximum",
       true},
      {"a message claiming 3 bytes after startup",
       {"Q" + be32(3)},
       "",
       "invalid message from client: message of type 'Q' claims invalid length 3",
       true},
  };
  // The malformed startups of the first test, here under load and in parallel.
  for (const auto& m : malformed_startups()) {
    cases.push_back({m.name, {m.bytes}, "", m.unsupported_version ? "" : bad});
  }
  // Random garbage, the same every run (a fixed seed). A blob may be refused at once or,
  // when its first word happens to announce more than was sent, at login_timeout.
  std::mt19937 random(20240611);
  for (int i = 0; i < 12; ++i) {
    std::uniform_int_distribution<std::size_t> size(1, i < 6 ? 64 : 20000);
    std::string blob(size(random), '\0');
    for (char& c : blob) c = static_cast<char>(random() & 0xff);
    cases.push_back({"random garbage #" + std::to_string(i) + " (" + std::to_string(blob.size()) + " bytes)",
                     {blob},
                     "",
                     "",
                     false,
                     true});
  }
  return cases;
}

struct BarrageOutcome {
  bool ok = false;
  std::string why;  // what went wrong, when !ok
};

BarrageOutcome run_barrage_case(const Gateway& gateway, const Barrage& c) {
  const auto started = std::chrono::steady_clock::now();
  auto raw = RawClient::tcp(gateway.port());
  if (c.after_startup) {
    raw.send(startup_packet({{"user", "postgres"}, {"database", "postgres"}}));
    const auto hello = raw.read_until(ready_for_query_or_error, 30s);
    const auto messages = split_backend_messages(hello.bytes);
    if (messages.empty() || messages.back().type != 'Z') return {false, "the session did not start"};
  }
  std::string answers;
  for (std::size_t i = 0; i < c.sends.size(); ++i) {
    if (i > 0) {
      const auto one = raw.read_until([&](std::string_view b) { return b.size() >= 1; }, 10s);
      answers += one.bytes;
    }
    raw.send(c.sends[i]);  // pgnap may close before reading it all; the reply is what counts
  }
  const auto login_timeout = std::chrono::duration_cast<Millis>(kBarrageLoginTimeout);
  const auto reply = raw.read_until_closed(login_timeout + 10s);
  const auto took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
  const std::string bytes = answers + reply.bytes;
  auto failure = [&](const std::string& what) {
    return BarrageOutcome{false, what + " (after " + std::to_string(took.count()) + " ms, " +
                                     std::to_string(bytes.size()) + " bytes)"};
  };
  if (!reply.closed) return failure("connection left open");
  if (bytes.compare(0, c.preamble.size(), c.preamble) != 0) return failure("expected \"" + c.preamble + "\" first");
  const auto e = first_error(std::string_view(bytes).substr(std::min(bytes.size(), c.preamble.size())));
  if (!e) return failure("no ErrorResponse");
  if (e->severity != "FATAL" || e->sqlstate != "08P01") return failure("got " + e->severity + " " + e->sqlstate);
  if (e->message.rfind(c.message, 0) != 0) return failure("message \"" + e->message + "\"");
  // Within login_timeout: at once for a packet that is wrong as soon as it is read; at the
  // deadline (a generous margin for a loaded machine) for one that never completes.
  const Millis limit = c.stalls ? login_timeout + 5s : login_timeout;
  if (took > limit) return failure("answered later than " + std::to_string(limit.count()) + " ms");
  return {true, {}};
}

// pgbench sessions through pgnap with a barrage of every kind of malformed startup (and a
// few oversized messages after one) running beside them: every hostile connection gets
// FATAL 08P01 within login_timeout, pgbench sees not one failed transaction, and once it is
// over pgnap holds exactly the sockets it held before.
TEST(HostileInputTest, BarrageOfMalformedInputLeavesPgbenchUndisturbedAndLeaksNoSocket) {
  Cluster cluster;
  auto options = hostile_options(cluster);
  options.login_timeout = "3s";
  options.gateway_extra = "max_message_size = \"1MB\"\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  // The sockets pgnap holds at rest (its listener); an awake instance adds none.
  const std::size_t baseline = open_sockets(gateway.pid()).size();
  const auto init = run_command({"pgbench", "-i", "-s", "1", "-q", gateway.conninfo()}, 90s);
  ASSERT_EQ(init.exit_code, 0) << init.describe();

  CommandResult bench;
  std::atomic<bool> bench_done{false};
  std::thread bench_thread([&] {
    bench = run_command({"pgbench", "-S", "-c", "4", "-j", "2", "-T", "12", gateway.conninfo()}, 90s);
    bench_done = true;
  });
  // The barrage starts once pgbench's four sessions are running.
  const bool bench_running = wait_until(
      [&] {
        const auto r = psql(cluster.conninfo_direct(),
                            "select count(*) from pg_stat_activity where application_name = 'pgbench'", 10s);
        return r.exit_code == 0 && r.out == "4\n";
      },
      30s, 100ms);

  const auto cases = barrage_cases();
  std::mutex mutex;
  std::vector<std::string> failures;
  int rounds = 0;
  if (bench_running) {
    do {
      run_in_parallel(static_cast<int>(cases.size()), [&](int i) {
        const auto& c = cases[static_cast<std::size_t>(i)];
        BarrageOutcome outcome;
        try {
          outcome = run_barrage_case(gateway, c);
        } catch (const std::exception& e) {
          outcome = {false, e.what()};
        }
        if (!outcome.ok) {
          std::lock_guard lock(mutex);
          failures.push_back("round " + std::to_string(rounds) + ", " + c.name + ": " + outcome.why);
        }
      });
      ++rounds;
    } while (!bench_done);
  }
  bench_thread.join();
  ASSERT_TRUE(bench_running) << "pgbench's sessions never showed up\n" << bench.describe();

  EXPECT_TRUE(failures.empty()) << ::testing::PrintToString(failures);
  EXPECT_GE(rounds, 2) << "the barrage did not overlap pgbench's run";
  EXPECT_EQ(bench.exit_code, 0) << bench.describe();
  const auto summary = parse_pgbench(bench.out);
  EXPECT_TRUE(summary.parsed) << bench.out;
  EXPECT_EQ(summary.failed, 0) << bench.out;
  EXPECT_GT(summary.processed, 0) << bench.out;
  EXPECT_EQ(cluster.ready_count(), 1) << "the instance restarted under the barrage";

  // Every connection pgnap accepted is closed again: back to its sockets at rest.
  std::size_t now = 0;
  EXPECT_TRUE(wait_until([&] { return (now = open_sockets(gateway.pid()).size()) == baseline; }, 15s))
      << "pgnap holds " << now << " sockets, " << baseline << " before the barrage";
  EXPECT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0) << "the gateway stopped serving";
}

}  // namespace
}  // namespace pgnap::it
