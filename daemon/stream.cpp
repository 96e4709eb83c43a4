#include "daemon/stream.h"

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "protocol/encode.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

template <typename Operation>
asio::awaitable<boost::system::error_code> with_deadline(Operation operation, Clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  auto r = co_await (std::move(operation) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (r.index() == 1) co_return asio::error::timed_out;
  co_return std::get<0>(std::get<0>(r));
}

}  // namespace

asio::awaitable<boost::system::error_code> Stream::accept_tls(std::shared_ptr<ssl::context> context,
                                                              Clock::time_point deadline) {
  context_ = std::move(context);
  tls_ = std::make_unique<ssl::stream<Socket&>>(*socket_, *context_);
  co_return co_await with_deadline(tls_->async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable)),
                                   deadline);
}

asio::awaitable<boost::system::error_code> Stream::connect_tls(std::shared_ptr<ssl::context> context,
                                                               Clock::time_point deadline) {
  context_ = std::move(context);
  tls_ = std::make_unique<ssl::stream<Socket&>>(*socket_, *context_);
  co_return co_await with_deadline(tls_->async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable)),
                                   deadline);
}

asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> Stream::read_some(asio::mutable_buffer buffer) {
  if (tls_) co_return co_await tls_->async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
  co_return co_await socket_->async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<boost::system::error_code> Stream::write(asio::const_buffer bytes) {
  if (tls_) {
    auto [ec, n] = co_await asio::async_write(*tls_, bytes, asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }
  auto [ec, n] = co_await asio::async_write(*socket_, bytes, asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

asio::awaitable<boost::system::error_code> Stream::write(std::string_view bytes) {
  return write(asio::const_buffer(bytes.data(), bytes.size()));
}

asio::awaitable<boost::system::error_code> write_all(Stream& stream, std::string_view bytes,
                                                     Clock::time_point deadline) {
  if (!stream.tls()) co_return co_await write_all(stream.socket(), bytes, deadline);
  auto write = [&]() -> asio::awaitable<std::tuple<boost::system::error_code>> {
    co_return std::tuple{co_await stream.write(bytes)};
  };
  co_return co_await with_deadline(write(), deadline);
}

asio::awaitable<void> send_fatal(Stream& stream, const protocol::ErrorResponse& error) {
  if (!stream.tls()) {
    co_await send_fatal(stream.socket(), error);
    co_return;
  }
  const std::string message = protocol::encode_error_response(error);
  (void)co_await write_all(stream, message, Clock::now() + std::chrono::seconds(2));
}

asio::awaitable<void> drain_until_closed(Stream& stream, Clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  std::array<std::uint8_t, 4096> sink;
  for (;;) {
    auto r = co_await (stream.read_some(asio::buffer(sink)) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1 || std::get<0>(std::get<0>(r))) co_return;
  }
}

}  // namespace pgnap::daemon
