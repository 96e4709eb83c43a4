// [instances.NAME.wake] ignore rules: which clients never wake an instance nor keep it awake.
// Pure matching of a client's user, application_name and address against the rules the
// configuration holds (config/config.h, WakeIgnoreRule); the loader checks each rule's address
// with parse_address_pattern, so the matching never meets one it cannot read.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace pgnap::config {

// An ignore rule's `address`: "unix", an IPv4 or IPv6 CIDR ("10.0.0.0/8", "fd00::/8"), or one
// address (a /32 or /128). Host bits past the prefix are ignored, as pg_hba.conf does.
struct AddressPattern {
  enum class Kind { kUnix, kIpv4, kIpv6 };
  Kind kind = Kind::kUnix;
  std::array<std::uint8_t, 16> bytes{};  // network order; the first 4 for IPv4
  int prefix_length = 0;                 // [0, 32] or [0, 128]
};

// Parses an address pattern; nullopt (and `error`, when not null, says what was expected)
// otherwise.
[[nodiscard]] std::optional<AddressPattern> parse_address_pattern(std::string_view text, std::string* error);

// Whether a client at `ip` ("" for a Unix socket; an IPv6 scope "%eth0" is ignored) is in
// `pattern`. An IPv4 pattern also matches an IPv4-mapped IPv6 address ("::ffff:10.1.2.3"), as
// a dual-stack listener reports IPv4 clients; otherwise an IPv4 client matches IPv4 patterns
// only and an IPv6 client IPv6 patterns only ("::/0" is every IPv6 client, not every client).
[[nodiscard]] bool matches(const AddressPattern& pattern, std::string_view ip);

// Whether a client matches every field `rule` sets: user exactly, application_name exactly or
// by prefix (a trailing '*'), address as above. A rule whose address does not parse matches
// nothing.
[[nodiscard]] bool matches(const WakeIgnoreRule& rule, std::string_view user, std::string_view application_name,
                           std::string_view ip);

// The first rule the client matches, or nullptr.
[[nodiscard]] const WakeIgnoreRule* first_match(const std::vector<WakeIgnoreRule>& rules, std::string_view user,
                                                std::string_view application_name, std::string_view ip);

}  // namespace pgnap::config
