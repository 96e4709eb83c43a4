// Reading whole messages from a connection, where pgnap reads a message itself instead of
// relaying bytes: a client's authentication and what it sends while its instance wakes,
// and PostgreSQL's answers when pgnap logs in for a client. Framing is protocol/frame.h's;
// this is the buffer and the I/O around it.
//
// The buffer holds at most one message being received plus what arrived with it; a length
// above `max_length` is refused from its header, before anything more is read. A reader
// waiting on a plain socket holds no receive buffer while it waits (sessions with no server,
// parked ones above all, wait here for hours): it waits for readability, then reads into a
// buffer of the thread with no suspension before the bytes are copied into its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "daemon/stream.h"
#include "protocol/frame.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

class MessageReader {
 public:
  MessageReader(Stream& stream, std::uint32_t max_length) : stream_(stream), max_length_(max_length) {}

  enum class Status {
    kMessage,   // `frame` is the next message; its bytes stay valid until the next call
    kClosed,    // the peer closed the connection (or it failed)
    kInvalid,   // the stream broke the framing: `error_kind` and `detail` say how
    kTimedOut,  // the deadline passed first
  };
  struct Result {
    Status status = Status::kClosed;
    protocol::Frame frame;
    protocol::ScanError error_kind = protocol::ScanError::kNone;
    std::string detail;
  };
  // The next message. Cancellation (the caller racing it against something else) loses no
  // bytes: what was read stays buffered for the next call.
  [[nodiscard]] asio::awaitable<Result> next(Clock::time_point deadline = Clock::time_point::max());

  // Bytes already read from the stream by someone else (the startup reader), to be read first.
  void prime(std::string bytes) { buffer_.insert(buffer_.end(), bytes.begin(), bytes.end()); }
  // The bytes received after the last message returned (a message partly received), which
  // belong to the stream that continues elsewhere (the relay). Leaves the reader empty.
  [[nodiscard]] std::string take_buffered();
  // Drops the buffer's memory when it holds nothing unread (a session about to wait long).
  void release_memory() {
    if (buffered() == 0) {
      std::vector<std::uint8_t>().swap(buffer_);
      consumed_ = 0;
      last_ = {};
    }
  }
  [[nodiscard]] std::size_t buffered() const { return buffer_.size() - consumed_; }
  // The raw bytes of the last message returned (type, length and body).
  [[nodiscard]] std::string_view last_message() const { return last_; }
  // A tighter bound before authentication, the session's own after it.
  void set_max_length(std::uint32_t max_length) { max_length_ = max_length; }

 private:
  struct Received {
    boost::system::error_code ec;
    bool timed_out = false;
  };
  // One read into buffer_, bounded by `deadline`.
  asio::awaitable<Received> receive(Clock::time_point deadline);
  asio::awaitable<Received> receive_tls(Clock::time_point deadline);

  Stream& stream_;
  std::uint32_t max_length_;
  std::vector<std::uint8_t> buffer_;
  std::size_t consumed_ = 0;  // bytes of buffer_ already returned as messages
  std::string_view last_;
};

// The next message of PostgreSQL's answer to a query pgnap sent itself (a pool's SET or
// reset, a parked session's capture or restore): ParameterStatus messages are applied to
// `parameters` and NoticeResponse ones dropped on the way, so callers see the answer proper.
[[nodiscard]] asio::awaitable<MessageReader::Result> next_answer(
    MessageReader& reader, protocol::ParameterList& parameters, Clock::time_point deadline);

}  // namespace pgnap::daemon
