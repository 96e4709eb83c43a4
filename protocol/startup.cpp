// Startup-phase packet decoder. The checks follow ProcessStartupPacket() in PostgreSQL 15
// (src/backend/postmaster/postmaster.c); the layouts are those of
// https://www.postgresql.org/docs/15/protocol-message-formats.html (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest).
#include "protocol/startup.h"

#include <algorithm>

namespace pgnap::protocol {

std::optional<std::string_view> StartupMessage::get(std::string_view name) const {
  // PostgreSQL keeps the last occurrence of a repeated parameter (each one overwrites the
  // previous in ProcessStartupPacket), so search from the back.
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
    if (it->first == name) return std::string_view(it->second);
  }
  return std::nullopt;
}

std::string_view StartupMessage::user() const { return get("user").value_or(std::string_view()); }

std::string_view StartupMessage::database() const {
  // postmaster.c: "The database defaults to the user name." An empty value counts as absent.
  const auto db = get("database");
  if (db && !db->empty()) return *db;
  return user();
}

namespace {

// Names quoted in error messages come from an unauthenticated peer and end up in the
// client's ErrorResponse and in our logs: keep printable ASCII, escape the rest, and cut
// long names so a 10 000-byte name cannot flood a log line.
std::string quote(std::string_view raw) {
  constexpr std::size_t kMaxQuoted = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < raw.size() && i < kMaxQuoted; ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (raw.size() > kMaxQuoted) out += "...";
  out += "\"";
  return out;
}

StartupDecodeResult invalid(std::string error) {
  StartupDecodeResult r;
  r.status = DecodeStatus::kInvalid;
  r.error = std::move(error);
  return r;
}

StartupDecodeResult malformed(const std::string& what) { return invalid("invalid startup packet: " + what); }

std::string version_string(std::uint32_t code) {
  return std::to_string(protocol_major(code)) + "." + std::to_string(protocol_minor(code));
}

// Checks that depend only on the length word and the protocol code. Done as soon as those
// 8 bytes are present, so a packet that can never be valid is refused without waiting for
// (and buffering) the rest of its declared length. Returns an error message, or "" if fine.
std::string check_code(std::uint32_t length, std::uint32_t code) {
  // CancelRequest is exactly 16 bytes: postmaster.c rejects any other length
  // ("if (len != sizeof(CancelRequestPacket))").
  if (code == kCancelRequestCode && length != kCancelRequestLength) {
    return "invalid startup packet: CancelRequest must be " + std::to_string(kCancelRequestLength) + " bytes, got " +
           std::to_string(length);
  }
  // SSLRequest and GSSENCRequest carry nothing after the code (protocol-message-formats).
  // PostgreSQL ignores extra bytes here, but the bytes that follow an SSLRequest are the TLS
  // handshake: anything else in the same packet would be unencrypted data smuggled in
  // before the handshake (compare "received unencrypted data after SSL request").
  if (code == kSslRequestCode && length != kMinStartupPacketLength) {
    return "invalid startup packet: SSLRequest must be 8 bytes, got " + std::to_string(length);
  }
  if (code == kGssEncRequestCode && length != kMinStartupPacketLength) {
    return "invalid startup packet: GSSENCRequest must be 8 bytes, got " + std::to_string(length);
  }
  if (code == kCancelRequestCode || code == kSslRequestCode || code == kGssEncRequestCode) return {};
  // Only the major version is checked, as PostgreSQL does: a newer minor is accepted and
  // answered with NegotiateProtocolVersion by the caller.
  if (protocol_major(code) != protocol_major(kProtocol3)) {
    return "unsupported frontend protocol " + version_string(code) + ": the gateway supports 3.0";
  }
  return {};
}

// Finds the NUL that ends the string starting at `from`, within [from, end).
std::optional<std::size_t> find_nul(Bytes packet, std::size_t from, std::size_t end) {
  const auto* begin = packet.data() + from;
  const auto* hit = std::find(begin, packet.data() + end, std::uint8_t{0});
  if (hit == packet.data() + end) return std::nullopt;
  return static_cast<std::size_t>(hit - packet.data());
}

std::string_view text(Bytes packet, std::size_t from, std::size_t to) {
  return {reinterpret_cast<const char*>(packet.data()) + from, to - from};
}

// The parameter list of a StartupMessage: pairs of NUL-terminated strings, ended by one
// extra NUL that must be the packet's last byte. Same walk as postmaster.c, which reports
// every failure as "invalid startup packet layout: expected terminator as last byte"; here
// each case says what is wrong.
StartupDecodeResult parse_parameters(Bytes packet, std::uint32_t code) {
  StartupMessage msg;
  msg.major = protocol_major(code);
  msg.minor = protocol_minor(code);
  const std::size_t len = packet.size();
  std::size_t offset = kMinStartupPacketLength;
  std::string_view last_name;
  bool terminated = false;
  while (offset < len) {
    if (packet[offset] == 0) {
      if (offset != len - 1) {
        return malformed(std::to_string(len - 1 - offset) +
                         " unexpected byte(s) after the terminator of the parameter list");
      }
      terminated = true;
      break;
    }
    const auto name_end = find_nul(packet, offset, len);
    if (!name_end) return malformed("parameter name " + quote(text(packet, offset, len)) + " is not NUL-terminated");
    const std::string_view name = text(packet, offset, *name_end);
    const std::size_t value_offset = *name_end + 1;
    // postmaster.c: "if (valoffset >= len) break; /* missing value */"
    if (value_offset >= len) return malformed("parameter " + quote(name) + " has no value");
    const auto value_end = find_nul(packet, value_offset, len);
    if (!value_end) return malformed("value of parameter " + quote(name) + " is not NUL-terminated");
    msg.parameters.emplace_back(std::string(name), std::string(text(packet, value_offset, *value_end)));
    last_name = name;
    offset = *value_end + 1;
  }
  if (!terminated) {
    if (last_name.empty()) return malformed("missing terminator after the protocol version");
    return malformed("missing terminator after parameter " + quote(last_name));
  }
  // postmaster.c: "no PostgreSQL user name specified in startup packet" (also for "").
  if (msg.user().empty()) return malformed("no user name specified");

  StartupDecodeResult r;
  r.status = DecodeStatus::kReady;
  r.consumed = len;
  r.packet = std::move(msg);
  return r;
}

}  // namespace

StartupDecodeResult decode_startup(Bytes input) {
  if (input.size() < 4) return {};
  // The length word is an Int32 that counts itself. A negative one (high bit set) is read
  // as a huge unsigned value and refused as too long, which is what it is in effect.
  const std::uint32_t length = read_u32(input.data());
  if (length < kMinStartupPacketLength) {
    return malformed("length " + std::to_string(length) + " is below the minimum of " +
                     std::to_string(kMinStartupPacketLength) + " bytes");
  }
  if (length > kMaxStartupPacketLength) {
    return malformed("length " + std::to_string(length) + " exceeds the maximum of " +
                     std::to_string(kMaxStartupPacketLength) + " bytes");
  }
  if (input.size() < kMinStartupPacketLength) return {};
  const std::uint32_t code = read_u32(input.data() + 4);
  if (auto error = check_code(length, code); !error.empty()) return invalid(std::move(error));
  if (input.size() < length) return {};

  const Bytes packet = input.first(length);
  StartupDecodeResult r;
  if (code == kSslRequestCode) {
    r.packet = SslRequest{};
  } else if (code == kGssEncRequestCode) {
    r.packet = GssEncRequest{};
  } else if (code == kCancelRequestCode) {
    r.packet = CancelRequest{read_u32(packet.data() + 8), read_u32(packet.data() + 12)};
  } else {
    return parse_parameters(packet, code);
  }
  r.status = DecodeStatus::kReady;
  r.consumed = length;
  return r;
}

}  // namespace pgnap::protocol
