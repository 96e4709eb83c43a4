// next_frame(): a whole typed message at the start of a buffer, its length judged exactly as
// MessageScanner judges it (length_check.h).
#include "protocol/frame.h"

#include <utility>

#include "protocol/length_check.h"

namespace pgnap::protocol {

FrameResult next_frame(Bytes input, std::uint32_t max_length) {
  FrameResult result;
  constexpr std::size_t kHeader = 5;  // type byte and length word
  if (input.size() < kHeader) return result;

  // The length is judged before the body is looked for, so that an oversized message is
  // refused at its header rather than waited for.
  const std::uint32_t length = read_u32(input.data() + 1);
  detail::LengthCheck check = detail::check_length(input[0], length, max_length);
  if (check.kind != ScanError::kNone) {
    result.status = FrameStatus::kInvalid;
    result.error_kind = check.kind;
    result.error = std::move(check.error);
    return result;
  }
  // input.size() - 1 cannot wrap (at least 5 bytes are here), and once the whole message is
  // here 1 + length cannot overflow, whatever the width of size_t.
  if (input.size() - 1 < length) return result;
  const std::size_t size = 1 + std::size_t{length};

  result.status = FrameStatus::kReady;
  result.frame.type = static_cast<char>(input[0]);
  result.frame.body = input.subspan(kHeader, size - kHeader);
  result.frame.size = size;
  return result;
}

}  // namespace pgnap::protocol
