// The kernel relay's walker (bpf/pg_walk.h) driven as relay.bpf.c drives it, the hand-back to
// user space as daemon/relay_kernel.cpp does it, and the checks shared by tests/bpf/walk_test.cpp
// and tests/fuzz/fuzz_kernel_walk.cpp:
//   check_walked   the walker's position and counts after the bytes it forwarded agree with
//                  MessageScanner's messages over the same bytes, and it stopped exactly where
//                  a reference (stop_trigger) says it must;
//   check_resume   the scanner that takes over (the prefix re-fed, or the rest of a counted
//                  message skipped) reports exactly the messages the walker did not count:
//                  none twice, none lost, and the counts of both add up to the whole stream's.
// The includer defines PGNAP_WALK_LOAD before including this header.
#pragma once

#ifndef PGNAP_WALK_LOAD
#error "define PGNAP_WALK_LOAD before including tests/bpf/walk_harness.h"
#endif

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/pg_walk.h"
#include "protocol/message_scanner.h"

namespace pgnap::bpftest {

using protocol::Bytes;

// The segment being walked now: for a PGNAP_WALK_LOAD that checks its reads stay inside it.
struct SegmentBounds {
  const unsigned char* data = nullptr;
  std::size_t size = 0;
};
inline SegmentBounds current_segment;

inline void stop_on(pgnap_walk_cfg& cfg, unsigned char type) {
  cfg.stop_mask[type >> 6] |= std::uint64_t{1} << (type & 63);
}
inline bool stops(const pgnap_walk_cfg& cfg, unsigned char type) {
  return (cfg.stop_mask[type >> 6] >> (type & 63)) & 1;
}

inline pgnap_walk_cfg make_cfg(std::uint32_t side, std::uint32_t max_length, std::string_view stop_types = {}) {
  pgnap_walk_cfg cfg{};
  cfg.side = side;
  cfg.max_length = max_length;
  for (const char t : stop_types) stop_on(cfg, static_cast<unsigned char>(t));
  return cfg;
}

struct SegmentWalk {
  int result = PGNAP_WALK_MORE;
  std::uint32_t steps = 0;
  bool out_of_steps = false;  // `max_steps` taken and bytes left (the program's PGNAP_STOP_STEPS)
};

// One segment as relay.bpf.c walks it: on a copy of the state, step until the segment is
// consumed or a step says STOP or BAD_LENGTH; the copy becomes the state only in the first case.
inline SegmentWalk walk_segment(pgnap_walk& w, const pgnap_walk_cfg& cfg, const unsigned char* data, std::uint32_t size,
                                std::uint32_t max_steps) {
  pgnap_walk scratch = w;
  SegmentWalk out;
  std::uint32_t offset = 0;
  current_segment = {data, size};
  while (offset < size) {
    if (out.steps == max_steps) {
      out.out_of_steps = true;
      break;
    }
    ++out.steps;
    out.result = pgnap_walk_step(&scratch, &cfg, const_cast<unsigned char*>(data), &offset, size);
    if (out.result != PGNAP_WALK_MORE) break;
  }
  current_segment = {};
  if (out.result == PGNAP_WALK_MORE && !out.out_of_steps) w = scratch;
  return out;
}

// A stream walked segment by segment until a segment stops or `max_segments` are forwarded.
struct StreamWalk {
  pgnap_walk w{};                     // the state after the forwarded segments
  std::size_t resume = 0;             // bytes forwarded in the kernel: where user space takes over
  std::size_t forwarded = 0;          // segments forwarded
  int result = PGNAP_WALK_MORE;       // of the segment handed back (MORE: none was)
  std::uint32_t max_extra_steps = 0;  // max over segments of steps - size (0 if steps <= size)
  bool out_of_steps = false;
};

// `segments`: the sizes the stream is cut into (the last one may run past the end: cut there).
inline StreamWalk walk_stream(const pgnap_walk_cfg& cfg, Bytes stream, const std::vector<std::size_t>& segments,
                              std::size_t max_segments, std::uint32_t max_steps_over_size = 1u << 20) {
  StreamWalk out;
  for (std::size_t i = 0; i < segments.size() && out.forwarded < max_segments && out.resume < stream.size(); ++i) {
    const std::size_t n = std::min(segments[i], stream.size() - out.resume);
    if (n == 0) continue;
    // Each segment in an allocation of its own, so that ASan sees a read past it.
    const std::vector<unsigned char> segment(stream.begin() + static_cast<std::ptrdiff_t>(out.resume),
                                             stream.begin() + static_cast<std::ptrdiff_t>(out.resume + n));
    const auto size = static_cast<std::uint32_t>(n);
    const SegmentWalk r = walk_segment(out.w, cfg, segment.data(), size, size + max_steps_over_size);
    if (r.steps > size) out.max_extra_steps = std::max(out.max_extra_steps, r.steps - size);
    if (r.out_of_steps) {
      out.out_of_steps = true;
      return out;
    }
    if (r.result != PGNAP_WALK_MORE) {
      out.result = r.result;
      return out;
    }
    out.resume += n;
    ++out.forwarded;
  }
  return out;
}

// ---- The hand-back: Relay::resume_direction() (daemon/relay_kernel.cpp), line for line ----

struct Resume {
  std::string prefix;      // re-fed to the scanner, not forwarded
  std::uint64_t skip = 0;  // forwarded unscanned
};

inline Resume resume_rule(const pgnap_walk& w) {
  Resume out;
  if (w.header_have == 0) return out;  // at a boundary
  std::string& prefix = out.prefix;
  if (w.header_have < 5) {
    // Inside a header: its first bytes went by the kernel; the scanner reads them again.
    for (int i = w.header_have - 1; i >= 0; --i) prefix.push_back(static_cast<char>((w.header >> (8 * i)) & 0xff));
  } else if (w.committed) {
    // Counted by the walker: the rest is forwarded as it comes.
    out.skip = w.remaining;
    return out;
  } else {
    // A ReadyForQuery before its status, or a CommandComplete inside a tag that might be
    // LISTEN or DISCARD ALL: the scanner reads the header and the tag's bytes so far again.
    prefix.push_back(static_cast<char>(w.type));
    for (int i = 3; i >= 0; --i) prefix.push_back(static_cast<char>((w.length >> (8 * i)) & 0xff));
    static constexpr std::string_view kTags[] = {"", "LISTEN", "DISCARD ALL"};
    if (w.tag == 1 || w.tag == 2) prefix.append(kTags[w.tag].substr(0, w.tag_match));
  }
  return out;
}

// ---- Messages and what they count ----

struct Message {
  std::size_t start = 0;  // offset of the type byte in the stream
  char type = 0;
  std::uint32_t length = 0;
  std::vector<std::uint8_t> head;
  bool operator==(const Message&) const = default;
};

inline std::bitset<256> all_types() { return std::bitset<256>().set(); }

// What the relay keeps of a direction (Relay::on_client_message / on_server_message, and the
// walker's fields): the client's Query/FunctionCall/Sync and whether extended-protocol
// messages wait for a Sync; the server's ReadyForQuery and the last transaction status.
struct Counts {
  std::uint32_t sync_points = 0;
  bool unsynced = false;
  std::uint32_t ready = 0;
  std::uint8_t status = 0;
  bool operator==(const Counts&) const = default;
};

inline std::string describe(const Counts& c) {
  return "sync_points=" + std::to_string(c.sync_points) + " unsynced=" + std::to_string(c.unsynced) +
         " ready=" + std::to_string(c.ready) + " status=" + std::to_string(c.status);
}

// The fields of the walker that matter for `side`.
inline Counts counts_of(const pgnap_walk& w, std::uint32_t side) {
  Counts c;
  if (side == PGNAP_SIDE_CLIENT) {
    c.sync_points = w.sync_points;
    c.unsynced = w.unsynced != 0;
  } else {
    c.ready = w.ready;
    c.status = w.status;
  }
  return c;
}

// A message the scanner reported, counted as the relay counts it. A server's ReadyForQuery
// counts when its status byte is there (one without is malformed: the walker stops at it).
inline void count(Counts& c, std::uint32_t side, char type, Bytes head) {
  if (side == PGNAP_SIDE_CLIENT) {
    switch (type) {
      case 'Q':
      case 'F': ++c.sync_points; break;
      case 'S':
        ++c.sync_points;
        c.unsynced = false;
        break;
      case 'P':
      case 'B':
      case 'E':
      case 'D':
      case 'C':
      case 'H': c.unsynced = true; break;
      default: break;
    }
  } else if (type == 'Z' && !head.empty()) {
    ++c.ready;
    c.status = head[0];
  }
}

struct Scan {
  std::vector<Message> messages;  // in stream order; start counted from `first_start`
  protocol::ScanStatus status = protocol::ScanStatus::kOk;
  protocol::ScanError error = protocol::ScanError::kNone;
  bool at_boundary = true;
};

// Feeds `prefix` and then `rest` (in pieces of `chunks` sizes, cycled; whole if empty) to a
// fresh scanner that watches every type; the first message starts at `first_start`, each next
// one where the previous ended.
inline Scan scan(std::uint32_t max_length, std::string_view prefix, Bytes rest, const std::vector<std::size_t>& chunks,
                 std::size_t first_start) {
  protocol::MessageScanner scanner(max_length, all_types());
  Scan out;
  std::size_t next_start = first_start;
  auto on_message = [&](const protocol::ScannedMessage& m) {
    out.messages.push_back({next_start, m.type, m.length, std::vector<std::uint8_t>(m.head.begin(), m.head.end())});
    next_start += 1 + std::size_t{m.length};
  };
  auto feed = [&](Bytes bytes) {
    const protocol::ScanStatus s = scanner.scan(bytes, on_message);
    if (s != protocol::ScanStatus::kOk) out.status = s;
  };
  if (!prefix.empty()) feed(Bytes(reinterpret_cast<const std::uint8_t*>(prefix.data()), prefix.size()));
  std::size_t pos = 0;
  std::size_t i = 0;
  while (pos < rest.size()) {
    std::size_t n = chunks.empty() ? rest.size() : std::max<std::size_t>(1, chunks[i++ % chunks.size()]);
    n = std::min(n, rest.size() - pos);
    const std::vector<std::uint8_t> chunk(rest.begin() + static_cast<std::ptrdiff_t>(pos),
                                          rest.begin() + static_cast<std::ptrdiff_t>(pos + n));
    feed(Bytes(chunk.data(), chunk.size()));
    pos += n;
  }
  out.error = scanner.error_kind();
  out.at_boundary = scanner.at_boundary();
  return out;
}

// ---- Where the walker must stop ----

struct Trigger {
  std::size_t index = 0;  // the byte whose segment the walker hands back
  int result = PGNAP_WALK_STOP;
};

// The first place in `stream` where the walker must stop, by the rules of pg_walk.h's header
// comment, independently of its code: a length word below 4 or above the limit (BAD_LENGTH, at
// the header's last byte); a type in the stop mask (at the header's last byte); on the server
// side, a ReadyForQuery with no status byte (at the first byte after its header, when there is
// one) and a CommandComplete whose tag is "LISTEN" or "DISCARD ALL" (at the tag's NUL).
inline std::optional<Trigger> stop_trigger(const pgnap_walk_cfg& cfg, Bytes stream) {
  std::size_t pos = 0;
  const bool server = cfg.side == PGNAP_SIDE_SERVER;
  while (stream.size() - pos >= 5) {
    const std::uint8_t type = stream[pos];
    const std::uint32_t length = protocol::read_u32(stream.data() + pos + 1);
    const std::size_t header_end = pos + 5;
    if (length < 4 || length > cfg.max_length) return Trigger{header_end - 1, PGNAP_WALK_BAD_LENGTH};
    if (stops(cfg, type)) return Trigger{header_end - 1, PGNAP_WALK_STOP};
    const std::size_t body = length - 4;
    if (server && type == 'Z' && body == 0) {
      if (header_end < stream.size()) return Trigger{header_end, PGNAP_WALK_STOP};
      return std::nullopt;
    }
    if (server && type == 'C') {
      for (const std::string_view tag : {std::string_view("LISTEN\0", 7), std::string_view("DISCARD ALL\0", 12)}) {
        if (body < tag.size()) continue;
        const std::size_t have = std::min(tag.size(), stream.size() - header_end);
        if (std::string_view(reinterpret_cast<const char*>(stream.data() + header_end), have) != tag.substr(0, have)) {
          continue;
        }
        if (have == tag.size()) return Trigger{header_end + tag.size() - 1, PGNAP_WALK_STOP};
        return std::nullopt;  // the stream ends inside the tag
      }
    }
    if (stream.size() - header_end < body) return std::nullopt;
    pos = header_end + body;
  }
  return std::nullopt;
}

// ---- The checks; each returns "" or what is wrong ----

inline std::string hex(Bytes bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const std::uint8_t b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// `walk` stopped where stop_trigger says, in the segment that holds the trigger, or not at all.
inline std::string check_stops(const pgnap_walk_cfg& cfg, Bytes stream, const std::vector<std::size_t>& segments,
                               const StreamWalk& walk) {
  const auto trigger = stop_trigger(cfg, stream);
  if (walk.out_of_steps) return "out of steps";
  if (walk.result == PGNAP_WALK_MORE) {
    if (trigger && trigger->index < walk.resume) {
      return "no stop, but one was due at byte " + std::to_string(trigger->index);
    }
    return {};
  }
  // The segment handed back: [walk.resume, walk.resume + its size).
  std::size_t size = 0;
  for (std::size_t i = 0, pos = 0; i < segments.size(); ++i) {
    const std::size_t n = std::min(segments[i], stream.size() - pos);
    if (pos == walk.resume && n > 0) {
      size = n;
      break;
    }
    pos += n;
  }
  if (!trigger) return "stopped (" + std::to_string(walk.result) + ") with no reason";
  if (trigger->index < walk.resume || trigger->index >= walk.resume + size) {
    return "stopped in the segment at " + std::to_string(walk.resume) + " but the reason is at byte " +
           std::to_string(trigger->index);
  }
  if (trigger->result != walk.result) {
    return "stopped with " + std::to_string(walk.result) + " instead of " + std::to_string(trigger->result);
  }
  return {};
}

// The walker's position and counts after `walk.resume` bytes, against MessageScanner's
// messages over the same bytes (max length cfg.max_length): the bytes it forwarded are valid,
// it is inside the message the scanner is in, at the same place, and it counted what those
// messages count (a client message from its header, a ReadyForQuery from its status byte).
inline std::string check_walked(const pgnap_walk_cfg& cfg, Bytes stream, const StreamWalk& walk) {
  const pgnap_walk& w = walk.w;
  const std::size_t r = walk.resume;
  const Scan s = scan(cfg.max_length, {}, stream.first(r), {}, 0);
  if (s.status != protocol::ScanStatus::kOk) return "the scanner refuses bytes the walker forwarded";

  // Every message whose header was walked: the reported ones, and one whose head is not all there.
  std::vector<Message> headers = s.messages;
  const std::size_t end = headers.empty() ? 0 : headers.back().start + 1 + headers.back().length;
  if (end <= r && r - end >= 5) {
    Message m{end, static_cast<char>(stream[end]), protocol::read_u32(stream.data() + end + 1), {}};
    const std::size_t walked = std::min<std::size_t>(m.length - 4, r - end - 5);
    m.head.assign(stream.begin() + static_cast<std::ptrdiff_t>(end + 5),
                  stream.begin() + static_cast<std::ptrdiff_t>(end + 5 + walked));
    headers.push_back(m);
  }
  Counts want;
  for (const Message& m : headers) count(want, cfg.side, m.type, m.head);
  if (counts_of(w, cfg.side) != want) {
    return "walker counts " + describe(counts_of(w, cfg.side)) + ", the scanner's messages " + describe(want);
  }

  const bool server = cfg.side == PGNAP_SIDE_SERVER;
  if (!headers.empty() && headers.back().start + 1 + headers.back().length > r) {
    // Inside a message whose header was walked.
    const Message& m = headers.back();
    const std::size_t walked = r - m.start - 5;
    if (w.header_have != 5 || w.type != static_cast<std::uint8_t>(m.type) || w.length != m.length ||
        w.remaining != m.length - 4 - walked) {
      return "walker not inside the message at " + std::to_string(m.start);
    }
    bool committed = true;
    std::uint8_t tag = 0;
    std::size_t tag_match = 0;
    if (server && m.type == 'Z') {
      committed = walked >= 1;
    } else if (server && m.type == 'C') {
      const std::string_view body(reinterpret_cast<const char*>(stream.data() + m.start + 5), walked);
      tag = walked == 0 ? 3 : body[0] == 'L' ? 1 : body[0] == 'D' ? 2 : 0;
      const std::string_view candidate = tag == 1 ? std::string_view("LISTEN\0", 7)
                                                  : std::string_view("DISCARD ALL\0", 12);
      committed = tag == 0 || !candidate.starts_with(body);
      tag_match = walked;
    }
    if ((w.committed != 0) != committed) return "walker's committed is " + std::to_string(w.committed);
    if (!committed && server && m.type == 'C' && (w.tag != tag || w.tag_match != tag_match)) {
      return "walker's tag " + std::to_string(w.tag) + "/" + std::to_string(w.tag_match);
    }
    return {};
  }
  const std::size_t in_header = r - end;  // < 5 here
  if (in_header == 0) {
    if (w.header_have == 0) return {};
    // A ReadyForQuery or CommandComplete with an empty body, the bytes ending with its header:
    // the walker decides on it at its next step.
    const bool pending = !headers.empty() && server && w.header_have == 5 && !w.committed && w.remaining == 0 &&
                         (headers.back().type == 'Z' || headers.back().type == 'C') && headers.back().length == 4 &&
                         w.type == static_cast<std::uint8_t>(headers.back().type) && w.length == 4;
    return pending ? std::string() : "walker not at a boundary (header_have " + std::to_string(w.header_have) + ")";
  }
  if (w.header_have != in_header)
    return "walker's header_have " + std::to_string(w.header_have) + " != " + std::to_string(in_header);
  for (std::size_t i = 0; i < in_header; ++i) {
    if (((w.header >> (8 * (in_header - 1 - i))) & 0xff) != stream[end + i]) return "walker's header bytes differ";
  }
  return {};
}

// The hand-back at `walk.resume`: a fresh scanner (max length `scanner_max`, every type
// watched) gets resume_rule()'s prefix, then the rest of the stream after the skipped bytes in
// `chunks`. Against a scanner over the whole stream from its start:
// - the prefix is the stream's own bytes just before the resume point;
// - the messages reported are exactly the whole-stream scanner's from the first one not
//   counted by the walker (type, length, head and where they start), its verdict the same;
// - when the stream is whole and valid: the walker counted exactly the messages before that
//   one, and the walker's counts carried on by the scanner's messages are the whole stream's.
inline std::string check_resume(const pgnap_walk_cfg& cfg, Bytes stream, const StreamWalk& walk,
                                std::uint32_t scanner_max, const std::vector<std::size_t>& chunks) {
  const pgnap_walk& w = walk.w;
  const std::size_t r = walk.resume;
  const Resume resume = resume_rule(w);
  const Scan whole = scan(scanner_max, {}, stream, {}, 0);

  if (resume.prefix.size() > r) return "prefix longer than the bytes forwarded";
  const std::size_t first = resume.prefix.empty() ? r + resume.skip : r - resume.prefix.size();
  if (!resume.prefix.empty() &&
      std::string_view(reinterpret_cast<const char*>(stream.data() + first), resume.prefix.size()) != resume.prefix) {
    return "prefix " + hex(Bytes(reinterpret_cast<const std::uint8_t*>(resume.prefix.data()), resume.prefix.size())) +
           " is not the stream's " + hex(stream.subspan(first, resume.prefix.size()));
  }
  const Bytes rest = r + resume.skip >= stream.size() ? Bytes() : stream.subspan(r + resume.skip);
  const Scan resumed = scan(scanner_max, resume.prefix, rest, chunks, first);

  // The whole-stream scanner's messages from `first` on; `first` must be where one starts (or
  // where the stream's last, incomplete, message would).
  std::vector<Message> expected;
  std::size_t end = 0;  // where the last message reported ends: the next one starts
  bool is_start = false;
  for (const Message& m : whole.messages) {
    if (m.start == first) is_start = true;
    if (m.start >= first) expected.push_back(m);
    end = m.start + 1 + m.length;
  }
  // Past the end of a stream cut inside the message skipped: nothing to scan.
  if (!is_start && first != end && !(first > stream.size() && resume.skip > 0)) {
    return "the scanner resumes at byte " + std::to_string(first) + ", not at a message's start";
  }
  if (resumed.messages != expected) {
    std::string why = "resumed scanner reports " + std::to_string(resumed.messages.size()) + " messages, want " +
                      std::to_string(expected.size());
    for (std::size_t i = 0; i < std::min(resumed.messages.size(), expected.size()); ++i) {
      if (resumed.messages[i] != expected[i]) {
        why += "; #" + std::to_string(i) + " differs: got '" + std::string(1, resumed.messages[i].type) + "' at " +
               std::to_string(resumed.messages[i].start) + " length " + std::to_string(resumed.messages[i].length) +
               ", want '" + std::string(1, expected[i].type) + "' at " + std::to_string(expected[i].start) +
               " length " + std::to_string(expected[i].length);
        break;
      }
    }
    return why;
  }
  if (resumed.status != whole.status || resumed.error != whole.error) return "resumed scanner's verdict differs";
  // (When the skip runs past the stream's end, the rest of the skip is the relay's to count.)
  if (first <= stream.size() && resumed.at_boundary != whole.at_boundary) return "resumed scanner's boundary differs";

  if (whole.status != protocol::ScanStatus::kOk || !whole.at_boundary) return {};
  Counts before;  // the messages the walker alone saw
  Counts total;
  for (const Message& m : whole.messages) {
    if (m.start < first) count(before, cfg.side, m.type, m.head);
    count(total, cfg.side, m.type, m.head);
  }
  const Counts walker = counts_of(w, cfg.side);
  if (walker != before)
    return "walker counts " + describe(walker) + ", the messages before " + std::to_string(first) + " " +
           describe(before);
  Counts carried = walker;
  for (const Message& m : resumed.messages) count(carried, cfg.side, m.type, m.head);
  if (carried != total) return "walker + scanner count " + describe(carried) + ", the stream " + describe(total);
  return {};
}

}  // namespace pgnap::bpftest
