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

asio::awaitable<StartupOutcome> read_startup(Stream& client, Clock::time_point deadline, const TlsServer* tls) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  // Holds at most one startup packet (10 000 bytes, PostgreSQL's limit) plus what arrived
  // with it; the decoder refuses a longer declared length before we read further.
  std::vector<std::uint8_t> buffer;
  buffer.reserve(512);
  bool ssl_answered = false;
  bool gss_answered = false;
  const bool tls_offered = tls != nullptr && tls->mode() != "disable" && tls->context() != nullptr;
  const bool tls_required = tls_offered && tls->mode() == "require";
  StartupOutcome out;
  const std::string no_hint;

  auto refuse = [&](StartupOutcome::Kind kind, std::string_view code, const std::string& message,
                    const std::string& hint) -> asio::awaitable<StartupOutcome> {
    out.kind = kind;
    out.reason = message;
    out.error = protocol::ErrorResponse{"FATAL", std::string(code), message, {}, hint};
    co_await send_fatal(client, out.error);
    co_return out;
  };
  using Kind = StartupOutcome::Kind;

  for (;;) {
    const auto decoded = protocol::decode_startup(buffer);
    if (decoded.status == protocol::DecodeStatus::kInvalid) {
      const std::string why = decoded.error;
      co_return co_await refuse(Kind::kMalformed, sqlstate::kProtocolViolation, why, no_hint);
    }

    if (decoded.status == protocol::DecodeStatus::kReady) {
      const std::size_t rest = buffer.size() - decoded.consumed;
      if (const auto* msg = std::get_if<protocol::StartupMessage>(&decoded.packet)) {
        if (tls_required && !client.tls()) {
          // As PostgreSQL's hostssl-only pg_hba: 28000, and no session.
          const std::string why = "this gateway accepts only TLS connections";
          const std::string hint = "Connect with sslmode=require (or verify-ca, verify-full).";
          co_return co_await refuse(Kind::kTlsRequired, sqlstate::kInvalidAuthorization, why, hint);
        }
        out.kind = Kind::kStartup;
        out.startup = *msg;
        out.pipelined.assign(reinterpret_cast<const char*>(buffer.data() + decoded.consumed), rest);
        co_return out;
      }
      if (const auto* cancel = std::get_if<protocol::CancelRequest>(&decoded.packet)) {
        // Accepted in plaintext even when TLS is required: libpq sends cancel requests on a
        // fresh, unencrypted connection, and they carry nothing but the key.
        out.kind = Kind::kCancel;
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
        co_return co_await refuse(Kind::kMalformed, sqlstate::kProtocolViolation, why, no_hint);
      }
      bool& answered = is_ssl ? ssl_answered : gss_answered;
      if (answered || client.tls()) {
        const std::string why = std::string("invalid startup packet: duplicate ") +
                                (is_ssl ? "SSLRequest" : "GSSENCRequest");
        co_return co_await refuse(Kind::kMalformed, sqlstate::kProtocolViolation, why, no_hint);
      }
      answered = true;
      buffer.clear();
      if (is_ssl && tls_offered) {
        // 'S', then the handshake; the startup packet follows over TLS. The handshake counts
        // against the login deadline (no slowloris inside TLS either).
        if (co_await write_all(client.socket(), "S", deadline)) {
          out.reason = "client went away during SSL negotiation";
          co_return out;
        }
        if (const auto ec = co_await client.accept_tls(tls->context(), deadline); ec) {
          out.kind = Kind::kTlsHandshakeFailed;
          out.reason = "TLS handshake failed: " + ec.message();
          out.login_timeout = ec == asio::error::timed_out;
          co_return out;
        }
        continue;
      }
      // 'N': not offered; the client continues in plaintext (or gives up if it requires
      // encryption: that is libpq's sslmode=require error, clear to the user).
      if (co_await write_all(client.socket(), "N", deadline)) {
        out.reason = "client went away during SSL negotiation";
        co_return out;
      }
      continue;
    }

    // Need more bytes.
    std::array<std::uint8_t, 1024> chunk;
    auto r = co_await (client.read_some(asio::buffer(chunk)) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) {
      out.login_timeout = true;
      const std::string why = "invalid startup packet: startup not completed within login_timeout";
      const std::string hint = "The client must send its startup packet promptly after connecting.";
      co_return co_await refuse(Kind::kLoginTimeout, sqlstate::kProtocolViolation, why, hint);
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
