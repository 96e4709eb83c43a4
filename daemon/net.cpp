#include "daemon/net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <algorithm>
#include <cstdint>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "daemon/backend_address.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;

asio::awaitable<boost::system::error_code> write_all(Socket& socket, std::string_view bytes,
                                                     Clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  auto r = co_await (asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()),
                                       asio::as_tuple(asio::use_awaitable)) ||
                     timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (r.index() == 1) co_return asio::error::timed_out;
  co_return std::get<0>(std::get<0>(r));
}

asio::awaitable<ConnectResult> connect_any(Socket& socket, const std::vector<Endpoint>& endpoints,
                                           std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  ConnectResult result{asio::error::host_not_found, 0};
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    boost::system::error_code ec;
    if (socket.is_open()) socket.close(ec);
    asio::steady_timer timer(executor, timeout);
    auto r = co_await (socket.async_connect(endpoints[i], asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) {
      result = {asio::error::timed_out, i};
      continue;
    }
    const auto [cec] = std::get<0>(r);
    if (!cec) co_return ConnectResult{{}, i};
    result = {cec, i};
  }
  boost::system::error_code ignored;
  socket.close(ignored);
  co_return result;
}

asio::awaitable<void> send_fatal(Socket& socket, const protocol::ErrorResponse& error) {
  const std::string message = protocol::encode_error_response(error);
  const auto ec = co_await write_all(socket, message, Clock::now() + std::chrono::seconds(2));
  boost::system::error_code ignored;
  if (!ec) socket.shutdown(Socket::shutdown_send, ignored);
}

void tune_client_socket(Socket& socket, const Keepalive& keepalive) {
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  if (ec) return;
  const int family = local.data()->sa_family;
  if (family != AF_INET && family != AF_INET6) return;
  const int fd = socket.native_handle();
  const int on = 1;
  const int idle = static_cast<int>(std::max<std::int64_t>(keepalive.idle.count(), 1));
  const int interval = static_cast<int>(std::max<std::int64_t>(keepalive.interval.count(), 1));
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keepalive.count, sizeof keepalive.count);
}

void tune_server_socket(Socket& socket) {
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  if (ec) return;
  const int family = local.data()->sa_family;
  if (family != AF_INET && family != AF_INET6) return;
  const int on = 1;
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

std::string peer_name(const Socket& socket) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  if (remote.data()->sa_family == AF_UNIX) return "unix socket";
  return endpoint_to_string(remote);
}

bool means_nothing_listening(const boost::system::error_code& ec) {
  return ec == asio::error::connection_refused || ec == asio::error::not_found ||
         ec == boost::system::errc::no_such_file_or_directory;
}

// BOOST_ASIO_HAS_IO_URING_AS_DEFAULT is Asio's own conclusion from BOOST_ASIO_HAS_IO_URING
// and BOOST_ASIO_DISABLE_EPOLL (CMakeLists.txt, PGNAP_IO_URING): io_uring then carries every
// socket, descriptor, timer and signal.
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
std::string_view event_loop_name() { return "io_uring"; }

std::optional<std::string> event_loop_refused() {
  try {
    // A timer makes the io_context set up its reactor: here, the ring (io_uring_queue_init).
    asio::io_context io;
    asio::steady_timer timer(io);
  } catch (const boost::system::system_error& e) {
    // e.what() adds " [system:1]" to "io_uring_queue_init: Operation not permitted".
    const std::string what = e.what();
    return "this pgnap is built to run its event loop on io_uring (PGNAP_IO_URING) and the kernel refused it (" +
           what.substr(0, what.find(':')) + ": " + e.code().message() +
           "): allow io_uring (seccomp filter, sysctl kernel.io_uring_disabled, Linux 5.10 or later) or use a "
           "build with the default epoll event loop";
  }
  return std::nullopt;
}
#elif defined(BOOST_ASIO_HAS_EPOLL)
std::string_view event_loop_name() { return "epoll"; }
std::optional<std::string> event_loop_refused() { return std::nullopt; }
#else
#error "pgnap runs on Linux: Asio's event loop is epoll or io_uring"
#endif

}  // namespace pgnap::daemon
