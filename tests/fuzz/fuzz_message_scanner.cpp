// libFuzzer target for MessageScanner. The first bytes of the input choose the chunk sizes
// the rest is fed in, so the fuzzer explores read boundaries as well as contents. The result
// must equal that of a whole-buffer reference walk, written independently of the scanner.
#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "protocol/message_scanner.h"

using namespace pgnap::protocol;

namespace {

// An invariant; a broken one names its line and aborts, which libFuzzer reports as a crash.
void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_message_scanner.cpp:%d: invariant broken\n", line);
  std::abort();
}

struct Event {
  char type;
  std::uint32_t length;
  std::vector<std::uint8_t> head;
  bool operator==(const Event&) const = default;
};

struct Outcome {
  std::vector<Event> events;
  ScanStatus status = ScanStatus::kOk;
  std::uint64_t messages = 0;
  bool at_boundary = false;
};

constexpr std::uint32_t kMaxLength = 512;  // small, so oversize lengths are easy to reach

template <typename Chunks>
Outcome run(Bytes stream, std::bitset<256> watched, Chunks next_chunk) {
  MessageScanner scanner(kMaxLength, watched);
  Outcome out;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t n = std::min(next_chunk(), stream.size() - pos);
    // Each chunk in its own allocation, so an overread is caught by ASan.
    std::vector<std::uint8_t> chunk(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                    stream.begin() + static_cast<std::ptrdiff_t>(pos + n));
    out.status = scanner.scan(Bytes(chunk.data(), chunk.size()), [&](const ScannedMessage& m) {
      check(m.length >= 4 && m.length <= kMaxLength);
      check(m.head.size() == std::min<std::size_t>(m.length - 4, kScanCaptureBytes));
      // The head decoders must cope with any captured bytes.
      (void)parse_backend_key_data(m);
      (void)parse_ready_for_query(m);
      (void)parse_authentication_code(m);
      if (const auto state = parse_error_sqlstate(m)) check(state->size() == 5);
      out.events.push_back({m.type, m.length, std::vector<std::uint8_t>(m.head.begin(), m.head.end())});
    });
    pos += n;
  }
  // The reason is logged and may reach the client: printable ASCII, whatever the bytes.
  check(out.status == ScanStatus::kOk || !scanner.error().empty());
  for (const char c : scanner.error()) check(c >= 0x20 && c < 0x7f);
  out.messages = scanner.messages();
  out.at_boundary = scanner.at_boundary();
  return out;
}

// The scanner's specification as a walk over the whole stream at once: an event for every
// watched message whose head is present, a count for every complete message, invalid at
// the first length below 4 or above the maximum.
Outcome reference(Bytes s, std::bitset<256> watched) {
  Outcome out;
  std::size_t pos = 0;
  while (s.size() - pos >= 5) {
    const std::uint8_t type = s[pos];
    const std::uint32_t length = read_u32(s.data() + pos + 1);
    if (length < 4 || length > kMaxLength) {
      out.status = ScanStatus::kInvalid;
      return out;
    }
    const std::size_t available = s.size() - pos - 5;
    const std::size_t head = std::min<std::size_t>(length - 4, kScanCaptureBytes);
    if (watched.test(type) && available >= head) {
      out.events.push_back({static_cast<char>(type), length,
                            std::vector<std::uint8_t>(s.begin() + static_cast<std::ptrdiff_t>(pos + 5),
                                                      s.begin() + static_cast<std::ptrdiff_t>(pos + 5 + head))});
    }
    if (available < length - 4) return out;
    ++out.messages;
    pos += 1 + std::size_t{length};
  }
  out.at_boundary = pos == s.size();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Layout: 1 byte N, N chunk sizes (each 1..256), 32 bytes of watched-type mask, stream.
  if (size < 1) return 0;
  const std::size_t n_sizes = data[0] % 16;
  if (size < 1 + n_sizes + 32) return 0;
  const std::uint8_t* sizes = data + 1;
  std::bitset<256> watched;
  for (std::size_t i = 0; i < 256; ++i) {
    if (data[1 + n_sizes + i / 8] & (1u << (i % 8))) watched.set(i);
  }
  const Bytes stream(data + 1 + n_sizes + 32, size - 1 - n_sizes - 32);

  std::size_t next = 0;
  const Outcome chunked = run(stream, watched, [&]() -> std::size_t {
    if (n_sizes == 0) return 1;  // byte at a time
    return std::size_t{sizes[next++ % n_sizes]} + 1;
  });
  const Outcome want = reference(stream, watched);
  check(chunked.status == want.status);
  check(chunked.events == want.events);
  check(chunked.messages == want.messages);
  check(chunked.at_boundary == want.at_boundary);
  return 0;
}
