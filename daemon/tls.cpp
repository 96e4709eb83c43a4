#include "daemon/tls.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "auth/scram.h"

namespace pgnap::daemon {

namespace {

std::string openssl_error(const boost::system::system_error& e) {
  std::string text = e.code().message();
  // Asio's message for an OpenSSL error is the last reason; the queue may say more.
  if (const unsigned long code = ERR_peek_last_error(); code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (text.find(buf) == std::string::npos) text += " (" + std::string(buf) + ")";
  }
  ERR_clear_error();
  return text;
}

}  // namespace

std::optional<std::string> tls_server_end_point(SSL* tls) {
  if (tls == nullptr) return std::nullopt;
  X509* certificate = SSL_get_certificate(tls);  // ours, as presented in this handshake
  if (certificate == nullptr) return std::nullopt;
  int digest_nid = 0;
  int key_nid = 0;
  if (OBJ_find_sigid_algs(X509_get_signature_nid(certificate), &digest_nid, &key_nid) != 1) return std::nullopt;
  unsigned char* der = nullptr;
  const int length = i2d_X509(certificate, &der);
  if (length <= 0) return std::nullopt;
  const std::string bytes(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return auth::tls_server_end_point(bytes, digest_nid);
}

std::shared_ptr<ssl::context> make_server_context(const config::TlsConfig& config, std::string& error) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  // Old protocols and compression off; a fresh key per handshake for (EC)DHE.
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                       ssl::context::single_dh_use);
  std::string step;
  try {
    step = "certificate " + config.cert;
    context->use_certificate_chain_file(config.cert);
    step = "private key " + config.key;
    context->use_private_key_file(config.key, ssl::context::pem);
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      error = "the private key " + config.key + " does not match the certificate " + config.cert;
      ERR_clear_error();
      return nullptr;
    }
    if (!config.ca.empty()) {
      step = "CA " + config.ca;
      context->load_verify_file(config.ca);
      context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
  } catch (const boost::system::system_error& e) {
    error = "cannot use the " + step + ": " + openssl_error(e);
    return nullptr;
  }
  return context;
}

std::shared_ptr<ssl::context> make_client_context() {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression);
  context->set_verify_mode(ssl::verify_none);
  return context;
}

void TlsServer::load(const config::TlsConfig& config) {
  std::string error;
  if (!reload(config, error)) throw std::runtime_error("[gateway.tls]: " + error);
}

bool TlsServer::reload(const config::TlsConfig& config, std::string& error) {
  if (config.mode == "disable") {
    mode_ = config.mode;
    context_.reset();
    return true;
  }
  auto context = make_server_context(config, error);
  if (!context) return false;
  mode_ = config.mode;
  context_ = std::move(context);
  return true;
}

}  // namespace pgnap::daemon
