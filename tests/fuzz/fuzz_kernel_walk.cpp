// libFuzzer target for the kernel relay's walker (bpf/pg_walk.h) and its hand-back to user space
// (daemon/relay_kernel.cpp's resume rule), on arbitrary bytes cut into arbitrary segments:
//  - the walker reads only inside the segment it is given (the load below aborts otherwise)
//    and takes at most the segment's length + 5 steps on it;
//  - it stops (or refuses a length) in exactly the segment where the rules of pg_walk.h say
//    it must, and nowhere else;
//  - after the segments it forwarded, its position, state and counts agree with what
//    MessageScanner (same length limit) reports over the same bytes;
//  - at any segment boundary it has not stopped before, a fresh scanner given the resume
//    rule's prefix and the rest of the stream (less the bytes skipped) reports exactly the
//    messages the whole-stream scanner reports from the first one the walker did not count,
//    with the same verdict; on a whole, valid stream, the counts of both add up to its own.
// The checks are shared with tests/bpf/walk_test.cpp (tests/bpf/walk_harness.h).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
int checked_load(const void* src, std::uint32_t offset, void* destination, std::uint32_t length);
}  // namespace

#define PGNAP_WALK_LOAD(src, offset, destination, length) checked_load((src), (offset), (destination), (length))
#include "tests/bpf/walk_harness.h"

using namespace pgnap::bpftest;

namespace {

void check(bool ok, const char* what, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_kernel_walk.cpp:%d: invariant broken: %s\n", line, what);
  std::abort();
}

void check(const std::string& why, int line = __builtin_LINE()) { check(why.empty(), why.c_str(), line); }

// bpf_skb_load_bytes() refuses a read past the segment; here it is a bug of the walker.
int checked_load(const void* src, std::uint32_t offset, void* destination, std::uint32_t length) {
  const SegmentBounds& segment = current_segment;
  check(src == segment.data, "a load from another buffer");
  check(length <= segment.size && offset <= segment.size - length, "a load beyond the segment");
  std::memcpy(destination, static_cast<const unsigned char*>(src) + offset, length);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Layout: 1 byte of flags (bit 0: server side; bits 1-2: the stop mask: none, the relay's,
  // from the input, both), 2 bytes choosing max_length, 1 byte N, N segment sizes (each 1..256,
  // cycled; none: one segment), 1 byte: how many segments are forwarded before the hand-back,
  // [32 bytes of stop mask], the stream.
  if (size < 5) return 0;
  const std::uint8_t flags = data[0];
  const std::uint32_t side = flags & 1;
  const unsigned mask_mode = (flags >> 1) & 3;
  const std::uint16_t limit = static_cast<std::uint16_t>((data[1] << 8) | data[2]);
  const std::size_t n_sizes = data[3] % 16;
  std::size_t pos = 4;
  if (size < pos + n_sizes + 1) return 0;
  const std::uint8_t* sizes = data + pos;
  pos += n_sizes;
  const std::size_t forward = data[pos++];
  const bool mask_from_input = mask_mode >= 2;
  if (mask_from_input && size < pos + 32) return 0;

  pgnap_walk_cfg cfg = make_cfg(side, limit == 0 ? 0x7fffffffu : limit == 1 ? 0xffffffffu : limit + 1u);
  if (mask_mode & 1) {
    for (const char t : side == PGNAP_SIDE_CLIENT ? std::string("X") : std::string("EAKS")) {
      stop_on(cfg, static_cast<unsigned char>(t));
    }
  }
  if (mask_from_input) {
    for (unsigned t = 0; t < 256; ++t) {
      if (data[pos + t / 8] & (1u << (t % 8))) stop_on(cfg, static_cast<unsigned char>(t));
    }
    pos += 32;
  }
  const Bytes stream(data + pos, size - pos);

  std::vector<std::size_t> segments;
  for (std::size_t sum = 0, i = 0; sum < stream.size(); ++i) {
    segments.push_back(n_sizes == 0 ? stream.size() : std::size_t{sizes[i % n_sizes]} + 1);
    sum += segments.back();
  }

  // All of it, as far as the walker goes.
  const StreamWalk all = walk_stream(cfg, stream, segments, segments.size(), 6);
  check(!all.out_of_steps && all.max_extra_steps <= 5, "more steps than the segment's length + 5");
  check(check_stops(cfg, stream, segments, all));
  check(check_walked(cfg, stream, all));
  check(check_resume(cfg, stream, all, cfg.max_length,
                     std::vector<std::size_t>(segments.begin() + static_cast<std::ptrdiff_t>(all.forwarded),
                                              segments.end())));

  // Handed back at an earlier boundary.
  if (forward < all.forwarded) {
    const StreamWalk some = walk_stream(cfg, stream, segments, forward, 6);
    check(some.result == PGNAP_WALK_MORE && some.forwarded == forward, "a prefix of a walk walks differently");
    check(check_walked(cfg, stream, some));
    check(check_resume(cfg, stream, some, cfg.max_length,
                       std::vector<std::size_t>(segments.begin() + static_cast<std::ptrdiff_t>(forward),
                                                segments.end())));
  }
  return 0;
}
