#include "daemon/message_reader.h"

#include <array>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;

namespace {

// The receive buffer of every plain-socket reader of the thread (see message_reader.h).
thread_local std::array<std::uint8_t, 16 * 1024> g_chunk;

}  // namespace

asio::awaitable<MessageReader::Result> MessageReader::next(Clock::time_point deadline) {
  // The message returned last time is done with: drop it (and compact when most of the
  // buffer is spent, so a long queue of small messages does not grow it).
  if (consumed_ > 0 && (consumed_ == buffer_.size() || consumed_ > 64 * 1024)) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  for (;;) {
    const protocol::Bytes pending(buffer_.data() + consumed_, buffer_.size() - consumed_);
    const auto framed = protocol::next_frame(pending, max_length_);
    if (framed.status == protocol::FrameStatus::kReady) {
      last_ = std::string_view(reinterpret_cast<const char*>(pending.data()), framed.frame.size);
      consumed_ += framed.frame.size;
      co_return Result{Status::kMessage, framed.frame, protocol::ScanError::kNone, {}};
    }
    if (framed.status == protocol::FrameStatus::kInvalid) {
      co_return Result{Status::kInvalid, {}, framed.error_kind, framed.error};
    }
    const Received got = co_await receive(deadline);
    if (got.timed_out) co_return Result{Status::kTimedOut, {}, protocol::ScanError::kNone, {}};
    if (got.ec) {
      if (got.ec == asio::error::operation_aborted) throw boost::system::system_error(got.ec);
      co_return Result{Status::kClosed, {}, protocol::ScanError::kNone, got.ec.message()};
    }
  }
}

asio::awaitable<MessageReader::Received> MessageReader::receive(Clock::time_point deadline) {
  if (stream_.tls()) co_return co_await receive_tls(deadline);
  Socket& socket = stream_.socket();
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    boost::system::error_code ec;
    if (deadline == Clock::time_point::max()) {
      std::tie(ec) = co_await socket.async_wait(Socket::wait_read, asio::as_tuple(asio::use_awaitable));
    } else {
      asio::steady_timer timer(executor, deadline);
      auto r = co_await (socket.async_wait(Socket::wait_read, asio::as_tuple(asio::use_awaitable)) ||
                         timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 1) co_return Received{{}, true};
      std::tie(ec) = std::get<0>(r);
    }
    if (ec) co_return Received{ec, false};
    // Readable: the read below cannot block, and nothing runs between it and the copy.
    const ssize_t n = ::recv(socket.native_handle(), g_chunk.data(), g_chunk.size(), MSG_DONTWAIT);
    if (n > 0) {
      buffer_.insert(buffer_.end(), g_chunk.begin(), g_chunk.begin() + n);
      co_return Received{};
    }
    if (n == 0) co_return Received{asio::error::eof, false};
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;  // a spurious wake-up
    co_return Received{boost::system::error_code(errno, boost::system::system_category()), false};
  }
}

asio::awaitable<MessageReader::Received> MessageReader::receive_tls(Clock::time_point deadline) {
  // TLS decrypts into memory of this read's own across its suspension (a frame of its own,
  // gone once the read is done).
  std::array<std::uint8_t, 8192> chunk;
  boost::system::error_code ec;
  std::size_t n = 0;
  if (deadline == Clock::time_point::max()) {
    std::tie(ec, n) = co_await stream_.read_some(asio::buffer(chunk));
  } else {
    asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
    auto r = co_await (stream_.read_some(asio::buffer(chunk)) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return Received{{}, true};
    std::tie(ec, n) = std::get<0>(r);
  }
  buffer_.insert(buffer_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  if (n > 0) co_return Received{};
  co_return Received{ec ? ec : asio::error::eof, false};
}

asio::awaitable<MessageReader::Result> next_answer(MessageReader& reader, protocol::ParameterList& parameters,
                                                   Clock::time_point deadline) {
  for (;;) {
    auto read = co_await reader.next(deadline);
    if (read.status != MessageReader::Status::kMessage) co_return read;
    if (read.frame.type == protocol::backend_msg::kNoticeResponse) continue;
    if (read.frame.type != protocol::backend_msg::kParameterStatus) co_return read;
    if (auto changed = protocol::parse_parameter_status(read.frame.body)) {
      protocol::set_parameter(parameters, changed->first, std::move(changed->second));
    }
  }
}

std::string MessageReader::take_buffered() {
  std::string rest(reinterpret_cast<const char*>(buffer_.data() + consumed_), buffer_.size() - consumed_);
  std::vector<std::uint8_t>().swap(buffer_);  // the session goes on elsewhere: no memory kept here
  consumed_ = 0;
  last_ = {};
  return rest;
}

}  // namespace pgnap::daemon
