// Constants and byte order helpers of the PostgreSQL frontend/backend protocol 3.0.
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pgnap::protocol {

using Bytes = std::span<const std::uint8_t>;

// PostgreSQL's own limit (src/include/libpq/pqcomm.h MAX_STARTUP_PACKET_LENGTH):
// a startup packet longer than this is refused before anything is allocated.
inline constexpr std::uint32_t kMaxStartupPacketLength = 10000;
// The length word plus the protocol code: the smallest valid startup packet.
inline constexpr std::uint32_t kMinStartupPacketLength = 8;

inline constexpr std::uint32_t make_protocol(std::uint16_t major, std::uint16_t minor) {
  return (std::uint32_t{major} << 16) | minor;
}
inline constexpr std::uint16_t protocol_major(std::uint32_t v) { return static_cast<std::uint16_t>(v >> 16); }
inline constexpr std::uint16_t protocol_minor(std::uint32_t v) { return static_cast<std::uint16_t>(v & 0xffff); }

inline constexpr std::uint32_t kProtocol3 = make_protocol(3, 0);
// Special "protocol versions" of the startup phase (pqcomm.h).
inline constexpr std::uint32_t kCancelRequestCode = make_protocol(1234, 5678);
inline constexpr std::uint32_t kSslRequestCode = make_protocol(1234, 5679);
inline constexpr std::uint32_t kGssEncRequestCode = make_protocol(1234, 5680);
inline constexpr std::uint32_t kCancelRequestLength = 16;

// Message type bytes pgnap looks at (all others are relayed without inspection).
namespace backend_msg {
inline constexpr char kAuthentication = 'R';
inline constexpr char kBackendKeyData = 'K';
inline constexpr char kErrorResponse = 'E';
inline constexpr char kNoticeResponse = 'N';
inline constexpr char kNegotiateProtocolVersion = 'v';
inline constexpr char kParameterStatus = 'S';
inline constexpr char kReadyForQuery = 'Z';
inline constexpr char kCommandComplete = 'C';
inline constexpr char kNotificationResponse = 'A';
inline constexpr char kCopyInResponse = 'G';
inline constexpr char kCopyOutResponse = 'H';
inline constexpr char kCopyBothResponse = 'W';
}  // namespace backend_msg
namespace frontend_msg {
inline constexpr char kQuery = 'Q';
inline constexpr char kFunctionCall = 'F';
inline constexpr char kParse = 'P';
inline constexpr char kBind = 'B';
inline constexpr char kExecute = 'E';
inline constexpr char kDescribe = 'D';
inline constexpr char kClose = 'C';
inline constexpr char kFlush = 'H';
inline constexpr char kTerminate = 'X';
inline constexpr char kCopyDone = 'c';
inline constexpr char kCopyFail = 'f';
inline constexpr char kSync = 'S';
}  // namespace frontend_msg

inline std::uint32_t read_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}
inline std::int32_t read_i32(const std::uint8_t* p) { return static_cast<std::int32_t>(read_u32(p)); }
inline std::uint16_t read_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((std::uint16_t{p[0]} << 8) | p[1]);
}

inline void append_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
inline void append_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
// Writes `v` over the 4 bytes at `pos` (used to patch a length word).
inline void put_u32(std::string& out, std::size_t pos, std::uint32_t v) {
  out[pos] = static_cast<char>((v >> 24) & 0xff);
  out[pos + 1] = static_cast<char>((v >> 16) & 0xff);
  out[pos + 2] = static_cast<char>((v >> 8) & 0xff);
  out[pos + 3] = static_cast<char>(v & 0xff);
}

inline Bytes as_bytes(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

}  // namespace pgnap::protocol
