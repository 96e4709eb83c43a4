// Internal to protocol/ (included by its .cpp files only, never by a public header): the one
// judgement of a typed message's length word, so that MessageScanner and next_frame() refuse
// the same lengths with the same ScanError and the same words. Defined in message_scanner.cpp.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/message_scanner.h"

namespace pgnap::protocol::detail {

struct LengthCheck {
  ScanError kind = ScanError::kNone;
  std::string error;  // empty when kind is kNone
};

// The length word of a message of type `type`: below 4 it cannot be a message (the stream is
// out of sync), above `max_length` it is refused before anything buffers or forwards that much.
[[nodiscard]] LengthCheck check_length(std::uint8_t type, std::uint32_t length, std::uint32_t max_length);

}  // namespace pgnap::protocol::detail
