#include "daemon/server_connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/backend_address.h"
#include "daemon/instance.h"
#include "protocol/encode.h"

namespace pgnap::daemon {

using namespace boost::asio::experimental::awaitable_operators;

asio::awaitable<char> request_tls(Stream& server, Clock::time_point deadline, std::string& why) {
  auto executor = co_await asio::this_coro::executor;
  std::string request;
  protocol::append_u32(request, 8);
  protocol::append_u32(request, protocol::kSslRequestCode);
  if (const auto ec = co_await write_all(server.socket(), request, deadline); ec) {
    why = "asking the instance for TLS failed: " + ec.message();
    co_return 0;
  }
  char answer = 0;
  asio::steady_timer timer(executor, deadline);
  auto r = co_await (server.socket().async_read_some(asio::buffer(&answer, 1), asio::as_tuple(asio::use_awaitable)) ||
                     timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (r.index() == 1 || std::get<0>(std::get<0>(r)) || (answer != 'S' && answer != 'N')) {
    why = "the instance gave no valid answer to the TLS request";
    co_return 0;
  }
  co_return answer;
}

namespace {

// TLS as the instance's `tls` says: "disable" sends nothing; "prefer" uses TLS when the
// server offers it; "require" fails without it. "" when done, else why it failed.
asio::awaitable<std::string> negotiate_instance_tls(const Instance& instance, Stream& server,
                                                    std::shared_ptr<ssl::context> tls_context) {
  const std::string mode = instance.config().effective_tls();
  if (mode == "disable") co_return std::string();
  const auto deadline = Clock::now() + instance.config().connect_timeout;
  std::string why;
  const char answer = co_await request_tls(server, deadline, why);
  if (answer == 'S') {
    if (const auto ec = co_await server.connect_tls(std::move(tls_context), deadline); ec) {
      why = "TLS handshake with the instance failed: " + ec.message();
    }
  } else if (answer == 'N' && mode == "require") {
    why = "the instance does not offer TLS, and its tls = \"require\"";
  }
  co_return why;
}

}  // namespace

asio::awaitable<ServerConnectResult> connect_server(const Instance& instance,
                                                    std::shared_ptr<ssl::context> tls_context) {
  auto executor = co_await asio::this_coro::executor;
  const config::BackendAddress& address = instance.config().address;
  auto resolved = co_await resolve_backend(address);
  if (!resolved.error.empty()) co_return ServerConnectFailure{resolved.error, false, false, false};

  Stream server{Socket(executor)};
  const auto connected = co_await connect_any(server.socket(), resolved.endpoints, instance.config().connect_timeout);
  if (connected.error) {
    co_return ServerConnectFailure{"connecting to " + address.to_string() + " failed: " + connected.error.message(),
                                   means_nothing_listening(connected.error), connected.error == asio::error::timed_out,
                                   false};
  }
  tune_server_socket(server.socket());
  const std::string tls_failure = co_await negotiate_instance_tls(instance, server, std::move(tls_context));
  if (!tls_failure.empty()) co_return ServerConnectFailure{tls_failure, false, false, true};
  co_return ServerConnection{std::move(server), resolved.endpoints[connected.index]};
}

}  // namespace pgnap::daemon
