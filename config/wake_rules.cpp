// Ignore rules (config/wake_rules.h): address patterns read with inet_pton, so that every
// spelling of an address the kernel accepts ("::1", "0:0::1") means the same.
#include "config/wake_rules.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "config/keys.h"

namespace pgnap::config {
namespace {

constexpr std::string_view kExpected =
    R"(expected "unix", an IP address or a CIDR such as "10.0.0.0/8" or "fd00::/8", got )";

struct Ip {
  AddressPattern::Kind kind;
  std::array<std::uint8_t, 16> bytes{};
};

// inet_pton needs a NUL-terminated string; addresses are short.
std::optional<Ip> read_ip(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buffer[INET6_ADDRSTRLEN] = {};
  std::memcpy(buffer, text.data(), text.size());
  Ip ip{AddressPattern::Kind::kIpv4, {}};
  if (::inet_pton(AF_INET, buffer, ip.bytes.data()) == 1) return ip;
  ip.kind = AddressPattern::Kind::kIpv6;
  if (::inet_pton(AF_INET6, buffer, ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

// ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2).
bool ipv4_mapped(const std::array<std::uint8_t, 16>& bytes) {
  for (int i = 0; i < 10; ++i) {
    if (bytes[i] != 0) return false;
  }
  return bytes[10] == 0xff && bytes[11] == 0xff;
}

bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, int bits) {
  const int whole = bits / 8;
  if (std::memcmp(a, b, static_cast<std::size_t>(whole)) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::optional<AddressPattern> parse_address_pattern(std::string_view text, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<AddressPattern> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
  if (text == "unix") return AddressPattern{};
  const std::size_t slash = text.find('/');
  std::optional<Ip> ip = read_ip(text.substr(0, slash));
  if (!ip) return fail(std::string(kExpected) + detail::quote(text));
  AddressPattern pattern{ip->kind, ip->bytes, ip->kind == AddressPattern::Kind::kIpv4 ? 32 : 128};
  if (slash == std::string_view::npos) return pattern;
  const std::string_view length = text.substr(slash + 1);
  int bits = -1;
  const auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), bits);
  const bool digits_only = !length.empty() && length.size() <= 3 && length.front() != '+' && length.front() != '-';
  if (!digits_only || ec != std::errc{} || end != length.data() + length.size() || bits < 0 ||
      bits > pattern.prefix_length) {
    return fail("expected a prefix length between 0 and " + std::to_string(pattern.prefix_length) + " in " +
                detail::quote(text) + ", got " + detail::quote(length));
  }
  pattern.prefix_length = bits;
  return pattern;
}

bool matches(const AddressPattern& pattern, std::string_view ip) {
  if (pattern.kind == AddressPattern::Kind::kUnix) return ip.empty();
  if (ip.empty()) return false;
  // A link-local client arrives as "fe80::1%eth0": the scope is not part of the address.
  std::optional<Ip> client = read_ip(ip.substr(0, ip.find('%')));
  if (!client) return false;
  if (pattern.kind == AddressPattern::Kind::kIpv4) {
    if (client->kind == AddressPattern::Kind::kIpv4) {
      return prefix_equal(client->bytes.data(), pattern.bytes.data(), pattern.prefix_length);
    }
    return ipv4_mapped(client->bytes) &&
           prefix_equal(client->bytes.data() + 12, pattern.bytes.data(), pattern.prefix_length);
  }
  return client->kind == AddressPattern::Kind::kIpv6 &&
         prefix_equal(client->bytes.data(), pattern.bytes.data(), pattern.prefix_length);
}

bool matches(const WakeIgnoreRule& rule, std::string_view user, std::string_view application_name,
             std::string_view ip) {
  if (!rule.user.empty() && rule.user != user) return false;
  if (!rule.application_name.empty()) {
    std::string_view want = rule.application_name;
    if (want.back() == '*') {
      want.remove_suffix(1);
      if (application_name.substr(0, want.size()) != want) return false;
    } else if (want != application_name) {
      return false;
    }
  }
  if (!rule.address.empty()) {
    std::optional<AddressPattern> pattern = parse_address_pattern(rule.address, nullptr);
    if (!pattern || !matches(*pattern, ip)) return false;
  }
  return true;
}

const WakeIgnoreRule* first_match(const std::vector<WakeIgnoreRule>& rules, std::string_view user,
                                  std::string_view application_name, std::string_view ip) {
  for (const WakeIgnoreRule& rule : rules) {
    if (matches(rule, user, application_name, ip)) return &rule;
  }
  return nullptr;
}

std::string WakeIgnoreRule::to_string() const {
  std::string out;
  for (auto [name, value] :
       {std::pair{"user", &user}, std::pair{"application_name", &application_name}, std::pair{"address", &address}}) {
    if (value->empty()) continue;
    if (!out.empty()) out += ", ";
    out += std::string(name) + " = " + detail::quote(*value);
  }
  return out;
}

}  // namespace pgnap::config
