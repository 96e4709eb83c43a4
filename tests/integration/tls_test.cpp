// TLS on both sides of pgnap, with certificates the test makes with the openssl CLI:
// clients with sslmode=require and verify-full, plaintext refused in mode "require", bytes
// injected after an SSLRequest refused, certificates reloaded on SIGHUP (a broken one keeps
// the old), and TLS from pgnap to a PostgreSQL with ssl = on.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

constexpr std::uint32_t kSslRequest = 80877103;

// A CA and certificates it signed, in a directory of their own.
class Pki {
 public:
  Pki() : dir_(/*for_postgres=*/true) {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             path("ca.key"), "-out", path("ca.crt"), "-days", "2", "-subj", "/CN=pgnap test CA"});
  }

  // NAME.crt and NAME.key for CN=`cn`, valid for localhost and 127.0.0.1, signed by the CA.
  void issue(const std::string& name, const std::string& cn) {
    write_file(path("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             path(name + ".key"), "-out", path(name + ".csr"), "-subj", "/CN=" + cn});
    openssl({"x509", "-req", "-in", path(name + ".csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
             "-CAcreateserial", "-out", path(name + ".crt"), "-days", "2", "-extfile", path("san.ext")});
    // PostgreSQL refuses a key that others may read.
    std::filesystem::permissions(path(name + ".key"),
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    chown_to_postgres(dir_.path());
  }

  [[nodiscard]] std::string path(const std::string& file) const { return dir_.path() + "/" + file; }

 private:
  static void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    const auto r = run_command(args, 30s);
    if (r.exit_code != 0) throw std::runtime_error("openssl failed: " + r.describe());
  }
  TempDir dir_;
};

GatewayOptions tls_options(const Cluster& cluster, const Pki& pki, const std::string& mode) {
  auto options = GatewayOptions::for_cluster(cluster);
  options.login_timeout = "2s";
  options.extra_toml = "[gateway.tls]\nmode = \"" + mode + "\"\ncert = " + toml_quote(pki.path("server.crt")) +
                       "\nkey = " + toml_quote(pki.path("server.key")) + "\n";
  return options;
}

// The subject of the certificate pgnap presents, as `openssl s_client -starttls postgres`
// sees it ("" if the handshake failed).
std::string presented_subject(std::uint16_t port) {
  const auto r = run_command({"openssl", "s_client", "-starttls", "postgres", "-connect",
                              "127.0.0.1:" + std::to_string(port), "-brief"},
                             20s, "");
  for (const auto& stream : {r.out, r.err}) {
    const auto at = stream.find("Peer certificate: ");
    if (at != std::string::npos) {
      const auto end = stream.find('\n', at);
      return stream.substr(at + 18, end - at - 18);
    }
  }
  return "";
}

TEST(TlsTest, PsqlWithSslmodeRequireAndVerifyFullGetsEncryptedSessions) {
  Pki pki;
  pki.issue("server", "localhost");
  Cluster cluster;
  Gateway gateway(tls_options(cluster, pki, "allow"), &cluster);
  const std::string port = std::to_string(gateway.port());

  // sslmode=require: encrypted, certificate not checked.
  auto required = connect("host=127.0.0.1 port=" + port + " user=postgres dbname=postgres sslmode=require", 60s);
  ASSERT_TRUE(required.ok()) << required.error;
  EXPECT_EQ(PQsslInUse(required.conn.get()), 1);
  EXPECT_EQ(query(required.conn.get(), "select 'over tls'").value, "over tls");

  // verify-full: the chain to the test's CA and the host name (localhost) are checked.
  const std::string verified = "host=localhost hostaddr=127.0.0.1 port=" + port +
                               " user=postgres dbname=postgres sslmode=verify-full sslrootcert=" + pki.path("ca.crt");
  const auto r = psql(verified, "select 'verified'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "verified\n");
  auto full = connect(verified, 60s);
  ASSERT_TRUE(full.ok()) << full.error;
  EXPECT_EQ(PQsslInUse(full.conn.get()), 1);
  EXPECT_STREQ(PQsslAttribute(full.conn.get(), "protocol"), "TLSv1.3");

  // The same check against another CA fails: verification is real.
  Pki other;
  const auto wrong_ca = psql(
      "host=localhost hostaddr=127.0.0.1 port=" + port +
          " user=postgres dbname=postgres sslmode=verify-full sslrootcert=" + other.path("ca.crt"),
      "select 1");
  EXPECT_NE(wrong_ca.exit_code, 0);
  EXPECT_THAT(wrong_ca.err, HasSubstr("certificate verify failed"));

  // mode "allow": plaintext clients are still served.
  auto plain = connect("host=127.0.0.1 port=" + port + " user=postgres dbname=postgres sslmode=disable", 60s);
  ASSERT_TRUE(plain.ok()) << plain.error;
  EXPECT_EQ(PQsslInUse(plain.conn.get()), 0);
}

TEST(TlsTest, RequireRefusesAPlaintextStartupWith28000) {
  Pki pki;
  pki.issue("server", "localhost");
  Cluster cluster;
  Gateway gateway(tls_options(cluster, pki, "require"), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const std::string port = std::to_string(gateway.port());

  const auto plain = connect("host=127.0.0.1 port=" + port + " user=postgres dbname=postgres sslmode=disable", 30s);
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.server.severity, "FATAL");
  EXPECT_EQ(plain.server.sqlstate, "28000") << plain.error;
  EXPECT_THAT(plain.server.message, HasSubstr("accepts only TLS connections"));
  EXPECT_EQ(cluster.ready_count(), 0) << "a refused plaintext client woke the instance";

  // psql's default (sslmode=prefer) negotiates TLS and is served.
  const auto r = psql("host=127.0.0.1 port=" + port + " user=postgres dbname=postgres", "select 'prefer works'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "prefer works\n");
}

TEST(TlsTest, BytesPipelinedAfterAnSslRequestAreRefusedBeforeAnyHandshake) {
  Pki pki;
  pki.issue("server", "localhost");
  Cluster cluster;
  Gateway gateway(tls_options(cluster, pki, "allow"), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  // SSLRequest with a plaintext startup packet behind it in the same write: what a
  // man-in-the-middle injects so that the server reads it as if it came over TLS.
  auto raw = RawClient::tcp(gateway.port());
  ASSERT_TRUE(raw.send(be32(8) + be32(kSslRequest) + startup_packet({{"user", "postgres"}, {"database", "postgres"}})));
  const auto reply = raw.read_until_closed(10s);
  EXPECT_TRUE(reply.closed);
  ASSERT_FALSE(reply.bytes.empty());
  EXPECT_NE(reply.bytes.front(), 'S') << "pgnap agreed to TLS with injected bytes queued behind the request";
  const auto error = first_error(reply.bytes);
  ASSERT_TRUE(error.has_value()) << "no ErrorResponse";
  EXPECT_EQ(error->sqlstate, "08P01");
  EXPECT_THAT(error->message, HasSubstr("unencrypted data after SSL request"));
  EXPECT_EQ(cluster.ready_count(), 0) << "the injected startup reached the instance";

  // A well-behaved TLS client right after is unaffected.
  const auto r = psql("host=127.0.0.1 port=" + std::to_string(gateway.port()) +
                          " user=postgres dbname=postgres sslmode=require",
                      "select 1");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

// libpq with gssencmode=prefer asks for GSSAPI encryption first and, on 'N', for TLS on the
// same connection: pgnap refuses the first and accepts the second.
TEST(TlsTest, GssEncRequestGetsNThenAnSslRequestGetsS) {
  constexpr std::uint32_t kGssEncRequest = 80877104;
  Pki pki;
  pki.issue("server", "localhost");
  Cluster cluster;
  Gateway gateway(tls_options(cluster, pki, "require"), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto raw = RawClient::tcp(gateway.port());
  ASSERT_TRUE(raw.send(be32(8) + be32(kGssEncRequest)));
  const auto gss = raw.read_until([](std::string_view b) { return !b.empty(); }, 10s);
  ASSERT_EQ(gss.bytes, "N");
  ASSERT_TRUE(raw.send(be32(8) + be32(kSslRequest)));
  const auto ssl = raw.read_until([](std::string_view b) { return !b.empty(); }, 10s);
  EXPECT_EQ(ssl.bytes, "S");
  EXPECT_FALSE(ssl.closed);
}

TEST(TlsTest, SighupLoadsANewCertificateAndKeepsTheOldOneWhenTheNewOneIsBroken) {
  Pki pki;
  pki.issue("server", "first.example");
  Cluster cluster;
  Gateway gateway(tls_options(cluster, pki, "allow"), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  EXPECT_THAT(presented_subject(gateway.port()), HasSubstr("CN = first.example"));

  // Renewed in place, as certbot or an ACME client would; pgnap picks it up on SIGHUP.
  pki.issue("server", "second.example");
  ASSERT_EQ(::kill(gateway.pid(), SIGHUP), 0);
  ASSERT_TRUE(gateway.wait_for_log("configuration reloaded", 10s)) << gateway.log();
  EXPECT_THAT(presented_subject(gateway.port()), HasSubstr("CN = second.example"));

  // A truncated certificate: logged, and the running one stays in use.
  write_file(pki.path("server.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n");
  ASSERT_EQ(::kill(gateway.pid(), SIGHUP), 0);
  ASSERT_TRUE(gateway.wait_for_log("keeping the previous certificate", 10s)) << gateway.log();
  EXPECT_THAT(presented_subject(gateway.port()), HasSubstr("CN = second.example"));
  const auto r = psql("host=127.0.0.1 port=" + std::to_string(gateway.port()) +
                          " user=postgres dbname=postgres sslmode=require",
                      "select 'still encrypted'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "still encrypted\n");
  EXPECT_TRUE(gateway.running());
}

// The instance side: tls = "require" to a PostgreSQL with ssl = on gives an encrypted
// connection (pg_stat_ssl, seen by the server); against ssl = off the client is told why.
TEST(TlsTest, InstanceTlsRequireEncryptsTheConnectionToPostgresql) {
  Pki pki;
  pki.issue("server", "localhost");
  Cluster cluster(ClusterOptions{.tcp = true});
  cluster.append_conf("ssl = on\nssl_cert_file = '" + pki.path("server.crt") + "'\nssl_key_file = '" +
                      pki.path("server.key") + "'\n");
  auto options = GatewayOptions::for_cluster(cluster);
  options.instance_extra = "tls = \"require\"\n";
  Gateway gateway(options, &cluster);

  const auto r = psql(gateway.conninfo(), "select ssl from pg_stat_ssl where pid = pg_backend_pid()");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "t\n") << "the connection from pgnap to PostgreSQL is not encrypted";
}

TEST(TlsTest, InstanceTlsRequireAgainstAServerWithoutTlsIsRefusedWith57P03) {
  Cluster cluster(ClusterOptions{.tcp = true});
  auto options = GatewayOptions::for_cluster(cluster);
  options.instance_extra = "tls = \"require\"\n";
  {
    Gateway gateway(options, &cluster);
    const auto c = connect(gateway.conninfo(), 60s);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.server.sqlstate, "57P03") << c.error;
    EXPECT_THAT(c.server.detail, HasSubstr("does not offer TLS"));
  }

  // prefer: the same server is used without TLS.
  auto prefer = GatewayOptions::for_cluster(cluster);
  prefer.instance_extra = "tls = \"prefer\"\n";
  Gateway second(prefer, &cluster);
  const auto r = psql(second.conninfo(), "select ssl from pg_stat_ssl where pid = pg_backend_pid()");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "f\n");
}

// `pgnap check` loads the certificate and key as `pgnap run` would: a key that does not
// match, or a file that is missing, is reported before anyone restarts the service.
TEST(TlsTest, CheckLoadsTheCertificateAndKeyAndNamesTheProblem) {
  Pki pki;
  pki.issue("server", "localhost");
  pki.issue("other", "localhost");
  Cluster cluster;
  TempDir dir(false);
  const std::string config = dir.path() + "/pgnap.toml";
  auto check = [&](const GatewayOptions& options) {
    write_file(config, render_config(options, dir.path() + "/ledger.db"));
    return run_command({pgnap_binary(), "check", "-c", config}, 30s);
  };

  const auto good = check(tls_options(cluster, pki, "require"));
  ASSERT_EQ(good.exit_code, 0) << good.describe();
  EXPECT_THAT(good.out, HasSubstr("require (plaintext startups refused)"));
  EXPECT_THAT(good.out, HasSubstr(pki.path("server.crt")));

  auto mismatched = tls_options(cluster, pki, "allow");
  mismatched.extra_toml = "[gateway.tls]\nmode = \"allow\"\ncert = " + toml_quote(pki.path("server.crt")) +
                          "\nkey = " + toml_quote(pki.path("other.key")) + "\n";
  const auto bad_key = check(mismatched);
  EXPECT_EQ(bad_key.exit_code, 1) << bad_key.describe();
  EXPECT_THAT(bad_key.err, HasSubstr("gateway.tls")) << bad_key.describe();
  EXPECT_THAT(bad_key.err, HasSubstr(pki.path("other.key"))) << bad_key.describe();

  std::filesystem::remove(pki.path("server.crt"));
  const auto missing = check(tls_options(cluster, pki, "require"));
  EXPECT_EQ(missing.exit_code, 1) << missing.describe();
  EXPECT_THAT(missing.err, HasSubstr(pki.path("server.crt"))) << missing.describe();
}

}  // namespace
}  // namespace pgnap::it
