// MessageScanner: a realistic backend stream cut at every position, messages whose head is
// reported before their body ends, bad lengths, the head decoders, and random streams
// checked against a whole-buffer reference model.
#include "protocol/message_scanner.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace pgnap::protocol {
namespace {

using namespace std::string_literals;

// A typed message: type byte, length word (counting itself), body.
std::string msg(char type, const std::string& body) {
  std::string out(1, type);
  append_u32(out, static_cast<std::uint32_t>(4 + body.size()));
  return out + body;
}

std::string raw_header(char type, std::uint32_t length) {
  std::string out(1, type);
  append_u32(out, length);
  return out;
}

std::string u32(std::uint32_t v) {
  std::string out;
  append_u32(out, v);
  return out;
}

std::bitset<256> watch(std::string_view types) {
  std::bitset<256> set;
  for (const char t : types) set.set(static_cast<unsigned char>(t));
  return set;
}

// What the callback saw, copied out (the head points into the scanner).
struct Event {
  char type;
  std::uint32_t length;
  std::string head;
  bool operator==(const Event&) const = default;
};

Event copy_of(const ScannedMessage& m) {
  return {m.type, m.length, std::string(reinterpret_cast<const char*>(m.head.data()), m.head.size())};
}

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{'" << e.type << "' " << e.length << " head " << e.head.size() << "B}";
}

struct ScanLog {
  std::vector<Event> events;
  ScanStatus status = ScanStatus::kOk;
  std::uint64_t messages = 0;
  bool at_boundary = false;
  std::string error;
  ScanError error_kind = ScanError::kNone;
};

// Feeds `stream` to a fresh scanner in pieces ending at `cuts` (ascending offsets), each
// piece in its own buffer so an overread would be a heap overflow under ASan.
ScanLog scan_in_pieces(const std::string& stream, const std::vector<std::size_t>& cuts, std::uint32_t max_length,
                       std::bitset<256> watched) {
  MessageScanner scanner(max_length, watched);
  ScanLog run;
  std::size_t from = 0;
  auto feed = [&](std::size_t to) {
    const std::vector<std::uint8_t> piece(stream.begin() + static_cast<std::ptrdiff_t>(from),
                                          stream.begin() + static_cast<std::ptrdiff_t>(to));
    run.status = scanner.scan(Bytes(piece.data(), piece.size()),
                              [&](const ScannedMessage& m) { run.events.push_back(copy_of(m)); });
    from = to;
  };
  for (const std::size_t cut : cuts) feed(cut);
  feed(stream.size());
  run.messages = scanner.messages();
  run.at_boundary = scanner.at_boundary();
  run.error = scanner.error();
  run.error_kind = scanner.error_kind();
  return run;
}

ScanLog scan_whole(const std::string& stream, std::uint32_t max_length, std::bitset<256> watched) {
  return scan_in_pieces(stream, {}, max_length, watched);
}

const std::bitset<256> kRelayWatch = watch("RKZE");

// What PostgreSQL sends from authentication to an error inside a transaction.
struct BackendStream {
  std::string bytes;
  std::vector<std::size_t> boundaries;  // offsets where a message ends
  std::size_t count = 0;

  void add(const std::string& m) {
    bytes += m;
    boundaries.push_back(bytes.size());
    ++count;
  }
};

BackendStream realistic_stream() {
  BackendStream s;
  s.add(msg('R', u32(0)));  // AuthenticationOk
  s.add(msg('S', "application_name\0psql\0"s));
  s.add(msg('S', "client_encoding\0UTF8\0"s));
  s.add(msg('S',
            "server_version\0"
            "15.6\0"s));
  s.add(msg('K', u32(4242) + u32(0xdeadbeef)));
  s.add(msg('Z', "I"));
  // RowDescription: one int4 column "n".
  s.add(msg('T', "\0\x01n\0"s + u32(0) + "\0\0"s + u32(23) + "\0\x04"s + u32(0xffffffff) + "\0\0"s));
  for (int i = 0; i < 5; ++i) s.add(msg('D', "\0\x01"s + u32(1) + std::to_string(i)));
  s.add(msg('C', "SELECT 5\0"s));
  s.add(msg('E',
            "SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0P15\0Fparse_relation.c\0L1392\0"
            "RparserOpenTable\0\0"s));
  s.add(msg('Z', "T"));
  return s;
}

void expect_realistic_events(const ScanLog& run) {
  ASSERT_EQ(run.events.size(), 5u);
  const auto as_message = [](const Event& e) { return ScannedMessage{e.type, e.length, as_bytes(e.head)}; };
  EXPECT_EQ(parse_authentication_code(as_message(run.events[0])), 0);
  const auto key = parse_backend_key_data(as_message(run.events[1]));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->process_id, 4242u);
  EXPECT_EQ(key->secret_key, 0xdeadbeefu);
  EXPECT_EQ(parse_ready_for_query(as_message(run.events[2])), 'I');
  EXPECT_EQ(parse_error_sqlstate(as_message(run.events[3])), "42P01");
  EXPECT_EQ(run.events[3].head.size(), kScanCaptureBytes);  // a longer body: only its head
  EXPECT_EQ(parse_ready_for_query(as_message(run.events[4])), 'T');
}

TEST(MessageScanner, RealisticBackendStream) {
  const auto s = realistic_stream();
  const ScanLog run = scan_whole(s.bytes, 1 << 20, kRelayWatch);
  EXPECT_EQ(run.status, ScanStatus::kOk);
  EXPECT_EQ(run.messages, s.count);
  EXPECT_TRUE(run.at_boundary);
  expect_realistic_events(run);
}

TEST(MessageScanner, EverySingleSplitGivesTheSameEvents) {
  const auto s = realistic_stream();
  const ScanLog whole = scan_whole(s.bytes, 1 << 20, kRelayWatch);
  for (std::size_t cut = 1; cut < s.bytes.size(); ++cut) {
    const ScanLog run = scan_in_pieces(s.bytes, {cut}, 1 << 20, kRelayWatch);
    ASSERT_EQ(run.events, whole.events) << "split at " << cut;
    ASSERT_EQ(run.messages, s.count);
    ASSERT_TRUE(run.at_boundary);
  }
}

TEST(MessageScanner, ByteAtATime) {
  const auto s = realistic_stream();
  const ScanLog whole = scan_whole(s.bytes, 1 << 20, kRelayWatch);
  MessageScanner scanner(1 << 20, kRelayWatch);
  std::vector<Event> events;
  std::size_t next_boundary = 0;
  for (std::size_t i = 0; i < s.bytes.size(); ++i) {
    const std::uint8_t byte = static_cast<std::uint8_t>(s.bytes[i]);
    ASSERT_EQ(scanner.scan(Bytes(&byte, 1), [&](const ScannedMessage& m) { events.push_back(copy_of(m)); }),
              ScanStatus::kOk);
    // at_boundary() and messages() follow the stream exactly, byte by byte.
    const bool boundary = i + 1 == s.boundaries[next_boundary];
    if (boundary) ++next_boundary;
    ASSERT_EQ(scanner.at_boundary(), boundary) << "after byte " << i;
    ASSERT_EQ(scanner.messages(), next_boundary) << "after byte " << i;
  }
  EXPECT_EQ(events, whole.events);
}

TEST(MessageScanner, RandomChunks) {
  const auto s = realistic_stream();
  const ScanLog whole = scan_whole(s.bytes, 1 << 20, kRelayWatch);
  std::mt19937 rng(1);
  std::uniform_int_distribution<std::size_t> step(1, 40);
  for (int i = 0; i < 500; ++i) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = step(rng); at < s.bytes.size(); at += step(rng)) cuts.push_back(at);
    const ScanLog run = scan_in_pieces(s.bytes, cuts, 1 << 20, kRelayWatch);
    ASSERT_EQ(run.events, whole.events);
    ASSERT_EQ(run.messages, s.count);
  }
}

TEST(MessageScanner, EmptyInputChangesNothing) {
  MessageScanner scanner(1000, kRelayWatch);
  int calls = 0;
  EXPECT_EQ(scanner.scan(Bytes(), [&](const ScannedMessage&) { ++calls; }), ScanStatus::kOk);
  EXPECT_TRUE(scanner.at_boundary());
  EXPECT_EQ(scanner.messages(), 0u);
  EXPECT_EQ(calls, 0);
}

TEST(MessageScanner, ZeroLengthBodies) {
  // ParseComplete '1', BindComplete '2', EmptyQueryResponse 'I': length 4, no body.
  const std::string stream = msg('1', "") + msg('2', "") + msg('I', "") + msg('Z', "I");
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    const ScanLog run = scan_in_pieces(stream, {cut}, 1000, watch("1IZ"));
    const std::vector<Event> want = {{'1', 4, ""}, {'I', 4, ""}, {'Z', 5, "I"}};
    ASSERT_EQ(run.events, want) << cut;
    ASSERT_EQ(run.messages, 4u);
    ASSERT_TRUE(run.at_boundary);
  }
}

TEST(MessageScanner, HeaderSplitAcrossCalls) {
  const std::string stream = msg('K', u32(7) + u32(8));
  const ScanLog run = scan_in_pieces(stream, {1, 3, 5, 9}, 1000, kRelayWatch);
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_EQ(run.events[0], (Event{'K', 12, u32(7) + u32(8)}));
  EXPECT_EQ(run.messages, 1u);
}

TEST(MessageScanner, HeadIsReportedBeforeTheBodyEnds) {
  const std::string body(1000, 'x');
  const std::string stream = msg('E', body) + msg('Z', "I");
  MessageScanner scanner(1 << 20, kRelayWatch);
  std::vector<Event> events;
  auto record = [&](const ScannedMessage& m) { events.push_back(copy_of(m)); };
  // Header and 63 bytes: not yet.
  ASSERT_EQ(scanner.scan(as_bytes(std::string_view(stream).substr(0, 5 + 63)), record), ScanStatus::kOk);
  EXPECT_TRUE(events.empty());
  // The 64th byte completes the head: reported, though 936 body bytes are still to come.
  ASSERT_EQ(scanner.scan(as_bytes(std::string_view(stream).substr(68, 1)), record), ScanStatus::kOk);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], (Event{'E', 1004, std::string(64, 'x')}));
  EXPECT_EQ(scanner.messages(), 0u);
  EXPECT_FALSE(scanner.at_boundary());
  // The rest of the body, except its last byte, is skipped without events.
  ASSERT_EQ(scanner.scan(as_bytes(std::string_view(stream).substr(69, 935)), record), ScanStatus::kOk);
  EXPECT_EQ(scanner.messages(), 0u);
  EXPECT_FALSE(scanner.at_boundary());
  ASSERT_EQ(scanner.scan(as_bytes(std::string_view(stream).substr(1004)), record), ScanStatus::kOk);
  EXPECT_EQ(scanner.messages(), 2u);
  EXPECT_TRUE(scanner.at_boundary());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1], (Event{'Z', 5, "I"}));
}

TEST(MessageScanner, CaptureSizes) {
  // Bodies of 63, 64 and 65 bytes: the head is min(body, 64) bytes, and the count is right
  // whether the capture ends the body or not.
  for (const std::size_t n : {1u, 63u, 64u, 65u}) {
    std::string body;
    for (std::size_t i = 0; i < n; ++i) body.push_back(static_cast<char>('a' + i % 26));
    const std::string stream = msg('D', body) + msg('D', body);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      const ScanLog run = scan_in_pieces(stream, {cut}, 1000, watch("D"));
      ASSERT_EQ(run.events.size(), 2u);
      EXPECT_EQ(run.events[1].head, body.substr(0, std::min<std::size_t>(n, kScanCaptureBytes)));
      EXPECT_EQ(run.events[1].length, n + 4);
      ASSERT_EQ(run.messages, 2u) << n << " " << cut;
      ASSERT_TRUE(run.at_boundary);
    }
  }
}

TEST(MessageScanner, UnwatchedMessagesAreCountedNotReported) {
  const auto s = realistic_stream();
  const ScanLog run = scan_whole(s.bytes, 1 << 20, std::bitset<256>());
  EXPECT_TRUE(run.events.empty());
  EXPECT_EQ(run.messages, s.count);
}

TEST(MessageScanner, PartialStreamIsNotAtBoundary) {
  const auto s = realistic_stream();
  const ScanLog run = scan_whole(s.bytes.substr(0, s.bytes.size() - 1), 1 << 20, kRelayWatch);
  EXPECT_FALSE(run.at_boundary);
  EXPECT_EQ(run.messages, s.count - 1);
}

// ---- bad lengths ----

TEST(MessageScanner, OversizeLength) {
  const std::string stream = msg('Z', "I") + raw_header('D', 1001) + msg('Z', "I");
  const ScanLog run = scan_whole(stream, 1000, kRelayWatch);
  EXPECT_EQ(run.status, ScanStatus::kInvalid);
  EXPECT_EQ(run.error, "message of type 'D' claims length 1001, above the maximum of 1000 bytes");
  EXPECT_EQ(run.error_kind, ScanError::kLengthAboveMaximum);  // what the relay decides on
  EXPECT_EQ(run.events.size(), 1u);                           // the message before the bad one is still reported
  EXPECT_EQ(run.messages, 1u);
  EXPECT_FALSE(run.at_boundary);

  const ScanLog huge = scan_whole(raw_header('E', 0xffffffff), 1 << 30, kRelayWatch);
  EXPECT_EQ(huge.status, ScanStatus::kInvalid);
  EXPECT_EQ(huge.error, "message of type 'E' claims length 4294967295, above the maximum of 1073741824 bytes");
}

TEST(MessageScanner, MaximumLengthIsAccepted) {
  const std::string stream = msg('D', std::string(996, 'x')) + msg('Z', "I");
  const ScanLog run = scan_whole(stream, 1000, kRelayWatch);
  EXPECT_EQ(run.status, ScanStatus::kOk) << run.error;
  EXPECT_EQ(run.error_kind, ScanError::kNone);
  EXPECT_EQ(run.messages, 2u);
}

TEST(MessageScanner, UndersizeLengths) {
  for (std::uint32_t len = 0; len < 4; ++len) {
    const ScanLog run = scan_whole(raw_header('Z', len) + msg('Z', "I"), 1000, kRelayWatch);
    EXPECT_EQ(run.status, ScanStatus::kInvalid);
    EXPECT_EQ(run.error,
              "message of type 'Z' claims invalid length " + std::to_string(len) + ", below the minimum of 4 bytes");
    EXPECT_EQ(run.error_kind, ScanError::kLengthBelowMinimum);
    EXPECT_TRUE(run.events.empty());
  }
  const ScanLog binary = scan_whole("\0\0\0\0\0"s, 1000, kRelayWatch);
  EXPECT_EQ(binary.error, "message of type 0x00 claims invalid length 0, below the minimum of 4 bytes");
  const ScanLog high = scan_whole("\xff\0\0\0\x02"s, 1000, kRelayWatch);
  EXPECT_EQ(high.error, "message of type 0xff claims invalid length 2, below the minimum of 4 bytes");
}

TEST(MessageScanner, StaysInvalid) {
  MessageScanner scanner(1000, kRelayWatch);
  int calls = 0;
  auto count = [&](const ScannedMessage&) { ++calls; };
  const std::string bad = raw_header('D', 2);
  // A bad length split across calls is caught when its last byte arrives.
  EXPECT_EQ(scanner.scan(as_bytes(std::string_view(bad).substr(0, 3)), count), ScanStatus::kOk);
  EXPECT_EQ(scanner.scan(as_bytes(std::string_view(bad).substr(3)), count), ScanStatus::kInvalid);
  const std::string error = scanner.error();
  EXPECT_FALSE(error.empty());
  const std::string good = msg('Z', "I");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(scanner.scan(as_bytes(good), count), ScanStatus::kInvalid);
    EXPECT_EQ(scanner.scan(Bytes(), count), ScanStatus::kInvalid);
  }
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(scanner.error(), error);
  EXPECT_EQ(scanner.messages(), 0u);
}

// ---- head decoders ----

ScannedMessage scanned(char type, std::uint32_t length, const std::string& head) {
  return ScannedMessage{type, length, as_bytes(head)};
}

TEST(ParseHeads, BackendKeyData) {
  const std::string head = u32(1) + u32(2);
  const auto key = parse_backend_key_data(scanned('K', 12, head));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->process_id, 1u);
  EXPECT_EQ(key->secret_key, 2u);
  EXPECT_FALSE(parse_backend_key_data(scanned('K', 13, head + "x")));  // protocol 3.2's longer keys
  EXPECT_FALSE(parse_backend_key_data(scanned('K', 11, head.substr(0, 7))));
  EXPECT_FALSE(parse_backend_key_data(scanned('K', 12, head.substr(0, 7))));  // short capture
  EXPECT_FALSE(parse_backend_key_data(scanned('Z', 12, head)));
}

TEST(ParseHeads, ReadyForQuery) {
  EXPECT_EQ(parse_ready_for_query(scanned('Z', 5, "I")), 'I');
  EXPECT_EQ(parse_ready_for_query(scanned('Z', 5, "T")), 'T');
  EXPECT_EQ(parse_ready_for_query(scanned('Z', 5, "E")), 'E');
  EXPECT_FALSE(parse_ready_for_query(scanned('Z', 5, "X")));
  EXPECT_FALSE(parse_ready_for_query(scanned('Z', 6, "II")));
  EXPECT_FALSE(parse_ready_for_query(scanned('Z', 4, "")));
  EXPECT_FALSE(parse_ready_for_query(scanned('K', 5, "I")));
}

TEST(ParseHeads, ErrorSqlstate) {
  EXPECT_EQ(parse_error_sqlstate(scanned('E', 30, "SFATAL\0VFATAL\0C57P01\0Mbye\0\0"s)), "57P01");
  EXPECT_EQ(parse_error_sqlstate(scanned('N', 30, "SNOTICE\0C00000\0\0"s)), "00000");
  // Truncated capture: the field ends exactly at the capture's last byte, or past it.
  EXPECT_EQ(parse_error_sqlstate(scanned('E', 300, "SERROR\0C42P01\0"s)), "42P01");
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 300, "SERROR\0C42P0"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 300, "SERROR\0C"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 300, "SERR"s)));
  // 'C' after a long field is beyond any capture.
  const std::string head = "M" + std::string(70, 'm') + "\0C42P01\0\0"s;
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 300, head.substr(0, kScanCaptureBytes))));
  EXPECT_EQ(parse_error_sqlstate(scanned('E', 300, head)), "42P01");
  // No 'C', or a 'C' after the terminating zero, or a malformed code.
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 30, "SERROR\0Mx\0\0"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 30, "SERROR\0\0C42P01\0"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 30, "SERROR\0\0\0C42P01\0\0"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 30, "C42P0\0\0"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 30, "C42p01\0\0"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 30, "C42P01x\0\0"s)));
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 4, "")));
  EXPECT_FALSE(parse_error_sqlstate(scanned('Z', 30, "C42P01\0\0"s)));
  // A value that merely contains "C" is not the field.
  EXPECT_FALSE(parse_error_sqlstate(scanned('E', 30, "MC42P01\0\0"s)));
}

TEST(ParseHeads, AuthenticationCode) {
  EXPECT_EQ(parse_authentication_code(scanned('R', 8, u32(0))), 0);
  EXPECT_EQ(parse_authentication_code(scanned('R', 12, u32(5) + "salt")), 5);
  EXPECT_EQ(parse_authentication_code(scanned('R', 23, u32(10) + "SCRAM-SHA-256\0\0"s)), 10);
  EXPECT_EQ(parse_authentication_code(scanned('R', 8, u32(0xffffffff))), -1);
  EXPECT_FALSE(parse_authentication_code(scanned('R', 7, "\0\0\0"s)));
  EXPECT_FALSE(parse_authentication_code(scanned('R', 8, "\0\0\0"s)));
  EXPECT_FALSE(parse_authentication_code(scanned('K', 8, u32(0))));
}

// ---- random streams against a reference model ----

// The scanner's specification, written as a walk over the whole buffer at once: an event
// for every watched message whose head is present, a count for every complete message,
// invalid at the first bad length.
ScanLog reference(const std::string& s, std::uint32_t max_length, std::bitset<256> watched) {
  ScanLog run;
  std::size_t pos = 0;
  while (s.size() - pos >= 5) {
    const auto type = static_cast<unsigned char>(s[pos]);
    const std::uint32_t length = read_u32(reinterpret_cast<const std::uint8_t*>(s.data()) + pos + 1);
    if (length < 4 || length > max_length) {
      run.status = ScanStatus::kInvalid;
      return run;
    }
    const std::size_t available = s.size() - pos - 5;
    const std::size_t head = std::min<std::size_t>(length - 4, kScanCaptureBytes);
    if (watched.test(type) && available >= head) {
      run.events.push_back({static_cast<char>(type), length, s.substr(pos + 5, head)});
    }
    if (available < length - 4) return run;
    ++run.messages;
    pos += 1 + length;
  }
  run.at_boundary = pos == s.size();
  return run;
}

std::string random_stream(std::mt19937& rng, std::uint32_t max_length) {
  const std::string types = "RKZESDTCN1\0"s;
  std::uniform_int_distribution<std::size_t> type(0, types.size() - 1);
  std::uniform_int_distribution<std::size_t> count(0, 8);
  std::uniform_int_distribution<std::size_t> body(0, 90);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> percent(0, 99);
  std::string out;
  const std::size_t n = count(rng);
  for (std::size_t i = 0; i < n; ++i) {
    std::string b(body(rng), '\0');
    for (auto& c : b) c = static_cast<char>(byte(rng));
    const int roll = percent(rng);
    if (roll < 3) {
      out += raw_header(types[type(rng)], static_cast<std::uint32_t>(byte(rng)) % 4);  // too short
    } else if (roll < 6) {
      out += raw_header(types[type(rng)], max_length + 1 + static_cast<std::uint32_t>(byte(rng)));
    } else if (roll < 9) {
      out += b;  // raw garbage
    } else {
      out += msg(types[type(rng)], b);
    }
  }
  if (!out.empty() && percent(rng) < 30) out.resize(out.size() - 1 - static_cast<std::size_t>(byte(rng)) % out.size());
  return out;
}

TEST(MessageScanner, RandomStreamsMatchTheReference) {
  std::mt19937 rng(424242);
  constexpr std::uint32_t kMax = 200;
  const auto watched = watch("RKZE\0"s);
  std::uniform_int_distribution<std::size_t> step(1, 50);
  int invalid = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string stream = random_stream(rng, kMax);
    const ScanLog want = reference(stream, kMax, watched);
    std::vector<std::size_t> cuts;
    for (std::size_t at = step(rng); at < stream.size(); at += step(rng)) cuts.push_back(at);
    const ScanLog got = scan_in_pieces(stream, cuts, kMax, watched);
    ASSERT_EQ(got.status, want.status) << "stream " << i;
    ASSERT_EQ(got.events, want.events) << "stream " << i;
    ASSERT_EQ(got.messages, want.messages) << "stream " << i;
    ASSERT_EQ(got.at_boundary, want.at_boundary) << "stream " << i;
    if (got.status == ScanStatus::kInvalid) {
      ASSERT_FALSE(got.error.empty());
      ++invalid;
    }
    for (const auto& e : got.events) {
      ASSERT_GE(e.length, 4u);
      ASSERT_LE(e.length, kMax);
      ASSERT_EQ(e.head.size(), std::min<std::size_t>(e.length - 4, kScanCaptureBytes));
    }
  }
  EXPECT_GT(invalid, 100);  // both outcomes are exercised
  EXPECT_LT(invalid, 3900);
}

TEST(MessageScanner, RandomBytesDoNotCrash) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> size(0, 300);
  std::bitset<256> all;
  all.set();
  for (int i = 0; i < 3000; ++i) {
    std::string stream(size(rng), '\0');
    for (auto& c : stream) c = static_cast<char>(byte(rng));
    const ScanLog whole = scan_whole(stream, 1 << 30, all);
    const ScanLog bytewise = [&] {
      std::vector<std::size_t> cuts;
      for (std::size_t at = 1; at < stream.size(); ++at) cuts.push_back(at);
      return scan_in_pieces(stream, cuts, 1 << 30, all);
    }();
    ASSERT_EQ(whole.status, bytewise.status);
    ASSERT_EQ(whole.events, bytewise.events);
    ASSERT_EQ(whole.messages, bytewise.messages);
  }
}

}  // namespace
}  // namespace pgnap::protocol
