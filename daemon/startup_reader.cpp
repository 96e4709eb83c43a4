#include "daemon/startup_reader.h"

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;
namespace sqlstate = protocol::sqlstate;

asio::awaitable<StartupOutcome> read_startup(Socket& client, Clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  // Holds at most one startup packet (10 000 bytes, PostgreSQL's limit) plus what arrived
  // with it; the decoder refuses a longer declared length before we read further.
  std::vector<std::uint8_t> buffer;
  buffer.reserve(512);
  bool ssl_answered = false;
  bool gss_answered = false;
  StartupOutcome out;

  auto refuse = [&](const std::string& message) -> asio::awaitable<StartupOutcome> {
    out.kind = StartupOutcome::Kind::kRefused;
    out.reason = message;
    const ClientError error{std::string(sqlstate::kProtocolViolation), message, {}, {}};
    co_await send_fatal(client, error);
    co_return out;
  };

  for (;;) {
    const auto decoded = protocol::decode_startup(buffer);
    if (decoded.status == protocol::DecodeStatus::kInvalid) {
      const std::string why = decoded.error;
      co_return co_await refuse(why);
    }

    if (decoded.status == protocol::DecodeStatus::kReady) {
      const std::size_t rest = buffer.size() - decoded.consumed;
      if (const auto* msg = std::get_if<protocol::StartupMessage>(&decoded.packet)) {
        out.kind = StartupOutcome::Kind::kStartup;
        out.startup = *msg;
        out.pipelined.assign(reinterpret_cast<const char*>(buffer.data() + decoded.consumed), rest);
        co_return out;
      }
      if (const auto* cancel = std::get_if<protocol::CancelRequest>(&decoded.packet)) {
        out.kind = StartupOutcome::Kind::kCancel;
        out.cancel = *cancel;
        co_return out;
      }
      const bool is_ssl = std::holds_alternative<protocol::SslRequest>(decoded.packet);
      // Anything sent after an encryption request and before our answer was sent in the
      // clear by a client that expects encryption, or by an attacker injecting bytes into
      // the future encrypted stream (CVE-2021-23214/23222): never treat it as part of the
      // session. PostgreSQL refuses it the same way.
      if (rest > 0) {
        const std::string why = std::string("invalid startup packet: received unencrypted data after ") +
                                (is_ssl ? "SSL" : "GSSAPI encryption") + " request";
        co_return co_await refuse(why);
      }
      bool& answered = is_ssl ? ssl_answered : gss_answered;
      if (answered) {
        const std::string why = std::string("invalid startup packet: duplicate ") +
                                (is_ssl ? "SSLRequest" : "GSSENCRequest");
        co_return co_await refuse(why);
      }
      answered = true;
      buffer.clear();
      // 'N': not supported here; the client continues in plaintext (or gives up if it
      // requires encryption: that is libpq's sslmode=require error, clear to the user).
      const auto ec = co_await write_all(client, "N", deadline);
      if (ec) {
        out.reason = "client went away during SSL negotiation";
        co_return out;
      }
      continue;
    }

    // Need more bytes.
    std::array<std::uint8_t, 1024> chunk;
    auto r = co_await (client.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) {
      out.kind = StartupOutcome::Kind::kRefused;
      out.reason = "login timeout";
      const ClientError error{std::string(sqlstate::kProtocolViolation),
                              "invalid startup packet: startup not completed within login_timeout", {},
                              "The client must send its startup packet promptly after connecting."};
      co_await send_fatal(client, error);
      co_return out;
    }
    const auto [ec, n] = std::get<0>(r);
    if (ec) {
      out.reason = buffer.empty() ? "closed before sending anything" : "closed in the middle of its startup packet";
      co_return out;
    }
    buffer.insert(buffer.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

}  // namespace pgnap::daemon
