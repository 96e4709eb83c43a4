#include "daemon/metrics_endpoint.h"

#include <array>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/backend_address.h"
#include "daemon/log.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t kMaxRequest = 8192;
constexpr std::size_t kMaxScrapers = 16;
constexpr auto kReadDeadline = std::chrono::seconds(5);
constexpr auto kWriteDeadline = std::chrono::seconds(10);

std::string response(int status, std::string_view reason, std::string_view content_type, const std::string& body,
                     bool head_only, std::string_view extra_headers = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  out += "Connection: close\r\n\r\n";
  if (!head_only) out += body;
  return out;
}

}  // namespace

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return false;
  unsigned long p = 0;
  for (std::size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    p = p * 10 + static_cast<unsigned long>(text[i] - '0');
    if (p > 65535) return false;
  }
  port = static_cast<std::uint16_t>(p);
  return true;
}

MetricsEndpoint::MetricsEndpoint(asio::io_context& io, const std::string& listen, std::function<std::string()> render)
    : io_(io), acceptor_(io), render_(std::move(render)) {
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(listen, host, port)) throw std::runtime_error("bad [metrics] listen address: " + listen);
  asio::ip::tcp::resolver resolver(io);
  // Start-up only, before the loop runs.
  auto results = resolver.resolve(host, std::to_string(port),
                                  asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service);
  if (results.empty()) throw std::runtime_error("cannot resolve [metrics] listen address " + listen);
  const asio::ip::tcp::endpoint ep = results.begin()->endpoint();
  acceptor_.open(asio::generic::stream_protocol(ep.protocol()));
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(64);
  name_ = endpoint_to_string(acceptor_.local_endpoint());
}

void MetricsEndpoint::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void MetricsEndpoint::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (Socket* s : open_) s->close(ec);
}

asio::awaitable<void> MetricsEndpoint::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (stopped_ || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
    if (ec) {
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (open_.size() >= kMaxScrapers) continue;  // closed at once: nobody scrapes that often
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> MetricsEndpoint::serve(Socket socket) {
  open_.insert(&socket);
  struct Forget {
    std::set<Socket*>& open;
    Socket* s;
    ~Forget() { open.erase(s); }
  } forget{open_, &socket};

  std::string request;
  std::array<char, 1024> chunk;
  asio::steady_timer deadline(io_, kReadDeadline);
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() > kMaxRequest) co_return;
    auto r = co_await (socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable)) ||
                       deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return;
    const auto [ec, n] = std::get<0>(r);
    if (ec) co_return;
    request.append(chunk.data(), n);
  }

  // "GET /metrics HTTP/1.1"
  const auto line_end = request.find("\r\n");
  const std::string line = request.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  std::string out;
  if (sp1 == std::string::npos || sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    out = response(400, "Bad Request", "text/plain; charset=utf-8", "bad request\n", false);
  } else {
    const std::string method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?'));
    const bool head = method == "HEAD";
    if (method != "GET" && !head) {
      out = response(405, "Method Not Allowed", "text/plain; charset=utf-8", "only GET\n", false,
                     "Allow: GET, HEAD\r\n");
    } else if (target == "/metrics") {
      out = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render_(), head);
    } else if (target == "/") {
      out = response(200, "OK", "text/plain; charset=utf-8", "pgnap: Prometheus metrics at /metrics\n", head);
    } else {
      out = response(404, "Not Found", "text/plain; charset=utf-8", "not found; metrics are at /metrics\n", head);
    }
  }
  (void)co_await write_all(socket, out, Clock::now() + kWriteDeadline);
  boost::system::error_code ignored;
  socket.shutdown(Socket::shutdown_send, ignored);
}

}  // namespace pgnap::daemon
