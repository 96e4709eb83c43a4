// A minimal HTTP/1.1 client for the tests: /metrics from pgnap, the query API of a real
// Prometheus. Loopback only, one request per connection, bounded by a deadline.
#include "tests/integration/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>

namespace pgnap::it {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

HttpResponse http_get(std::uint16_t port, const std::string& target, Millis timeout) {
  HttpResponse out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [&] {
    return static_cast<int>(std::max<long long>(
        0, std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now()).count()));
  };
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) {
    out.error = std::string("socket: ") + std::strerror(errno);
    return out;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    out.error = std::string("connect: ") + std::strerror(errno);
    return out;
  }
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nUser-Agent: pgnap-tests\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  if (::send(s.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    out.error = std::string("send: ") + std::strerror(errno);
    return out;
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    pollfd p{s.fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, left_ms());
    if (ready <= 0) {
      out.error = "no complete response within the deadline";
      return out;
    }
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      out.error = std::string("recv: ") + std::strerror(errno);
      return out;
    }
    if (n == 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  const auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || raw.size() < 12) {
    out.error = "not an HTTP response: " + raw.substr(0, 200);
    return out;
  }
  out.status = std::atoi(raw.c_str() + 9);
  out.headers = raw.substr(0, head_end);
  out.body = raw.substr(head_end + 4);
  // Prometheus answers "Connection: close" requests without chunking; de-chunk just in case.
  if (out.headers.find("Transfer-Encoding: chunked") != std::string::npos ||
      out.headers.find("transfer-encoding: chunked") != std::string::npos) {
    std::string body;
    std::size_t at = 0;
    while (at < out.body.size()) {
      const auto eol = out.body.find("\r\n", at);
      if (eol == std::string::npos) break;
      const auto size = std::stoul(out.body.substr(at, eol - at), nullptr, 16);
      if (size == 0) break;
      body += out.body.substr(eol + 2, size);
      at = eol + 2 + size + 2;
    }
    out.body = std::move(body);
  }
  return out;
}

std::string url_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

double metric_value(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

double scrape_metric(std::uint16_t metrics_port, const std::string& series) {
  const auto r = http_get(metrics_port, "/metrics");
  return r.status == 200 ? metric_value(r.body, series) : -2;
}

}  // namespace pgnap::it
