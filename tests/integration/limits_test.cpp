// Limits that hold under abuse, each counted in the metrics: max_clients (53300),
// login_timeout (a stalled raw socket, and a stalled TLS handshake, closed on time),
// max_message_size (08P01, the session ended, others unaffected), and keepalive on client
// sockets.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

constexpr std::uint32_t kSslRequest = 80877103;

double limit_hits(const Gateway& gateway, const std::string& limit) {
  return scrape_metric(gateway.metrics_port(), "pgnap_limit_hits_total{limit=\"" + limit + "\"}");
}

TEST(LimitsTest, MaxClientsRefusesTheNextClientWith53300UntilOneLeaves) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.gateway_extra = "max_clients = 2\n";
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &cluster);

  auto first = connect_or_throw(gateway.conninfo(), 60s);
  // A raw socket that has not even sent its startup counts too: slots are connections.
  auto raw = RawClient::tcp(gateway.port());
  const auto refused = connect(gateway.conninfo(), 30s);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.server.sqlstate, "53300") << refused.error;
  EXPECT_THAT(refused.server.message, HasSubstr("too many connections"));
  EXPECT_EQ(limit_hits(gateway, "max_clients"), 1);

  first.reset();
  // The slot is free once pgnap has seen the session end.
  EXPECT_TRUE(wait_until([&] { return connect(gateway.conninfo(), 30s).ok(); }, 10s, 100ms));
}

TEST(LimitsTest, LoginTimeoutClosesAStalledSocketAndAStalledTlsHandshakeOnTime) {
  Cluster cluster;
  TempDir pki(false);
  const auto gen = run_command({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                "-nodes", "-keyout", pki.path() + "/k.pem", "-out", pki.path() + "/c.pem", "-days", "1",
                                "-subj", "/CN=localhost"},
                               30s);
  ASSERT_EQ(gen.exit_code, 0) << gen.describe();
  auto options = GatewayOptions::for_cluster(cluster);
  options.login_timeout = "1s";
  options.metrics_listen = "127.0.0.1:0";
  options.extra_toml = "[gateway.tls]\nmode = \"allow\"\ncert = " + toml_quote(pki.path() + "/c.pem") +
                       "\nkey = " + toml_quote(pki.path() + "/k.pem") + "\n";
  Gateway gateway(options, &cluster);

  const auto started = std::chrono::steady_clock::now();
  auto silent = RawClient::tcp(gateway.port());
  // SSLRequest answered 'S', then nothing: a slowloris inside the TLS handshake.
  auto stalled_tls = RawClient::tcp(gateway.port());
  ASSERT_TRUE(stalled_tls.send(be32(8) + be32(kSslRequest)));
  EXPECT_EQ(stalled_tls.read_until([](std::string_view b) { return !b.empty(); }, 5s).bytes, "S");

  EXPECT_TRUE(silent.read_until_closed(10s).closed) << "silent client never dropped";
  EXPECT_TRUE(stalled_tls.read_until_closed(10s).closed) << "stalled TLS handshake never dropped";
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 900ms) << "closed before login_timeout";
  EXPECT_EQ(limit_hits(gateway, "login_timeout"), 2);
  EXPECT_EQ(cluster.ready_count(), 0);
  EXPECT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0) << "the gateway stopped serving";
}

TEST(LimitsTest, MessageAboveMaxMessageSizeEndsThatSessionWith08P01Only) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.gateway_extra = "max_message_size = \"64kB\"\n";
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &cluster);

  auto bystander = connect_or_throw(gateway.conninfo(), 60s);
  // 100 kB of query text: one Query message above 64 kB. psql shows the FATAL (libpq keeps
  // its text, not its fields, when the connection closes right after it, as with
  // PostgreSQL's own FATALs).
  const std::string sql = "select length('" + std::string(100 * 1024, 'x') + "')";
  const auto r = run_command({"psql", "-X", "-v", "VERBOSITY=verbose", "-c", sql, gateway.conninfo()}, 30s);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("FATAL:  08P01: invalid message from client: message of type 'Q' claims length"));
  EXPECT_THAT(r.err, HasSubstr("above the maximum of 65536 bytes"));
  EXPECT_THAT(r.err, HasSubstr("raise max_message_size"));
  EXPECT_EQ(limit_hits(gateway, "max_message_size"), 1);

  // Below the limit is fine, and the other session never noticed.
  const auto small = query(bystander.get(), "select length('" + std::string(32 * 1024, 'x') + "')");
  ASSERT_TRUE(small.ok) << small.error.message;
  EXPECT_EQ(small.value, "32768");
}

TEST(LimitsTest, ClientSocketsHaveKeepaliveAndNoDelay) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.gateway_extra = "tcp_keepalive_idle = \"45s\"\ntcp_keepalive_interval = \"5s\"\ntcp_keepalive_count = 3\n";
  Gateway gateway(options, &cluster);
  auto session = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(session.get(), "select 1").ok);
  // ss shows the keepalive timer pgnap's side of the connection runs: "timer:(keepalive,...)".
  // (While data is unacknowledged ss shows the retransmission timer instead: poll a moment.)
  CommandResult ss;
  const bool keepalive = wait_until(
      [&] {
        ss = run_command({"ss", "-tnoH", "state", "established", "sport", "= :" + std::to_string(gateway.port())});
        return ss.out.find("keepalive") != std::string::npos;
      },
      5s, 100ms);
  ASSERT_TRUE(keepalive) << "no keepalive timer on pgnap's side of the connection: " << ss.describe();
  // The configured idle time (45 s), not the kernel's default of two hours ("119min").
  EXPECT_THAT(ss.out, ::testing::ContainsRegex("timer:\\(keepalive,[0-9]+sec")) << ss.out;
}

}  // namespace
}  // namespace pgnap::it
