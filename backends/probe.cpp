#include "backends/probe.h"

#include <libpq-fe.h>

#include <array>
#include <cctype>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgnap::backends {

using namespace boost::asio::experimental::awaitable_operators;

std::string ProbeTarget::to_string() const {
  if (!host.empty() && host.front() == '/') return host + "/.s.PGSQL." + std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<std::string> sqlstate_from_libpq_message(std::string_view message) {
  // Verbose format: "<SEVERITY>:  <SQLSTATE>: <message>". The severity may be localized,
  // so look for the shape ":  XXXXX:" rather than a word.
  for (std::size_t pos = message.find(":  "); pos != std::string_view::npos; pos = message.find(":  ", pos + 1)) {
    const std::size_t start = pos + 3;
    if (start + 6 > message.size()) break;
    bool code = true;
    for (std::size_t i = 0; i < 5; ++i) {
      const char c = message[start + i];
      if (!(std::isdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c)))) code = false;
    }
    if (code && message[start + 5] == ':') return std::string(message.substr(start, 5));
  }
  return std::nullopt;
}

namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Waits until libpq's socket is readable or writable. The descriptor is borrowed: it is
// released (not closed) afterwards, since libpq owns it and may replace it.
asio::awaitable<bool> wait_socket(int fd, bool for_read, asio::steady_timer& deadline) {
  auto executor = co_await asio::this_coro::executor;
  asio::posix::stream_descriptor sd(executor, fd);
  auto wait = sd.async_wait(for_read ? asio::posix::stream_descriptor::wait_read
                                     : asio::posix::stream_descriptor::wait_write,
                            asio::as_tuple(asio::use_awaitable));
  auto r = co_await (std::move(wait) || deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
  sd.release();
  co_return r.index() == 0;
}

}  // namespace

asio::awaitable<ProbeResult> probe_once(ProbeTarget target, std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  if (!target.host.empty() && target.host.front() != '/') {
    boost::system::error_code ec;
    (void)asio::ip::make_address(target.host, ec);
    if (ec) {
      asio::ip::tcp::resolver resolver(executor);
      const std::string service = std::to_string(target.port);
      asio::steady_timer limit(executor, timeout);
      auto r = co_await (resolver.async_resolve(target.host, service, asio::as_tuple(asio::use_awaitable)) ||
                         limit.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 1) co_return ProbeResult{false, "resolving " + target.host + " took too long"};
      auto [rec, results] = std::get<0>(r);
      if (rec || results.empty()) {
        co_return ProbeResult{false, "cannot resolve " + target.host + ": " + (rec ? rec.message() : "no address")};
      }
      target.host = results.begin()->endpoint().address().to_string();
    }
  }
  const std::string port = std::to_string(target.port);
  const bool is_socket_dir = !target.host.empty() && target.host.front() == '/';
  // hostaddr for IP addresses: libpq then does no name lookup.
  const char* host_key = is_socket_dir ? "host" : "hostaddr";
  // A probe never negotiates TLS or GSS (a Kerberos lookup could block) and names itself.
  std::array<const char*, 9> keys{host_key,  "port",       "dbname",          "user", "application_name",
                                  "sslmode", "gssencmode", "connect_timeout", nullptr};
  std::array<const char*, 9> values{target.host.c_str(), port.c_str(), "postgres", "postgres", "pgnap-probe",
                                    "disable",           "disable",    "0",        nullptr};
  std::unique_ptr<PGconn, ConnCloser> conn(PQconnectStartParams(keys.data(), values.data(), 0));
  if (!conn) co_return ProbeResult{false, "libpq: out of memory"};
  PQsetErrorVerbosity(conn.get(), PQERRORS_VERBOSE);

  asio::steady_timer deadline(executor, timeout);
  PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
  if (PQstatus(conn.get()) == CONNECTION_BAD) poll = PGRES_POLLING_FAILED;
  while (poll != PGRES_POLLING_OK && poll != PGRES_POLLING_FAILED) {
    const int fd = PQsocket(conn.get());
    if (fd < 0) {
      poll = PGRES_POLLING_FAILED;
      break;
    }
    if (!co_await wait_socket(fd, poll == PGRES_POLLING_READING, deadline)) {
      co_return ProbeResult{false, "no answer within " + std::to_string(timeout.count()) + " ms"};
    }
    poll = PQconnectPoll(conn.get());
  }

  if (poll == PGRES_POLLING_OK) co_return ProbeResult{true, "connected", true};
  if (PQconnectionNeedsPassword(conn.get())) co_return ProbeResult{true, "the server asks for a password", true};
  std::string message = trim(PQerrorMessage(conn.get()));
  const auto code = sqlstate_from_libpq_message(message);
  if (!code) co_return ProbeResult{false, message, false};            // no server answered
  if (*code == "57P03") co_return ProbeResult{false, message, true};  // starting up, shutting down
  // The server read our startup packet and refused this particular login: it is up.
  co_return ProbeResult{true, message, true};
}

}  // namespace pgnap::backends
