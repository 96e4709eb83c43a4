#include "daemon/backend_address.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pgnap::daemon {

asio::awaitable<ResolvedBackend> resolve_backend(const config::BackendAddress& address) {
  ResolvedBackend out;
  if (address.kind == config::BackendAddress::Kind::kUnix) {
    out.endpoints.emplace_back(asio::local::stream_protocol::endpoint(address.socket_path()));
    out.probe = {address.socket_dir, address.port};
    co_return out;
  }
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (!ec) {
    out.endpoints.emplace_back(asio::ip::tcp::endpoint(ip, address.port));
    out.probe = {ip.to_string(), address.port};
    co_return out;
  }
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  const std::string service = std::to_string(address.port);
  auto [rec, results] = co_await resolver.async_resolve(address.host, service, asio::as_tuple(asio::use_awaitable));
  if (rec || results.empty()) {
    out.error = "cannot resolve \"" + address.host + "\": " + (rec ? rec.message() : "no address");
    co_return out;
  }
  for (const auto& r : results) out.endpoints.emplace_back(r.endpoint());
  out.probe = {results.begin()->endpoint().address().to_string(), address.port};
  co_return out;
}

std::string endpoint_to_string(const asio::generic::stream_protocol::endpoint& endpoint) {
  const sockaddr* sa = endpoint.data();
  if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
    asio::ip::tcp::endpoint tcp;
    std::memcpy(tcp.data(), sa, std::min<std::size_t>(endpoint.size(), sizeof(sockaddr_in6)));
    const auto addr = tcp.address();
    if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(tcp.port());
    return addr.to_string() + ":" + std::to_string(tcp.port());
  }
  if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const std::size_t max = endpoint.size() > offsetof(sockaddr_un, sun_path)
                                ? endpoint.size() - offsetof(sockaddr_un, sun_path)
                                : 0;
    std::string path(un->sun_path, strnlen(un->sun_path, std::min(max, sizeof(un->sun_path))));
    return path.empty() ? "unix socket" : path;
  }
  return "?";
}

}  // namespace pgnap::daemon
