// Decoder of the packets a client may send before its session starts: StartupMessage,
// SSLRequest, GSSENCRequest and CancelRequest. These have no type byte, only a length word
// and a protocol code. https://www.postgresql.org/docs/15/protocol-message-formats.html
//
// Pure: bytes in, a result out. Mirrors the checks of PostgreSQL's ProcessStartupPacket()
// (src/backend/postmaster/postmaster.c) so that pgnap refuses what PostgreSQL would refuse,
// before routing or waking anything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/wire.h"

namespace pgnap::protocol {

struct StartupMessage {
  std::uint16_t major = 3;
  std::uint16_t minor = 0;
  // Parameters in the order the client sent them (user, database, options, GUCs, and
  // protocol extensions named "_pq_.*").
  std::vector<std::pair<std::string, std::string>> parameters;

  // Value of the last parameter called `name`, if any.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const;
  [[nodiscard]] std::string_view user() const;  // "" when absent
  // The database the client asked for; PostgreSQL defaults it to the user name.
  [[nodiscard]] std::string_view database() const;
};

struct SslRequest {};
struct GssEncRequest {};
struct CancelRequest {
  std::uint32_t process_id = 0;
  std::uint32_t secret_key = 0;
};

using StartupPacket = std::variant<StartupMessage, SslRequest, GssEncRequest, CancelRequest>;

enum class DecodeStatus {
  kNeedMoreData,  // not enough bytes yet; nothing consumed
  kReady,         // one packet decoded; `consumed` bytes belong to it
  kInvalid,       // the stream is not a valid startup packet; close with `error`
};

struct StartupDecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMoreData;
  std::size_t consumed = 0;
  StartupPacket packet;
  // For kInvalid: the message to send to the client in a FATAL 08P01 ErrorResponse,
  // e.g. "invalid startup packet: length 5 is below the minimum of 8 bytes".
  std::string error;
};

// Decodes the packet at the start of `input`. Rules:
// - the length word is checked as soon as 4 bytes are present: < 8 or > 10000 is invalid,
//   so an oversized length is refused before the rest arrives;
// - CancelRequest must be exactly 16 bytes, SSLRequest and GSSENCRequest exactly 8;
// - StartupMessage: major version 3 (any minor; the caller negotiates down to 3.0),
//   NUL-terminated name/value pairs ending with one NUL that is the packet's last byte;
//   a name without value, a missing terminator or an empty parameter list without the final
//   NUL are invalid; protocol 2 and unknown codes are invalid
//   ("unsupported frontend protocol 2.0: the gateway supports 3.0");
// - `user` is required ("invalid startup packet: no user name specified").
// Never reads past `input` and never allocates more than the packet's validated length.
[[nodiscard]] StartupDecodeResult decode_startup(Bytes input);

}  // namespace pgnap::protocol
