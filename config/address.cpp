// Addresses in the configuration: where the gateway listens, where an instance's PostgreSQL
// listens, where /metrics is served. Their grammar (host:port, [v6]:port, Unix socket paths
// named as libpq names them), the readers of config/keys.h that use it, and how an address is
// written back, so that what `pgnap check` and the logs show parses to the same address.
#include <arpa/inet.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/keys.h"

namespace pgnap::config {
namespace detail {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSocketPrefix = ".s.PGSQL.";
constexpr std::string_view kListenForm =
    R"(host:port (e.g. "127.0.0.1:6432") or a Unix socket path (e.g. "/run/pgnap/.s.PGSQL.6432"))";
constexpr std::string_view kBackendForm = R"(host:port (e.g. "127.0.0.1:5432") or an absolute Unix socket directory )"
                                          R"((e.g. "/var/run/postgresql"))";
constexpr std::string_view kMetricsForm = R"(host:port (e.g. "127.0.0.1:9932") or "" to disable)";

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A port number of at most 5 digits in [min_port, 65535].
std::optional<std::uint16_t> parse_port(std::string_view text, std::uint16_t min_port) {
  if (!all_digits(text) || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value < min_port || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// RFC 1123 host names, plus "_" (container and compose service names use it).
bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok) return false;
    }
    start = dot + 1;
  }
  return true;
}

// The kernel's limit for a Unix socket path (sun_path, including its terminating NUL).
constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

std::string socket_too_long(std::string_view path) {
  return "the Unix socket path " + quote(path) + " is too long (" + std::to_string(path.size()) +
         " bytes; the kernel allows at most " + std::to_string(kMaxSocketPath) + ")";
}

}  // namespace

// ---- Readers ------------------------------------------------------------------------------

std::optional<std::vector<ListenAddress>> ListenListValue::operator()(ParseContext& ctx, const toml::node& node,
                                                                      const std::string& key) const {
  std::vector<const toml::node*> items;
  if (node.is_string()) {
    items.push_back(&node);
  } else if (const auto* array = node.as_array()) {
    for (const toml::node& item : *array) items.push_back(&item);
    if (items.empty()) {
      ctx.error(node.source(), key, "expected at least one listen address, got an empty array");
      return std::nullopt;
    }
  } else {
    ctx.error(node.source(), key,
              "expected a listen address or an array of them (e.g. [\"127.0.0.1:6432\"]), got " + type_name(node));
    return std::nullopt;
  }

  std::vector<ListenAddress> result;
  std::set<std::string> seen;
  bool ok = true;
  for (const toml::node* item : items) {
    const std::string* text = as_string(ctx, *item, key, "a listen address (a string)");
    if (text == nullptr) {
      ok = false;
      continue;
    }
    std::string why;
    std::optional<ListenAddress> address = parse_listen_address(*text, why);
    if (!address) {
      ctx.error(item->source(), key, why);
      ok = false;
    } else if (!seen.insert(address->to_string()).second) {
      ctx.error(item->source(), key, "listen address " + quote(address->to_string()) + " is given twice");
      ok = false;
    } else {
      result.push_back(std::move(*address));
    }
  }
  if (!ok) return std::nullopt;
  return result;
}

std::optional<std::string> MetricsListenValue::operator()(ParseContext& ctx, const toml::node& node,
                                                          const std::string& key) const {
  const std::string* text = as_string(ctx, node, key);
  if (text == nullptr) return std::nullopt;
  if (text->empty()) return std::string();
  std::string why;
  auto host_port = parse_host_port(*text, 0, why);
  if (!host_port) {
    ctx.error(node.source(), key,
              why.empty() ? "expected " + std::string(kMetricsForm) + ", got " + quote(*text) : why);
    return std::nullopt;
  }
  return format_host_port(host_port->first, host_port->second);
}

std::optional<BackendAddress> BackendAddressValue::operator()(ParseContext& ctx, const toml::node& node,
                                                              const std::string& key) const {
  const std::string* text = as_string(ctx, node, key);
  if (text == nullptr) return std::nullopt;
  std::string why;
  std::optional<BackendAddress> address = parse_backend_address(*text, why);
  if (!address) ctx.error(node.source(), key, why);
  return address;
}

std::optional<std::string> SocketPathValue::operator()(ParseContext& ctx, const toml::node& node,
                                                       const std::string& key) const {
  const std::string* text = as_string(ctx, node, key, "a path (a string)");
  if (text == nullptr) return std::nullopt;
  if (text->empty()) return std::string();
  // Absolute only: the control commands find the socket by this path from any directory.
  if (text->front() != '/') {
    ctx.error(node.source(), key, "expected an absolute path (or \"\" for none), got " + quote(*text));
    return std::nullopt;
  }
  std::string path = normal_path(*text).string();
  if (path.size() > kMaxSocketPath) {
    ctx.error(node.source(), key, socket_too_long(path));
    return std::nullopt;
  }
  return path;
}

// ---- Grammar ------------------------------------------------------------------------------

std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view text, std::uint16_t min_port,
                                                                     std::string& why) {
  why.clear();
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    bracketed = true;
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    if (text.find(':') != colon) {
      why = "expected an IPv6 address in brackets, e.g. \"[::1]:6432\", got " + quote(text);
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return std::nullopt;

  std::string host_string(host);
  unsigned char binary[16];
  if (bracketed) {
    if (inet_pton(AF_INET6, host_string.c_str(), binary) != 1) {
      why = "expected a valid IPv6 address in brackets, got " + quote(text);
      return std::nullopt;
    }
  } else if (std::all_of(host.begin(), host.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); })) {
    if (inet_pton(AF_INET, host_string.c_str(), binary) != 1) {
      why = "expected a valid IPv4 address, got " + quote(host) + " in " + quote(text);
      return std::nullopt;
    }
  } else if (!valid_host_name(host)) {
    why = "expected a host name, an IPv4 address or an [IPv6] address before the port, got " + quote(host) + " in " +
          quote(text);
    return std::nullopt;
  }

  std::optional<std::uint16_t> port_number = parse_port(port, min_port);
  if (!port_number) {
    why = "expected a port between " + std::to_string(min_port) + " and 65535, got " + quote(port) + " in " +
          quote(text);
    return std::nullopt;
  }
  return std::pair{std::move(host_string), *port_number};
}

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string& why) {
  if (text.find('/') == std::string_view::npos) {
    auto host_port = parse_host_port(text, 0, why);
    if (!host_port) {
      if (why.empty()) why = "expected " + std::string(kListenForm) + ", got " + quote(text);
      return std::nullopt;
    }
    return ListenAddress{ListenAddress::Kind::kTcp, std::move(host_port->first), host_port->second, ""};
  }
  fs::path path(text);
  if (path.is_relative()) {
    why = "expected an absolute Unix socket path (e.g. \"/run/pgnap/.s.PGSQL.6432\"), got " + quote(text);
    return std::nullopt;
  }
  path = normal_path(path);
  std::string name = path.filename().string();
  std::optional<std::uint16_t> port;
  if (name.starts_with(kSocketPrefix)) {
    port = parse_port(std::string_view(name).substr(kSocketPrefix.size()), 1);
  }
  if (!port) {
    why =
        "expected a Unix socket path whose file name is \".s.PGSQL.<port>\" (the name libpq "
        "looks for, e.g. \"/run/pgnap/.s.PGSQL.6432\"), got " +
        quote(text);
    return std::nullopt;
  }
  if (path.string().size() > kMaxSocketPath) {
    why = socket_too_long(path.string());
    return std::nullopt;
  }
  return ListenAddress{ListenAddress::Kind::kUnix, "", *port, path.string()};
}

std::optional<BackendAddress> parse_backend_address(std::string_view text, std::string& why) {
  if (text.find('/') == std::string_view::npos) {
    auto host_port = parse_host_port(text, 1, why);
    if (!host_port) {
      if (why.empty()) why = "expected " + std::string(kBackendForm) + ", got " + quote(text);
      return std::nullopt;
    }
    return BackendAddress{BackendAddress::Kind::kTcp, std::move(host_port->first), host_port->second, ""};
  }
  fs::path path(text);
  if (path.is_relative()) {
    why = "expected " + std::string(kBackendForm) + "; a socket directory must be absolute, got " + quote(text);
    return std::nullopt;
  }
  path = normal_path(path);
  BackendAddress address{BackendAddress::Kind::kUnix, "", 5432, path.string()};
  std::string name = path.filename().string();
  if (name.starts_with(kSocketPrefix)) {
    std::optional<std::uint16_t> port = parse_port(std::string_view(name).substr(kSocketPrefix.size()), 1);
    if (!port) {
      why = "expected a socket file named \".s.PGSQL.<port>\" with a port between 1 and 65535, got " + quote(text);
      return std::nullopt;
    }
    address.port = *port;
    address.socket_dir = path.parent_path().string();
  }
  if (address.socket_path().size() > kMaxSocketPath) {
    why = socket_too_long(address.socket_path());
    return std::nullopt;
  }
  return address;
}

std::string format_host_port(std::string_view host, std::uint16_t port) {
  std::string result = host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" : std::string(host);
  return result + ":" + std::to_string(port);
}

}  // namespace detail

// ---- Written back -------------------------------------------------------------------------

std::string ListenAddress::to_string() const {
  return kind == Kind::kUnix ? path : detail::format_host_port(host, port);
}

std::string BackendAddress::socket_path() const {
  std::string dir = socket_dir;
  if (dir.empty() || dir.back() != '/') dir += '/';
  return dir + ".s.PGSQL." + std::to_string(port);
}

std::string BackendAddress::to_string() const {
  // The socket file, not the directory: it names the port too, and parses back to the same.
  return kind == Kind::kUnix ? socket_path() : detail::format_host_port(host, port);
}

bool BackendAddress::local() const {
  if (kind == Kind::kUnix) return true;
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8, written as an IPv4 address (a host name such as 127.db.example.org is not).
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace pgnap::config
