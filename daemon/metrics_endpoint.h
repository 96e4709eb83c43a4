// The Prometheus endpoint: GET /metrics over plain HTTP/1.1, served on the gateway's own
// io_context. Rendering is a few microseconds of string building; the I/O is asynchronous
// and bounded (request size, deadlines, a cap on concurrent scrapers), so a slow or hostile
// scraper can never hold up the relay, and an idle endpoint costs no wakeups.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/io_context.hpp>

#include "daemon/net.h"

namespace pgnap::daemon {

class MetricsEndpoint {
 public:
  // `listen`: "host:port" ([v6]:port for IPv6); port 0 picks a free port. Binds at once
  // (start-up: throws std::runtime_error when it cannot).
  MetricsEndpoint(asio::io_context& io, const std::string& listen, std::function<std::string()> render);

  // "127.0.0.1:9932", with the real port.
  [[nodiscard]] const std::string& name() const { return name_; }
  void start();
  // Closes the listener and any scrape in progress.
  void stop();

 private:
  using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(Socket socket);

  asio::io_context& io_;
  Acceptor acceptor_;
  std::string name_;
  std::function<std::string()> render_;
  std::set<Socket*> open_;
  bool stopped_ = false;
};

// Splits "host:port" / "[v6]:port"; false when malformed.
[[nodiscard]] bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port);

}  // namespace pgnap::daemon
