// The small public pieces of config.h: durations, address formatting, errors, and reading
// the file. The schema lives in config_schema.cpp, the value grammars in config_values.cpp.
#include "daemon/config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <system_error>

#include "daemon/config_keys.h"

namespace pgnap::daemon {
namespace {

struct DurationUnit {
  std::string_view suffix;
  std::int64_t millis;
};
// Largest first: format_duration picks the first that divides exactly.
constexpr DurationUnit kDurationUnits[] = {
    {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1},
};

std::string join_errors(const std::vector<ConfigError>& errors) {
  std::string text;
  for (const ConfigError& error : errors) {
    if (!text.empty()) text += '\n';
    text += error.to_string();
  }
  return text;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::int64_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, count);
  if (ec != std::errc{}) return std::nullopt;  // out of range
  std::string_view suffix = text.substr(digits);
  for (const DurationUnit& unit : kDurationUnits) {
    if (suffix != unit.suffix) continue;
    if (count > std::numeric_limits<Duration::rep>::max() / unit.millis) return std::nullopt;
    return Duration(count * unit.millis);
  }
  return std::nullopt;
}

std::string format_duration(Duration d) {
  std::int64_t millis = d.count();
  if (millis == 0) return "0s";
  std::string sign = millis < 0 ? "-" : "";
  // Magnitude as unsigned, so the most negative value does not overflow.
  std::uint64_t magnitude =
      millis < 0 ? 0 - static_cast<std::uint64_t>(millis) : static_cast<std::uint64_t>(millis);
  for (const DurationUnit& unit : kDurationUnits) {
    auto size = static_cast<std::uint64_t>(unit.millis);
    if (magnitude % size == 0)
      return sign + std::to_string(magnitude / size) + std::string(unit.suffix);
  }
  return sign + std::to_string(magnitude) + "ms";  // unreachable: ms divides everything
}

std::string ListenAddress::to_string() const {
  return kind == Kind::kUnix ? path : config_detail::format_host_port(host, port);
}

std::string BackendAddress::socket_path() const {
  std::string dir = socket_dir;
  if (dir.empty() || dir.back() != '/') dir += '/';
  return dir + ".s.PGSQL." + std::to_string(port);
}

std::string BackendAddress::to_string() const {
  // The socket file, not the directory: it names the port too, and parses back to the same.
  return kind == Kind::kUnix ? socket_path() : config_detail::format_host_port(host, port);
}

bool BackendAddress::local() const {
  if (kind == Kind::kUnix) return true;
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8, written as an IPv4 address (a host name such as 127.db.example.org is not).
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

std::string InstanceConfig::effective_tls() const {
  if (!tls.empty()) return tls;
  // Pointless on a Unix socket or loopback, welcome across a network.
  return address.local() ? "disable" : "prefer";
}

Duration InstanceConfig::exec_start_timeout() const {
  return exec.start_timeout == Duration(0) ? wake_timeout : exec.start_timeout;
}

std::string ConfigError::to_string() const {
  std::string text = file;
  if (line != 0) {
    text += (text.empty() ? "" : ":") + std::to_string(line);
    if (column != 0) text += ":" + std::to_string(column);
  }
  if (!key.empty()) text += (text.empty() ? "" : ": ") + key;
  if (!message.empty()) text += (text.empty() ? "" : ": ") + message;
  return text;
}

ConfigLoadError::ConfigLoadError(std::vector<ConfigError> errors)
    : std::runtime_error(join_errors(errors)), errors_(std::move(errors)) {}

Config load_config(const std::string& path) {
  auto fail = [&path](int error) {
    throw ConfigLoadError(
        {ConfigError{path, 0, 0, "", "cannot read: " + std::generic_category().message(error)}});
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) fail(errno);
  std::string text;
  char buffer[8192];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  // A directory opens fine and fails on the first read (EISDIR).
  if (std::ferror(file.get())) fail(errno);

  std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  return parse_config(text, path, base.lexically_normal().string());
}

}  // namespace pgnap::daemon
