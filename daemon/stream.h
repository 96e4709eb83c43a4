// A connection that may carry TLS: the plain socket until a handshake, then the TLS stream
// over it. The startup phase, error messages and the relay read and write through it; the
// relay's fast path uses the socket directly when neither side has TLS.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "daemon/net.h"
#include "daemon/tls.h"

namespace pgnap::daemon {

class Stream {
 public:
  // The socket lives on the heap: the TLS stream and the relay hold references to it, which
  // must survive moving the Stream (out of the connection phase, into the session's frame).
  explicit Stream(Socket socket) : socket_(std::make_unique<Socket>(std::move(socket))) {}
  Stream(Stream&&) = default;
  Stream& operator=(Stream&&) = default;

  [[nodiscard]] Socket& socket() { return *socket_; }
  [[nodiscard]] bool tls() const { return tls_ != nullptr; }
  // The OpenSSL session (nullptr without TLS): for the channel binding data of SCRAM-PLUS.
  [[nodiscard]] SSL* tls_handle() { return tls_ ? tls_->native_handle() : nullptr; }

  // TLS handshakes, bounded by `deadline`. The context is kept for the stream's life.
  [[nodiscard]] asio::awaitable<boost::system::error_code> accept_tls(std::shared_ptr<ssl::context> context,
                                                                      Clock::time_point deadline);
  [[nodiscard]] asio::awaitable<boost::system::error_code> connect_tls(std::shared_ptr<ssl::context> context,
                                                                       Clock::time_point deadline);

  // One read of what is available (TLS: decrypted), without a deadline.
  [[nodiscard]] asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
      asio::mutable_buffer buffer);
  // Writes everything, without a deadline (the relay's backpressure).
  [[nodiscard]] asio::awaitable<boost::system::error_code> write(std::string_view bytes);
  [[nodiscard]] asio::awaitable<boost::system::error_code> write(asio::const_buffer bytes);

 private:
  std::unique_ptr<Socket> socket_;
  std::shared_ptr<ssl::context> context_;
  std::unique_ptr<ssl::stream<Socket&>> tls_;
};

// write_all and send_fatal (net.h) for a Stream.
[[nodiscard]] asio::awaitable<boost::system::error_code> write_all(Stream& stream, std::string_view bytes,
                                                                   Clock::time_point deadline);
asio::awaitable<void> send_fatal(Stream& stream, const protocol::ErrorResponse& error);

// After a FATAL to a client that may still be sending (a message over max_message_size, half
// written): reads and discards what it sends until it closes or `deadline`. Closing with
// unread input would make the kernel send a reset, and the client would lose the error it
// has not read yet.
asio::awaitable<void> drain_until_closed(Stream& stream, Clock::time_point deadline);

}  // namespace pgnap::daemon
