// daemon/tls.h: the clients' TLS context from [gateway.tls] and its reload. Certificates are
// made at test time with OpenSSL's C API; handshakes run over an in-memory BIO pair, so no
// socket is opened.
#include "daemon/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

namespace pgnap::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Ssl = std::unique_ptr<SSL, SslFree>;

// A key of the given type: "EC" (P-256) or "ED25519".
Pkey make_key(const char* type) {
  Pkey key(std::string(type) == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                     : EVP_PKEY_Q_keygen(nullptr, nullptr, type));
  if (!key) throw std::runtime_error(std::string("cannot generate a key of type ") + type);
  return key;
}

// A self-signed certificate for `common_name`, valid from now for a day.
Cert make_cert(EVP_PKEY* key, const std::string& common_name) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  const EVP_MD* digest = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), key, digest) == 0) throw std::runtime_error("cannot sign the certificate");
  return cert;
}

std::string common_name(X509* cert) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, sizeof buffer);
  return buffer;
}

// A private directory for the test's PEM files: in /dev/shm when there is one.
class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
    std::string dir = base + "/pgnap_tls_test_XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a new key and a self-signed certificate for `cn` as NAME.key and NAME.crt.
  config::TlsConfig write_pair(const std::string& name, const std::string& cn, const char* key_type = "EC") {
    Pkey key = make_key(key_type);
    Cert cert = make_cert(key.get(), cn);
    write_pem(path(name + ".key"),
              [&](FILE* f) { return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
    write_pem(path(name + ".crt"), [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
    return config::TlsConfig{"require", path(name + ".crt"), path(name + ".key"), ""};
  }

  void write_text(const std::string& file, const std::string& text) { std::ofstream(path(file)) << text; }

  template <class Write>
  static void write_pem(const std::string& file, Write write) {
    FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr) << file;
    EXPECT_EQ(write(f), 1) << file;
    std::fclose(f);
  }

  fs::path dir_;
};

// Runs a handshake between a fresh client of make_client_context() and `server` over a BIO
// pair. Returns the certificate's common name the client saw, or "" when it failed.
std::string handshake(const std::shared_ptr<ssl::context>& server) {
  auto client_context = make_client_context();
  Ssl s(SSL_new(server->native_handle()));
  Ssl c(SSL_new(client_context->native_handle()));
  BIO* server_bio = nullptr;
  BIO* client_bio = nullptr;
  if (BIO_new_bio_pair(&server_bio, 0, &client_bio, 0) != 1) return "";
  SSL_set_bio(s.get(), server_bio, server_bio);
  SSL_set_bio(c.get(), client_bio, client_bio);
  SSL_set_accept_state(s.get());
  SSL_set_connect_state(c.get());
  bool server_done = false;
  bool client_done = false;
  // Each round moves the handshake on by at least one flight; a dozen is plenty.
  for (int round = 0; round < 12 && !(server_done && client_done); ++round) {
    if (!client_done) {
      const int r = SSL_do_handshake(c.get());
      if (r == 1) {
        client_done = true;
      } else if (const int e = SSL_get_error(c.get(), r); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        break;
      }
    }
    if (!server_done) {
      const int r = SSL_do_handshake(s.get());
      if (r == 1) {
        server_done = true;
      } else if (const int e = SSL_get_error(s.get(), r); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        break;
      }
    }
  }
  ERR_clear_error();
  if (!server_done || !client_done) return "";
  X509* peer = SSL_get0_peer_certificate(c.get());
  return peer ? common_name(peer) : "";
}

// The certificate a context serves, by its common name.
std::string served_name(const std::shared_ptr<ssl::context>& context) {
  X509* cert = context ? SSL_CTX_get0_certificate(context->native_handle()) : nullptr;
  return cert ? common_name(cert) : "";
}

// ---- make_server_context / make_client_context ------------------------------------------------

TEST_F(TlsServerTest, ServerContextServesTheCertificateAndSpeaksTls12OrLater) {
  const config::TlsConfig config = write_pair("a", "a.test");
  std::string error;
  auto context = make_server_context(config, error);
  ASSERT_NE(context, nullptr) << error;
  EXPECT_EQ(error, "");
  EXPECT_EQ(served_name(context), "a.test");
  const auto options = SSL_CTX_get_options(context->native_handle());
  EXPECT_NE(options & SSL_OP_NO_SSLv3, 0u);
  EXPECT_NE(options & SSL_OP_NO_TLSv1, 0u);
  EXPECT_NE(options & SSL_OP_NO_TLSv1_1, 0u);
  EXPECT_NE(options & SSL_OP_NO_COMPRESSION, 0u);
  // Without a ca, clients are not asked for a certificate.
  EXPECT_EQ(SSL_CTX_get_verify_mode(context->native_handle()), SSL_VERIFY_NONE);
  EXPECT_EQ(handshake(context), "a.test");
}

TEST_F(TlsServerTest, ClientContextDoesNotVerifyAndSpeaksTls12OrLater) {
  auto context = make_client_context();
  ASSERT_NE(context, nullptr);
  EXPECT_EQ(SSL_CTX_get_verify_mode(context->native_handle()), SSL_VERIFY_NONE);
  const auto options = SSL_CTX_get_options(context->native_handle());
  EXPECT_NE(options & SSL_OP_NO_TLSv1, 0u);
  EXPECT_NE(options & SSL_OP_NO_TLSv1_1, 0u);
}

TEST_F(TlsServerTest, CaRequiresAndVerifiesClientCertificates) {
  config::TlsConfig config = write_pair("a", "a.test");
  config.ca = write_pair("ca", "clients-ca.test").cert;
  std::string error;
  auto context = make_server_context(config, error);
  ASSERT_NE(context, nullptr) << error;
  EXPECT_EQ(SSL_CTX_get_verify_mode(context->native_handle()), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  // The client context has no certificate to show.
  EXPECT_EQ(handshake(context), "");
}

TEST_F(TlsServerTest, ServerContextErrorsNameTheFile) {
  const config::TlsConfig good = write_pair("a", "a.test");
  std::string error;

  config::TlsConfig missing_cert = good;
  missing_cert.cert = path("nope.crt");
  EXPECT_EQ(make_server_context(missing_cert, error), nullptr);
  EXPECT_THAT(error, StartsWith("cannot use the certificate " + path("nope.crt") + ": "));

  config::TlsConfig missing_key = good;
  missing_key.key = path("nope.key");
  error.clear();
  EXPECT_EQ(make_server_context(missing_key, error), nullptr);
  EXPECT_THAT(error, StartsWith("cannot use the private key " + path("nope.key") + ": "));

  write_text("garbage.crt", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  config::TlsConfig garbage = good;
  garbage.cert = path("garbage.crt");
  error.clear();
  EXPECT_EQ(make_server_context(garbage, error), nullptr);
  EXPECT_THAT(error, StartsWith("cannot use the certificate " + path("garbage.crt") + ": "));

  config::TlsConfig missing_ca = good;
  missing_ca.ca = path("nope-ca.pem");
  error.clear();
  EXPECT_EQ(make_server_context(missing_ca, error), nullptr);
  EXPECT_THAT(error, StartsWith("cannot use the CA " + path("nope-ca.pem") + ": "));
}

TEST_F(TlsServerTest, AKeyOfAnotherCertificateIsRefused) {
  const config::TlsConfig a = write_pair("a", "a.test");
  const config::TlsConfig b = write_pair("b", "b.test");
  config::TlsConfig mixed = a;
  mixed.key = b.key;  // same key type, another key: OpenSSL refuses it while loading
  std::string error;
  EXPECT_EQ(make_server_context(mixed, error), nullptr);
  EXPECT_THAT(error, HasSubstr(b.key));

  // Another key type is only caught by the final check.
  const config::TlsConfig ed = write_pair("ed", "ed.test", "ED25519");
  mixed.key = ed.key;
  error.clear();
  EXPECT_EQ(make_server_context(mixed, error), nullptr);
  EXPECT_EQ(error, "the private key " + ed.key + " does not match the certificate " + a.cert);
}

// ---- TlsServer --------------------------------------------------------------------------------

TEST_F(TlsServerTest, StartsDisabled) {
  TlsServer server;
  EXPECT_EQ(server.mode(), "disable");
  EXPECT_EQ(server.context(), nullptr);
}

TEST_F(TlsServerTest, LoadWithAGoodPairSetsModeAndContext) {
  config::TlsConfig config = write_pair("a", "a.test");
  config.mode = "allow";
  TlsServer server;
  server.load(config);
  EXPECT_EQ(server.mode(), "allow");
  ASSERT_NE(server.context(), nullptr);
  EXPECT_EQ(handshake(server.context()), "a.test");
}

TEST_F(TlsServerTest, LoadDisabledIgnoresTheFiles) {
  TlsServer server;
  server.load(config::TlsConfig{"disable", path("nope.crt"), path("nope.key"), ""});
  EXPECT_EQ(server.mode(), "disable");
  EXPECT_EQ(server.context(), nullptr);
}

TEST_F(TlsServerTest, LoadWithABadFileThrowsNamingTheTableAndFile) {
  config::TlsConfig config = write_pair("a", "a.test");
  config.cert = path("nope.crt");
  TlsServer server;
  try {
    server.load(config);
    FAIL() << "expected load to throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), StartsWith("[gateway.tls]: cannot use the certificate " + path("nope.crt") + ": "));
  }
  EXPECT_EQ(server.mode(), "disable");
  EXPECT_EQ(server.context(), nullptr);
}

TEST_F(TlsServerTest, ReloadWithAMissingCertificateKeepsTheRunningOne) {
  const config::TlsConfig good = write_pair("a", "a.test");
  TlsServer server;
  server.load(good);
  const auto before = server.context();

  config::TlsConfig bad = good;
  bad.mode = "allow";
  bad.cert = path("nope.crt");
  std::string error;
  EXPECT_FALSE(server.reload(bad, error));
  EXPECT_THAT(error, StartsWith("cannot use the certificate " + path("nope.crt") + ": "));
  // Neither the context nor the mode of the failed configuration.
  EXPECT_EQ(server.context(), before);
  EXPECT_EQ(server.mode(), "require");
  EXPECT_EQ(handshake(server.context()), "a.test");
}

TEST_F(TlsServerTest, ReloadWithUnusableFilesKeepsTheRunningOne) {
  const config::TlsConfig good = write_pair("a", "a.test");
  TlsServer server;
  server.load(good);
  const auto before = server.context();

  // The files renewed in place, but the new certificate is truncated.
  write_text("a.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n");
  std::string error;
  EXPECT_FALSE(server.reload(good, error));
  EXPECT_THAT(error, StartsWith("cannot use the certificate " + good.cert));
  EXPECT_EQ(server.context(), before);

  // A key that is not the certificate's.
  const config::TlsConfig other = write_pair("b", "b.test");
  config::TlsConfig mismatched = write_pair("c", "c.test");
  mismatched.key = other.key;
  error.clear();
  EXPECT_FALSE(server.reload(mismatched, error));
  EXPECT_THAT(error, HasSubstr(other.key));
  EXPECT_EQ(server.context(), before);
  EXPECT_EQ(handshake(server.context()), "a.test");
}

TEST_F(TlsServerTest, ReloadWithANewGoodCertificateReplacesIt) {
  TlsServer server;
  server.load(write_pair("a", "a.test"));
  const auto before = server.context();

  config::TlsConfig renewed = write_pair("b", "b.test");
  renewed.mode = "allow";
  std::string error;
  ASSERT_TRUE(server.reload(renewed, error)) << error;
  EXPECT_EQ(error, "");
  EXPECT_NE(server.context(), before);
  EXPECT_EQ(server.mode(), "allow");
  EXPECT_EQ(handshake(server.context()), "b.test");
  // A session that started before the reload keeps its context, and it still works.
  EXPECT_EQ(handshake(before), "a.test");
}

TEST_F(TlsServerTest, ReloadRereadsFilesReplacedInPlace) {
  // What a certificate renewal (certbot, an ACME client) does: same paths, new contents.
  const config::TlsConfig config = write_pair("live", "old.test");
  TlsServer server;
  server.load(config);
  EXPECT_EQ(served_name(server.context()), "old.test");
  ASSERT_EQ(write_pair("live", "new.test").cert, config.cert);
  std::string error;
  ASSERT_TRUE(server.reload(config, error)) << error;
  EXPECT_EQ(served_name(server.context()), "new.test");
  EXPECT_EQ(handshake(server.context()), "new.test");
}

TEST_F(TlsServerTest, ReloadToDisableDropsTheContextWhateverTheFiles) {
  TlsServer server;
  server.load(write_pair("a", "a.test"));
  std::string error;
  EXPECT_TRUE(server.reload(config::TlsConfig{"disable", path("nope.crt"), "", ""}, error));
  EXPECT_EQ(error, "");
  EXPECT_EQ(server.mode(), "disable");
  EXPECT_EQ(server.context(), nullptr);

  // ...and back on.
  ASSERT_TRUE(server.reload(write_pair("b", "b.test"), error)) << error;
  EXPECT_EQ(server.mode(), "require");
  EXPECT_EQ(handshake(server.context()), "b.test");
}

TEST_F(TlsServerTest, FailedReloadWhileDisabledStaysDisabled) {
  TlsServer server;
  std::string error;
  EXPECT_FALSE(server.reload(config::TlsConfig{"require", path("nope.crt"), path("nope.key"), ""}, error));
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(server.mode(), "disable");
  EXPECT_EQ(server.context(), nullptr);
}

}  // namespace
}  // namespace pgnap::daemon
