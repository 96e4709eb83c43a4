// libFuzzer target for decode_startup(): any input must yield a well-formed result, the
// packet it decodes must be exactly what pgnap's encoders write back, and a decision must not
// change when more bytes arrive.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/encode.h"
#include "protocol/startup.h"

using namespace pgnap::protocol;

namespace {

// An invariant; a broken one names its line and aborts, which libFuzzer reports as a crash.
void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_startup.cpp:%d: invariant broken\n", line);
  std::abort();
}

// Decodes a private copy of the first `n` bytes, so that reading past them is an ASan error.
StartupDecodeResult decode_prefix(const std::uint8_t* data, std::size_t n) {
  const std::vector<std::uint8_t> copy(data, data + n);
  return decode_startup(Bytes(copy.data(), copy.size()));
}

bool same_packet(const StartupPacket& a, const StartupPacket& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<StartupMessage>(&a)) {
    const auto& y = std::get<StartupMessage>(b);
    return x->major == y.major && x->minor == y.minor && x->parameters == y.parameters;
  }
  if (const auto* x = std::get_if<CancelRequest>(&a)) {
    const auto& y = std::get<CancelRequest>(b);
    return x->process_id == y.process_id && x->secret_key == y.secret_key;
  }
  return true;
}

// The error goes into a FATAL ErrorResponse and into the log: one short line of printable
// ASCII, whatever the peer sent (startup.cpp quotes and cuts the names it repeats: at most
// 64 bytes, each at most 4 characters once escaped).
void check_error_text(const std::string& error) {
  check(!error.empty() && error.size() <= 512);
  for (const char c : error) check(c >= 0x20 && c < 0x7f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  const StartupDecodeResult r = decode_startup(input);
  check(r.consumed <= size);
  switch (r.status) {
    case DecodeStatus::kNeedMoreData: check(r.consumed == 0 && r.error.empty()); break;
    case DecodeStatus::kInvalid:
      check(r.consumed == 0);
      check_error_text(r.error);
      break;
    case DecodeStatus::kReady: {
      check(r.error.empty());
      check(size >= 8 && r.consumed == read_u32(data));
      check(r.consumed >= kMinStartupPacketLength && r.consumed <= kMaxStartupPacketLength);
      const std::uint32_t code = read_u32(data + 4);
      const std::string_view packet(reinterpret_cast<const char*>(data), r.consumed);
      if (const auto* msg = std::get_if<StartupMessage>(&r.packet)) {
        check(msg->major == 3 && make_protocol(msg->major, msg->minor) == code);
        check(!msg->user().empty() && !msg->database().empty());
        for (const auto& [name, value] : msg->parameters) {
          check(!name.empty() && name.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
        }
        // What pgnap forwards is the client's packet byte for byte, but for the minor
        // version, which it always sets to 0.
        const std::string forwarded = encode_startup_message(*msg);
        check(forwarded.size() == packet.size());
        check(forwarded.compare(0, 4, packet.substr(0, 4)) == 0);
        check(read_u32(reinterpret_cast<const std::uint8_t*>(forwarded.data()) + 4) == kProtocol3);
        check(forwarded.compare(8, std::string::npos, packet.substr(8)) == 0);
        const StartupDecodeResult again = decode_startup(as_bytes(forwarded));
        check(again.status == DecodeStatus::kReady && again.consumed == forwarded.size());
        check(std::get<StartupMessage>(again.packet).parameters == msg->parameters);
      } else if (const auto* cancel = std::get_if<CancelRequest>(&r.packet)) {
        check(code == kCancelRequestCode && r.consumed == kCancelRequestLength);
        check(cancel->process_id == read_u32(data + 8) && cancel->secret_key == read_u32(data + 12));
        // The CancelRequest pgnap relays to PostgreSQL is the one it received.
        check(encode_cancel_request(*cancel) == packet);
      } else if (std::holds_alternative<SslRequest>(r.packet)) {
        check(code == kSslRequestCode && r.consumed == 8);
      } else {
        check(std::holds_alternative<GssEncRequest>(r.packet));
        check(code == kGssEncRequestCode && r.consumed == 8);
      }
      // The bytes after the packet (the next packet, or a TLS handshake) do not matter.
      const StartupDecodeResult alone = decode_prefix(data, r.consumed);
      check(alone.status == DecodeStatus::kReady && alone.consumed == r.consumed);
      check(same_packet(alone.packet, r.packet));
      break;
    }
  }
  // A shorter prefix of a packet that decodes must ask for more data; an invalid prefix
  // means the whole input is invalid, for the same reason.
  for (const std::size_t n : {size / 2, size > 0 ? size - 1 : 0}) {
    const StartupDecodeResult prefix = decode_prefix(data, n);
    if (r.status == DecodeStatus::kReady && n < r.consumed) check(prefix.status == DecodeStatus::kNeedMoreData);
    if (prefix.status == DecodeStatus::kInvalid) check(r.status == DecodeStatus::kInvalid && r.error == prefix.error);
    if (prefix.status == DecodeStatus::kReady) check(r.status == DecodeStatus::kReady && r.consumed == prefix.consumed);
  }
  return 0;
}
