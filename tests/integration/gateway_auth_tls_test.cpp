// The authenticating mode over TLS: pgnap offers SCRAM-SHA-256-PLUS and binds the exchange to
// its certificate (tls-server-end-point, RFC 5929 section 4.1), so libpq with
// channel_binding=require logs in through it; without channel binding SCRAM-SHA-256 still
// works; plaintext is refused in mode "require". The binding data is the certificate's hash
// with the hash of its signature algorithm, so certificates signed with SHA-256 and SHA-384,
// with RSA and EC keys, are each tried against libpq's own computation.
#include <libpq-fe.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/auth_fixture.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

// A CA and a server certificate it signed, both with keys of `key` and signed with `digest`,
// in a directory of their own.
struct KeyKind {
  std::string name;                 // for traces: "EC P-256, SHA-256"
  std::vector<std::string> newkey;  // openssl req's -newkey and its options
  std::string digest;               // "-sha256", "-sha384"
  std::string signature_algorithm;  // as `openssl x509 -text` names it
};

const KeyKind kEcSha256{
    "EC P-256, SHA-256", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"}, "-sha256", "ecdsa-with-SHA256"};
const KeyKind kEcSha384{
    "EC P-384, SHA-384", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"}, "-sha384", "ecdsa-with-SHA384"};
const KeyKind kRsaSha256{"RSA 2048, SHA-256", {"-newkey", "rsa:2048"}, "-sha256", "sha256WithRSAEncryption"};

class Pki {
 public:
  explicit Pki(const KeyKind& kind) : dir_(/*for_postgres=*/true) {
    std::vector<std::string> ca{"req", "-x509"};
    ca.insert(ca.end(), kind.newkey.begin(), kind.newkey.end());
    ca.insert(ca.end(), {kind.digest, "-nodes", "-keyout", path("ca.key"), "-out", path("ca.crt"), "-days", "2",
                         "-subj", "/CN=pgnap test CA"});
    openssl(ca);
    write_file(path("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    std::vector<std::string> request{"req"};
    request.insert(request.end(), kind.newkey.begin(), kind.newkey.end());
    request.insert(request.end(),
                   {"-nodes", "-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=localhost"});
    openssl(request);
    openssl({"x509", "-req", kind.digest, "-in", path("server.csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
             "-CAcreateserial", "-out", path("server.crt"), "-days", "2", "-extfile", path("san.ext")});
    std::filesystem::permissions(path("server.key"),
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    chown_to_postgres(dir_.path());
  }

  [[nodiscard]] std::string path(const std::string& file) const { return dir_.path() + "/" + file; }
  // `openssl x509 -text` of the server certificate.
  [[nodiscard]] std::string server_certificate_text() const {
    return run_command({"openssl", "x509", "-noout", "-text", "-in", path("server.crt")}, 30s).out;
  }

 private:
  static void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    const auto r = run_command(args, 60s);
    if (r.exit_code != 0) throw std::runtime_error("openssl failed: " + r.describe());
  }
  TempDir dir_;
};

// alice and bob from the auth_file, [gateway.tls] mode = "require" with the Pki's server
// certificate, and /metrics.
GatewayOptions tls_options(AuthCluster& ac, const Pki& pki) {
  auto options = ac.file_options();
  options.metrics_listen = "127.0.0.1:0";
  options.extra_toml += "[gateway.tls]\nmode = \"require\"\ncert = " + toml_quote(pki.path("server.crt")) +
                        "\nkey = " + toml_quote(pki.path("server.key")) + "\n";
  return options;
}

std::string authentications(const std::string& method, const std::string& outcome) {
  return "pgnap_authentications_total{db_instance=\"main\",method=\"" + method + "\",outcome=\"" + outcome + "\"}";
}

// alice logs in with channel_binding=require (libpq then accepts nothing but
// SCRAM-SHA-256-PLUS, and checks the server's proof of the binding) and queries.
void expect_channel_binding_works(const Pki& pki, const KeyKind& kind) {
  SCOPED_TRACE(kind.name);
  ASSERT_THAT(pki.server_certificate_text(), HasSubstr("Signature Algorithm: " + kind.signature_algorithm))
      << "the test's certificate is not what it claims to be";
  AuthCluster ac;
  Gateway gateway(tls_options(ac, pki), &ac.cluster());
  auto c = connect(password_conninfo(gateway, "alice", kAlicePassword, "sslmode=require channel_binding=require"), 60s);
  ASSERT_TRUE(c.ok()) << c.error;
  EXPECT_EQ(PQsslInUse(c.conn.get()), 1);
  const auto who = query(c.conn.get(), "select current_user");
  ASSERT_TRUE(who.ok) << who.error.message;
  EXPECT_EQ(who.value, "alice");
  EXPECT_EQ(scrape_metric(gateway.metrics_port(), authentications("scram-sha-256-plus", "ok")), 1);
  EXPECT_EQ(scrape_metric(gateway.metrics_port(), authentications("scram-sha-256", "ok")), -1)
      << "counted as a login without channel binding";
}

TEST(GatewayAuthTlsTest, ChannelBindingRequiredByLibpqLogsInWithScramSha256PlusAndQueries) {
  Pki pki(kEcSha256);
  expect_channel_binding_works(pki, kEcSha256);
}

TEST(GatewayAuthTlsTest, ChannelBindingWorksWithAnRsaCertificateSignedWithSha256) {
  Pki pki(kRsaSha256);
  expect_channel_binding_works(pki, kRsaSha256);
}

// The binding data is the certificate hashed with SHA-384 here: a gateway that always hashed
// with SHA-256 would fail libpq's check.
TEST(GatewayAuthTlsTest, ChannelBindingWorksWithACertificateSignedWithSha384) {
  Pki pki(kEcSha384);
  expect_channel_binding_works(pki, kEcSha384);
}

TEST(GatewayAuthTlsTest, WithoutChannelBindingTlsLogsInWithScramSha256AndAWrongPasswordIsStillRefused) {
  Pki pki(kEcSha256);
  AuthCluster ac;
  Gateway gateway(tls_options(ac, pki), &ac.cluster());
  auto c = connect(password_conninfo(gateway, "alice", kAlicePassword, "sslmode=require channel_binding=disable"), 60s);
  ASSERT_TRUE(c.ok()) << c.error;
  EXPECT_EQ(PQsslInUse(c.conn.get()), 1);
  const auto who = query(c.conn.get(), "select current_user");
  ASSERT_TRUE(who.ok) << who.error.message;
  EXPECT_EQ(who.value, "alice");
  EXPECT_EQ(scrape_metric(gateway.metrics_port(), authentications("scram-sha-256", "ok")), 1);
  EXPECT_EQ(scrape_metric(gateway.metrics_port(), authentications("scram-sha-256-plus", "ok")), -1);

  // Channel binding proves nothing about the password: a wrong one fails either way.
  for (const std::string binding : {"require", "disable"}) {
    SCOPED_TRACE("channel_binding=" + binding);
    const auto wrong = connect(
        password_conninfo(gateway, "alice", "wrong", "sslmode=require channel_binding=" + binding), 30s);
    EXPECT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.server.sqlstate, "28P01") << wrong.error;
  }
  EXPECT_EQ(scrape_metric(gateway.metrics_port(), authentications("-", "wrong_password")), 2);

  // psql's defaults (sslmode=prefer, channel_binding=prefer) bind when they can.
  const auto r = psql(password_conninfo(gateway, "alice", kAlicePassword), "select 'bound'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "bound\n");
  EXPECT_EQ(scrape_metric(gateway.metrics_port(), authentications("scram-sha-256-plus", "ok")), 1);
}

// A session over TLS parks like a plaintext one (the relay stops between two TLS reads) and
// resumes on the same TLS connection with its setting and statement.
TEST(GatewayAuthTlsTest, ATlsSessionIsParkedWhileTheDatabaseSleepsAndResumesWithItsState) {
  Pki pki(kEcSha256);
  AuthCluster ac;
  auto options = tls_options(ac, pki);
  options.idle_timeout = "1s";
  options.min_awake = "0s";
  Gateway gateway(options, &ac.cluster());
  auto c = connect(password_conninfo(gateway, "alice", kAlicePassword, "sslmode=require"), 60s);
  ASSERT_TRUE(c.ok()) << c.error;
  ASSERT_TRUE(query(c.conn.get(), "set statement_timeout = '4321ms'").ok);
  ASSERT_TRUE(query(c.conn.get(), "prepare twice(int) as select $1 * 2").ok);
  ASSERT_TRUE(wait_until([&] { return !ac.cluster().is_running(); }, 30s, 100ms)) << gateway.log();
  EXPECT_EQ(scrape_metric(gateway.metrics_port(), "pgnap_parked_sessions{db_instance=\"main\"}"), 1);
  const auto doubled = query(c.conn.get(), "execute twice(21)");
  ASSERT_TRUE(doubled.ok) << doubled.error.message << gateway.log();
  EXPECT_EQ(doubled.value, "42");
  EXPECT_EQ(query(c.conn.get(), "show statement_timeout").value, "4321ms");
  EXPECT_EQ(PQsslInUse(c.conn.get()), 1);
  EXPECT_EQ(ac.starts(), 2);
}

TEST(GatewayAuthTlsTest, APlaintextClientIsRefusedWith28000BeforeAnyAuthentication) {
  Pki pki(kEcSha256);
  AuthCluster ac;
  Gateway gateway(tls_options(ac, pki), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const auto plain = connect(password_conninfo(gateway, "alice", kAlicePassword, "sslmode=disable"), 30s);
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.server.severity, "FATAL");
  EXPECT_EQ(plain.server.sqlstate, "28000") << plain.error;
  EXPECT_THAT(plain.server.message, HasSubstr("accepts only TLS connections"));
  const auto exposition = http_get(gateway.metrics_port(), "/metrics");
  ASSERT_EQ(exposition.status, 200) << exposition.error;
  EXPECT_THAT(exposition.body, ::testing::Not(HasSubstr("pgnap_authentications_total{")))
      << "a plaintext client was authenticated";
  EXPECT_EQ(ac.starts(), 0) << "a refused plaintext client woke the instance";
}

}  // namespace
}  // namespace pgnap::it
