// Shared by the protocol fuzz targets that read whole messages: next_frame() walked over a
// stream, checked against the stream's own length words and against MessageScanner, which
// must judge the same bytes the same way (same count, same ScanError, same words).
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "protocol/frame.h"
#include "protocol/message_scanner.h"

namespace pgnap::fuzz {

// An invariant of the walk; a broken one names its line and aborts.
inline void frame_check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "frame_walk.h:%d: invariant broken\n", line);
  std::abort();
}

// Walks `stream` with next_frame(`max_length`) and calls `on_frame(const protocol::Frame&)`
// for every whole message, its body copied into a buffer of its own so that a decoder reading
// past the body is an ASan error even in the middle of the stream. Checks that:
// - a frame starts where the previous one ended, lies within the stream, its size is 1 + its
//   length word and its body the bytes after the header;
// - kNeedMoreData comes only when fewer bytes remain than a header, or than the header says;
// - kInvalid comes only for a length word below 4 or above `max_length`, with the kind that
//   says which;
// - MessageScanner over the same bytes counts the same messages, ends at a boundary exactly
//   when the frames cover the stream, and refuses with the same kind and words.
// Returns the number of frames.
template <typename OnFrame>
std::size_t walk_frames(protocol::Bytes stream, std::uint32_t max_length, OnFrame&& on_frame) {
  using namespace protocol;
  std::size_t pos = 0;
  std::size_t frames = 0;
  FrameResult last;
  for (;;) {
    const Bytes rest = stream.subspan(pos);
    FrameResult r = next_frame(rest, max_length);
    if (r.status != FrameStatus::kReady) {
      last = std::move(r);
      break;
    }
    const Frame& f = r.frame;
    frame_check(rest.size() >= 5 && f.size >= 5 && f.size <= rest.size());
    frame_check(f.size == 1 + std::size_t{read_u32(rest.data() + 1)});
    frame_check(f.type == static_cast<char>(rest[0]));
    frame_check(f.body.data() == rest.data() + 5 && f.body.size() == f.size - 5);
    frame_check(f.size - 1 <= max_length);
    frame_check(r.error_kind == ScanError::kNone && r.error.empty());
    const std::vector<std::uint8_t> body(f.body.begin(), f.body.end());
    on_frame(Frame{f.type, Bytes(body.data(), body.size()), f.size});
    pos += f.size;
    ++frames;
  }

  const Bytes rest = stream.subspan(pos);
  if (last.status == FrameStatus::kNeedMoreData) {
    frame_check(last.error_kind == ScanError::kNone && last.error.empty());
    if (rest.size() >= 5) {
      const std::uint32_t length = read_u32(rest.data() + 1);
      frame_check(length >= 4 && length <= max_length);
      frame_check(rest.size() < 1 + std::size_t{length});
    }
  } else {
    frame_check(rest.size() >= 5 && !last.error.empty());
    const std::uint32_t length = read_u32(rest.data() + 1);
    frame_check(length < 4 ? last.error_kind == ScanError::kLengthBelowMinimum
                           : length > max_length && last.error_kind == ScanError::kLengthAboveMaximum);
    // The reason is logged and may reach the client: printable ASCII, whatever the bytes.
    for (const char c : last.error) frame_check(c >= 0x20 && c < 0x7f);
  }

  MessageScanner scanner(max_length, std::bitset<256>{});
  const ScanStatus status = scanner.scan(stream, [](const ScannedMessage&) {});
  frame_check(scanner.messages() == frames);
  if (last.status == FrameStatus::kInvalid) {
    frame_check(status == ScanStatus::kInvalid);
    frame_check(scanner.error_kind() == last.error_kind && scanner.error() == last.error);
  } else {
    frame_check(status == ScanStatus::kOk);
    frame_check(scanner.at_boundary() == rest.empty());
  }
  return frames;
}

}  // namespace pgnap::fuzz
