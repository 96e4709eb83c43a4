#include "daemon/message_reader.h"

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;

asio::awaitable<MessageReader::Result> MessageReader::next(Clock::time_point deadline) {
  // The message returned last time is done with: drop it (and compact when most of the
  // buffer is spent, so a long queue of small messages does not grow it).
  if (consumed_ > 0 && (consumed_ == buffer_.size() || consumed_ > 64 * 1024)) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  auto executor = co_await asio::this_coro::executor;
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
    std::array<std::uint8_t, 8192> chunk;
    std::size_t n = 0;
    boost::system::error_code ec;
    if (deadline == Clock::time_point::max()) {
      std::tie(ec, n) = co_await stream_.read_some(asio::buffer(chunk));
    } else {
      asio::steady_timer timer(executor, deadline);
      auto r = co_await (stream_.read_some(asio::buffer(chunk)) ||
                         timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 1) co_return Result{Status::kTimedOut, {}, protocol::ScanError::kNone, {}};
      std::tie(ec, n) = std::get<0>(r);
    }
    buffer_.insert(buffer_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec && n == 0) {
      if (ec == asio::error::operation_aborted) throw boost::system::system_error(ec);
      co_return Result{Status::kClosed, {}, protocol::ScanError::kNone, ec.message()};
    }
  }
}

std::string MessageReader::take_buffered() {
  std::string rest(reinterpret_cast<const char*>(buffer_.data() + consumed_), buffer_.size() - consumed_);
  buffer_.clear();
  consumed_ = 0;
  last_ = {};
  return rest;
}

}  // namespace pgnap::daemon
