// Framing of complete typed messages — a type byte, then a length that counts itself but not
// the type — for the places where pgnap reads a whole message itself rather than relaying
// bytes: a client's authentication and the messages it sends while its instance wakes, and
// what PostgreSQL answers when pgnap logs in for a client.
//
// Like every decoder here: bytes in; *need more*, *a message (n bytes)* or *invalid* out;
// the length is bounded before anything is read past the header.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/message_scanner.h"
#include "protocol/wire.h"

namespace pgnap::protocol {

struct Frame {
  char type = 0;
  Bytes body;            // the bytes after the length word (a view into the input)
  std::size_t size = 0;  // bytes of the input the message occupies: 1 + its length word
};

enum class FrameStatus { kNeedMoreData, kReady, kInvalid };

struct FrameResult {
  FrameStatus status = FrameStatus::kNeedMoreData;
  Frame frame;                              // kReady
  ScanError error_kind = ScanError::kNone;  // kInvalid: below 4, or above max_length
  std::string error;                        // kInvalid: as MessageScanner words it
};

// The message at the start of `input`, if it is all there. `max_length` bounds the length
// word (checked as soon as the 5 header bytes are in).
[[nodiscard]] FrameResult next_frame(Bytes input, std::uint32_t max_length);

}  // namespace pgnap::protocol
