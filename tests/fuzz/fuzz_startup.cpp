// libFuzzer target for decode_startup(): any input must yield a well-formed result, and a
// decision must not change when more bytes arrive.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>
#include <vector>

#include "protocol/encode.h"
#include "protocol/startup.h"

using namespace pgnap::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  const StartupDecodeResult r = decode_startup(input);
  check(r.consumed <= size);
  switch (r.status) {
    case DecodeStatus::kNeedMoreData:
      check(r.consumed == 0 && r.error.empty());
      break;
    case DecodeStatus::kInvalid:
      check(r.consumed == 0 && !r.error.empty());
      break;
    case DecodeStatus::kReady: {
      check(size >= 8 && r.consumed == read_u32(data));
      check(r.consumed >= kMinStartupPacketLength && r.consumed <= kMaxStartupPacketLength);
      if (const auto* msg = std::get_if<StartupMessage>(&r.packet)) {
        check(!msg->user().empty() && !msg->database().empty());
        // What pgnap forwards must decode to the same parameters.
        const std::string forwarded = encode_startup_message(*msg);
        const StartupDecodeResult again = decode_startup(as_bytes(forwarded));
        check(again.status == DecodeStatus::kReady && again.consumed == forwarded.size());
        check(std::get<StartupMessage>(again.packet).parameters == msg->parameters);
      }
      break;
    }
  }
  // A shorter prefix of a packet that decodes must ask for more data; an invalid prefix
  // means the whole input is invalid, for the same reason.
  // The prefix gets its own allocation, so that reading past it is an ASan error.
  const std::size_t half = size / 2;
  const std::vector<std::uint8_t> prefix_copy(data, data + half);
  const StartupDecodeResult prefix = decode_startup(Bytes(prefix_copy.data(), prefix_copy.size()));
  if (r.status == DecodeStatus::kReady && half < r.consumed) check(prefix.status == DecodeStatus::kNeedMoreData);
  if (prefix.status == DecodeStatus::kInvalid) check(r.status == DecodeStatus::kInvalid && r.error == prefix.error);
  return 0;
}
