// next_frame(): a message arriving byte by byte, messages back to back, lengths below 4 and
// above the maximum worded exactly as MessageScanner words them.
#include "protocol/frame.h"

#include <gtest/gtest.h>

#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

namespace pgnap::protocol {
namespace {

using namespace std::string_literals;

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

// The bytes in a buffer of their own, exactly as long as they are: a read past the end is a
// heap overflow under ASan rather than a look at std::string's terminating NUL.
std::vector<std::uint8_t> owned(const std::string& s) { return {s.begin(), s.end()}; }

std::string text(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// What MessageScanner says about the same bytes, for comparing the wording.
std::pair<ScanError, std::string> scanner_verdict(const std::string& stream, std::uint32_t max_length) {
  MessageScanner scanner(max_length, std::bitset<256>{});
  (void)scanner.scan(as_bytes(stream), [](const ScannedMessage&) {});
  return {scanner.error_kind(), scanner.error()};
}

TEST(NextFrame, NeedsMoreDataUntilTheLastByteOfTheMessageArrives) {
  const std::string query = msg('Q', "SELECT 1;\0"s);
  for (std::size_t n = 0; n < query.size(); ++n) {
    const auto prefix = owned(query.substr(0, n));
    const FrameResult r = next_frame(prefix, 1 << 20);
    ASSERT_EQ(r.status, FrameStatus::kNeedMoreData) << "after " << n << " bytes";
    EXPECT_EQ(r.error_kind, ScanError::kNone);
    EXPECT_TRUE(r.error.empty());
  }
  const auto whole = owned(query);
  const FrameResult r = next_frame(whole, 1 << 20);
  ASSERT_EQ(r.status, FrameStatus::kReady);
  EXPECT_EQ(r.frame.type, 'Q');
  EXPECT_EQ(r.frame.size, query.size());
  EXPECT_EQ(text(r.frame.body), "SELECT 1;\0"s);
  EXPECT_EQ(r.frame.body.data(), whole.data() + 5);  // a view into the input, not a copy
}

TEST(NextFrame, ReadsAMessageWithAnEmptyBody) {
  const auto sync = owned(msg('S', ""));
  const FrameResult r = next_frame(sync, 4);
  ASSERT_EQ(r.status, FrameStatus::kReady);
  EXPECT_EQ(r.frame.type, 'S');
  EXPECT_EQ(r.frame.size, 5u);
  EXPECT_TRUE(r.frame.body.empty());
}

TEST(NextFrame, ReadsTwoMessagesInOneBufferOneAfterTheOther) {
  const std::string first = msg('p', "secret\0"s);
  const std::string second = msg('Q', "SELECT 1;\0"s);
  const auto buffer = owned(first + second);
  const FrameResult a = next_frame(buffer, 1 << 20);
  ASSERT_EQ(a.status, FrameStatus::kReady);
  EXPECT_EQ(a.frame.type, 'p');
  EXPECT_EQ(a.frame.size, first.size());
  EXPECT_EQ(text(a.frame.body), "secret\0"s);

  const FrameResult b = next_frame(Bytes(buffer).subspan(a.frame.size), 1 << 20);
  ASSERT_EQ(b.status, FrameStatus::kReady);
  EXPECT_EQ(b.frame.type, 'Q');
  EXPECT_EQ(b.frame.size, second.size());
  EXPECT_EQ(text(b.frame.body), "SELECT 1;\0"s);

  EXPECT_EQ(next_frame(Bytes(buffer).subspan(a.frame.size + b.frame.size), 1 << 20).status, FrameStatus::kNeedMoreData);
}

TEST(NextFrame, LeavesTheBytesOfTheNextMessageOutOfTheFrame) {
  const std::string ready = msg('Z', "I");
  const auto buffer = owned(ready + "K\0\0"s);
  const FrameResult r = next_frame(buffer, 1 << 20);
  ASSERT_EQ(r.status, FrameStatus::kReady);
  EXPECT_EQ(r.frame.size, ready.size());
  EXPECT_EQ(text(r.frame.body), "I");
}

TEST(NextFrame, RefusesALengthBelowFourWithTheScannersWordsAndKind) {
  for (std::uint32_t length = 0; length < 4; ++length) {
    const auto header = owned(raw_header('Z', length));
    const FrameResult r = next_frame(header, 1 << 20);
    ASSERT_EQ(r.status, FrameStatus::kInvalid);
    EXPECT_EQ(r.error_kind, ScanError::kLengthBelowMinimum);
    EXPECT_EQ(r.error,
              "message of type 'Z' claims invalid length " + std::to_string(length) + ", below the minimum of 4 bytes");
  }
  const auto binary = owned(raw_header('\0', 0));
  EXPECT_EQ(next_frame(binary, 1 << 20).error,
            "message of type 0x00 claims invalid length 0, below the minimum of 4 bytes");
}

TEST(NextFrame, RefusesALengthAboveTheMaximumAsSoonAsTheHeaderIsIn) {
  const auto header = owned(raw_header('D', 1001));  // no body at all: refused anyway
  const FrameResult r = next_frame(header, 1000);
  ASSERT_EQ(r.status, FrameStatus::kInvalid);
  EXPECT_EQ(r.error_kind, ScanError::kLengthAboveMaximum);
  EXPECT_EQ(r.error, "message of type 'D' claims length 1001, above the maximum of 1000 bytes");

  const auto huge = owned(raw_header('E', 0xffffffff));
  EXPECT_EQ(next_frame(huge, 1u << 30).error,
            "message of type 'E' claims length 4294967295, above the maximum of 1073741824 bytes");
}

TEST(NextFrame, AcceptsALengthEqualToTheMaximum) {
  const std::string message = msg('d', std::string(996, 'x'));  // length word 1000
  const auto header = owned(message.substr(0, 5));
  EXPECT_EQ(next_frame(header, 1000).status, FrameStatus::kNeedMoreData);
  const auto whole = owned(message);
  const FrameResult r = next_frame(whole, 1000);
  ASSERT_EQ(r.status, FrameStatus::kReady) << r.error;
  EXPECT_EQ(r.frame.size, 1001u);
  EXPECT_EQ(r.frame.body.size(), 996u);
}

TEST(NextFrame, WaitsForTheLargestLengthWhenTheMaximumAllowsIt) {
  // 1 + 0xffffffff must not wrap into a small size.
  const auto header = owned(raw_header('D', 0xffffffff) + "abc");
  const FrameResult r = next_frame(header, 0xffffffff);
  EXPECT_EQ(r.status, FrameStatus::kNeedMoreData);
}

TEST(NextFrame, WordsEveryRefusalExactlyAsTheScannerDoes) {
  for (const int type : {0x00, 0x1f, 0x20, 0x21, int{'E'}, 0x7e, 0x7f, 0x80, 0xff}) {
    for (const std::uint32_t length : {0u, 3u, 1001u, 0x7fffffffu, 0xffffffffu}) {
      const std::string header = raw_header(static_cast<char>(type), length);
      const auto bytes = owned(header);
      const FrameResult r = next_frame(bytes, 1000);
      const auto [kind, error] = scanner_verdict(header, 1000);
      ASSERT_EQ(r.status, FrameStatus::kInvalid);
      EXPECT_EQ(r.error_kind, kind) << type << " " << length;
      EXPECT_EQ(r.error, error) << type << " " << length;
    }
  }
}

}  // namespace
}  // namespace pgnap::protocol
