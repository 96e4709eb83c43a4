// Helpers of the daemon's socket-level unit tests: connected Unix socket pairs on an
// io_context, the peer's reads and writes as coroutines, protocol messages built by hand,
// and an ErrorResponse decoded from the bytes a peer received.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "daemon/net.h"
#include "protocol/wire.h"

namespace pgnap::daemon::test_support {

// gtest's ASSERT_* return from the function, which a coroutine cannot do.
#define CO_ASSERT_TRUE(cond)                       \
  do {                                             \
    if (!(cond)) {                                 \
      ADD_FAILURE() << "assertion failed: " #cond; \
      co_return;                                   \
    }                                              \
  } while (0)
#define CO_ASSERT_FALSE(cond) CO_ASSERT_TRUE(!(cond))

// Two connected Unix stream sockets, as the daemon's socket type.
inline std::pair<Socket, Socket> socket_pair(asio::io_context& io) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    throw std::system_error(errno, std::generic_category(), "socketpair");
  }
  Socket a(io);
  Socket b(io);
  a.assign(asio::generic::stream_protocol(AF_UNIX, 0), fds[0]);
  b.assign(asio::generic::stream_protocol(AF_UNIX, 0), fds[1]);
  return {std::move(a), std::move(b)};
}

// Writes all of `bytes`; false if the write failed.
inline asio::awaitable<bool> send(Socket& socket, std::string bytes) {
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

// Reads exactly `n` bytes, or fewer if the peer closes first.
inline asio::awaitable<std::string> read_exactly(Socket& socket, std::size_t n) {
  std::string out(n, '\0');
  auto [ec, got] = co_await asio::async_read(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
  out.resize(got);
  co_return out;
}

// Reads until the peer closes (or shuts down its sending side).
inline asio::awaitable<std::string> read_to_eof(Socket& socket) {
  std::string out;
  char chunk[4096];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    out.append(chunk, n);
    if (ec) co_return out;
  }
}

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// A typed protocol message: the type byte, a length that counts itself, the body.
inline std::string message(char type, std::string_view body) {
  std::string out(1, type);
  protocol::append_u32(out, static_cast<std::uint32_t>(4 + body.size()));
  out.append(body);
  return out;
}

// The fields of `wire` when it is exactly one ErrorResponse; nullopt otherwise.
inline std::optional<std::map<char, std::string>> decode_error_response(std::string_view wire) {
  if (wire.size() < 6 || wire[0] != 'E') return std::nullopt;
  const auto length = protocol::read_u32(reinterpret_cast<const std::uint8_t*>(wire.data()) + 1);
  if (length != wire.size() - 1) return std::nullopt;
  std::map<char, std::string> fields;
  std::size_t pos = 5;
  while (pos < wire.size() && wire[pos] != '\0') {
    const char code = wire[pos++];
    const auto end = wire.find('\0', pos);
    if (end == std::string_view::npos) return std::nullopt;
    fields[code] = std::string(wire.substr(pos, end - pos));
    pos = end + 1;
  }
  if (pos != wire.size() - 1) return std::nullopt;  // the terminating NUL is the last byte
  return fields;
}

}  // namespace pgnap::daemon::test_support
