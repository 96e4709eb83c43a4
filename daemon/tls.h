// TLS with OpenSSL through Boost.Asio's ssl: the context for clients (server side, from
// [gateway.tls], reloadable on SIGHUP) and the one for connections to instances.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"

namespace pgnap::daemon {

namespace ssl = boost::asio::ssl;

// Builds the server context: certificate chain, private key (checked against each other),
// and, with `ca`, required and verified client certificates. TLS 1.2 at least. nullptr with
// `error` set when a file cannot be used.
[[nodiscard]] std::shared_ptr<ssl::context> make_server_context(const config::TlsConfig& config, std::string& error);

// The context for connections to instances: TLS 1.2 or later, no certificate verification
// (as libpq's sslmode=require: encryption against passive eavesdropping on the path).
[[nodiscard]] std::shared_ptr<ssl::context> make_client_context();

// The clients' TLS: which mode, and the context sessions start with. Each session keeps the
// context it started with, so a reload never disturbs a handshake in progress.
// SCRAM-SHA-256-PLUS's tls-server-end-point binding data for a client connection on TLS:
// the hash of the certificate pgnap presented in that handshake (RFC 5929). nullopt
// without TLS, or when the certificate's signature algorithm cannot be hashed.
[[nodiscard]] std::optional<std::string> tls_server_end_point(SSL* tls);

class TlsServer {
 public:
  // Start-up: throws std::runtime_error naming the file and the problem.
  void load(const config::TlsConfig& config);
  // SIGHUP: a configuration whose files cannot be used keeps the running context (and mode);
  // false with `error` set.
  [[nodiscard]] bool reload(const config::TlsConfig& config, std::string& error);

  [[nodiscard]] const std::string& mode() const { return mode_; }  // disable | allow | require
  [[nodiscard]] std::shared_ptr<ssl::context> context() const { return context_; }

 private:
  std::string mode_ = "disable";
  std::shared_ptr<ssl::context> context_;
};

}  // namespace pgnap::daemon
