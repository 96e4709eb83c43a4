// decode_startup(): byte-by-byte construction, split and joined packets, every length bound,
// each malformation, and random input. Modelled on Envoy's postgres_decoder_test.cc.
#include "protocol/startup.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "protocol/encode.h"

namespace pgnap::protocol {
namespace {

using namespace std::string_literals;

// A startup-phase packet: the length word (counting itself), the code, then `body` as is.
std::string packet(std::uint32_t code, const std::string& body) {
  std::string out;
  append_u32(out, static_cast<std::uint32_t>(8 + body.size()));
  append_u32(out, code);
  return out + body;
}

// A packet whose length word says `length`, whatever follows.
std::string header(std::uint32_t length, std::uint32_t code) {
  std::string out;
  append_u32(out, length);
  append_u32(out, code);
  return out;
}

std::string length_word(std::uint32_t length) {
  std::string out;
  append_u32(out, length);
  return out;
}

// Decodes a private copy of `s`, so that a read past its end is a heap overflow that
// AddressSanitizer (in the fuzz build) would report.
StartupDecodeResult decode(const std::string& s) {
  const std::vector<std::uint8_t> copy(s.begin(), s.end());
  return decode_startup(Bytes(copy.data(), copy.size()));
}

const std::string kParams = "user\0alice\0database\0shop\0application_name\0psql\0\0"s;

TEST(DecodeStartup, StartupMessage) {
  const std::string p = packet(kProtocol3, kParams);
  const auto r = decode(p);
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(r.consumed, p.size());
  EXPECT_TRUE(r.error.empty());
  const auto* msg = std::get_if<StartupMessage>(&r.packet);
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->major, 3);
  EXPECT_EQ(msg->minor, 0);
  const std::vector<std::pair<std::string, std::string>> want = {{"user", "alice"},
                                                                 {"database", "shop"},
                                                                 {"application_name", "psql"}};
  EXPECT_EQ(msg->parameters, want);
  EXPECT_EQ(msg->user(), "alice");
  EXPECT_EQ(msg->database(), "shop");
  EXPECT_EQ(msg->get("application_name"), std::optional<std::string_view>("psql"));
  EXPECT_EQ(msg->get("options"), std::nullopt);
}

TEST(DecodeStartup, EveryPrefixNeedsMoreData) {
  for (const std::string& p : {packet(kProtocol3, kParams), packet(kSslRequestCode, ""), packet(kGssEncRequestCode, ""),
                               encode_cancel_request({42, 4242})}) {
    for (std::size_t n = 0; n < p.size(); ++n) {
      const auto r = decode(p.substr(0, n));
      ASSERT_EQ(r.status, DecodeStatus::kNeedMoreData) << "prefix of " << n << " bytes: " << r.error;
      EXPECT_EQ(r.consumed, 0u);
    }
    const auto r = decode(p);
    ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
    EXPECT_EQ(r.consumed, p.size());
  }
}

TEST(DecodeStartup, TwoPacketsInOneBuffer) {
  const std::string first = packet(kProtocol3, "user\0alice\0\0"s);
  const std::string second = packet(kProtocol3, "user\0bob\0database\0b\0\0"s);
  const std::string both = first + second;
  const auto r1 = decode(both);
  ASSERT_EQ(r1.status, DecodeStatus::kReady) << r1.error;
  EXPECT_EQ(r1.consumed, first.size());
  EXPECT_EQ(std::get<StartupMessage>(r1.packet).user(), "alice");
  const auto r2 = decode(both.substr(r1.consumed));
  ASSERT_EQ(r2.status, DecodeStatus::kReady) << r2.error;
  EXPECT_EQ(r2.consumed, second.size());
  EXPECT_EQ(std::get<StartupMessage>(r2.packet).database(), "b");
}

TEST(DecodeStartup, SslRequestFollowedByOtherBytes) {
  // The bytes after an SSLRequest belong to whatever comes next (the TLS ClientHello): the
  // decoder consumes exactly the 8 bytes of the request and no more.
  const std::string p = packet(kSslRequestCode, "") + "\x16\x03\x01garbage"s;
  const auto r = decode(p);
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(r.consumed, 8u);
  EXPECT_TRUE(std::holds_alternative<SslRequest>(r.packet));
}

TEST(DecodeStartup, DatabaseDefaultsToUser) {
  auto r = decode(packet(kProtocol3, "user\0alice\0\0"s));
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(std::get<StartupMessage>(r.packet).database(), "alice");
  r = decode(packet(kProtocol3, "database\0\0user\0alice\0\0"s));
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(std::get<StartupMessage>(r.packet).database(), "alice");
}

TEST(DecodeStartup, LastRepeatedParameterWins) {
  const auto r = decode(packet(kProtocol3, "user\0alice\0user\0bob\0\0"s));
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  const auto& msg = std::get<StartupMessage>(r.packet);
  EXPECT_EQ(msg.parameters.size(), 2u);
  EXPECT_EQ(msg.user(), "bob");
}

TEST(DecodeStartup, EmptyValuesAreKept) {
  const auto r = decode(packet(kProtocol3, "user\0alice\0options\0\0\0"s));
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(std::get<StartupMessage>(r.packet).get("options"), std::optional<std::string_view>(""));
}

// ---- length bounds ----

TEST(DecodeStartup, LengthIsCheckedAsSoonAsFourBytesArrive) {
  EXPECT_EQ(decode(length_word(0x7fffffff).substr(0, 3)).status, DecodeStatus::kNeedMoreData);
  const auto r = decode(length_word(0x7fffffff));
  ASSERT_EQ(r.status, DecodeStatus::kInvalid);
  EXPECT_EQ(r.error, "invalid startup packet: length 2147483647 exceeds the maximum of 10000 bytes");
  EXPECT_EQ(r.consumed, 0u);
}

TEST(DecodeStartup, LengthsBelowTheMinimum) {
  for (std::uint32_t len = 0; len < 8; ++len) {
    const auto r = decode(header(len, kProtocol3) + "user\0a\0\0"s);
    ASSERT_EQ(r.status, DecodeStatus::kInvalid) << len;
    EXPECT_EQ(r.error, "invalid startup packet: length " + std::to_string(len) + " is below the minimum of 8 bytes");
  }
  EXPECT_EQ(decode(length_word(5)).error, "invalid startup packet: length 5 is below the minimum of 8 bytes");
}

TEST(DecodeStartup, LengthOfEightIsTheMinimum) {
  // Eight bytes are a valid SSLRequest, but a StartupMessage that small has no terminator.
  EXPECT_EQ(decode(header(8, kSslRequestCode)).status, DecodeStatus::kReady);
  const auto r = decode(header(8, kProtocol3));
  ASSERT_EQ(r.status, DecodeStatus::kInvalid);
  EXPECT_EQ(r.error, "invalid startup packet: missing terminator after the protocol version");
}

TEST(DecodeStartup, LengthsAboveTheMaximum) {
  for (const std::uint32_t len : {10001u, 65536u, 0x7fffffffu, 0x80000000u, 0xfffffffbu, 0xffffffffu}) {
    const auto r = decode(length_word(len));
    ASSERT_EQ(r.status, DecodeStatus::kInvalid) << len;
    EXPECT_EQ(r.error, "invalid startup packet: length " + std::to_string(len) + " exceeds the maximum of 10000 bytes");
  }
}

TEST(DecodeStartup, LengthOfTenThousandIsTheMaximum) {
  const std::string head = "user\0alice\0application_name\0"s;
  const std::string filler(10000 - 8 - head.size() - 2, 'x');
  const std::string p = packet(kProtocol3, head + filler + "\0\0"s);
  ASSERT_EQ(p.size(), 10000u);
  EXPECT_EQ(decode(p.substr(0, 9999)).status, DecodeStatus::kNeedMoreData);
  const auto r = decode(p);
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(r.consumed, 10000u);
  EXPECT_EQ(std::get<StartupMessage>(r.packet).get("application_name")->size(), filler.size());

  const std::string too_long = packet(kProtocol3, head + filler + "x\0\0"s);
  ASSERT_EQ(too_long.size(), 10001u);
  EXPECT_EQ(decode(too_long).error, "invalid startup packet: length 10001 exceeds the maximum of 10000 bytes");
}

// ---- malformed parameter lists ----

struct Malformed {
  std::string body;
  std::string error;
};

TEST(DecodeStartup, MalformedParameterLists) {
  const std::vector<Malformed> cases = {
      {"user\0alice\0"s, "invalid startup packet: missing terminator after parameter \"user\""},
      // An empty value then the end of the packet: the NUL that would have been the
      // terminator was the value's.
      {"user\0\0"s, "invalid startup packet: missing terminator after parameter \"user\""},
      {"user\0alice\0foo\0"s, "invalid startup packet: parameter \"foo\" has no value"},
      {"user\0alice\0foo"s, "invalid startup packet: parameter name \"foo\" is not NUL-terminated"},
      {"user\0alice"s, "invalid startup packet: value of parameter \"user\" is not NUL-terminated"},
      {"user\0alice\0\0xyz"s,
       "invalid startup packet: 3 unexpected byte(s) after the terminator of the parameter list"},
      {"user\0alice\0\0\0"s, "invalid startup packet: 1 unexpected byte(s) after the terminator of the parameter list"},
      {"\0"s, "invalid startup packet: no user name specified"},
      {"database\0shop\0\0"s, "invalid startup packet: no user name specified"},
      {"user\0\0\0"s, "invalid startup packet: no user name specified"},
      {"user\0alice\0user\0\0\0"s, "invalid startup packet: no user name specified"},
      {""s, "invalid startup packet: missing terminator after the protocol version"},
      // Quoted names are escaped: they come from an unauthenticated peer.
      {"user\0a\0b\"\n\xff\0"s, "invalid startup packet: parameter \"b\\x22\\x0a\\xff\" has no value"},
  };
  for (const auto& c : cases) {
    const auto r = decode(packet(kProtocol3, c.body));
    ASSERT_EQ(r.status, DecodeStatus::kInvalid) << c.error;
    EXPECT_EQ(r.error, c.error);
    EXPECT_EQ(r.consumed, 0u);
  }
}

TEST(DecodeStartup, LongNamesAreCutInErrors) {
  const std::string name(500, 'n');
  const auto r = decode(packet(kProtocol3, "user\0a\0"s + name + "\0"s));
  ASSERT_EQ(r.status, DecodeStatus::kInvalid);
  EXPECT_EQ(r.error, "invalid startup packet: parameter \"" + std::string(64, 'n') + "...\" has no value");
}

// ---- protocol versions and special codes ----

TEST(DecodeStartup, UnsupportedVersionsAreRefusedFromTheFirstEightBytes) {
  const std::vector<std::pair<std::uint32_t, std::string>> cases = {
      {make_protocol(2, 0), "2.0"},
      {make_protocol(1, 0), "1.0"},
      {make_protocol(0, 0), "0.0"},
      {make_protocol(4, 0), "4.0"},
      {make_protocol(1234, 9999), "1234.9999"},
      {make_protocol(65535, 65535), "65535.65535"},
  };
  for (const auto& [code, name] : cases) {
    const std::string p = packet(code, kParams);
    const auto r = decode(p.substr(0, 8));
    ASSERT_EQ(r.status, DecodeStatus::kInvalid) << name;
    EXPECT_EQ(r.error, "unsupported frontend protocol " + name + ": the gateway supports 3.0");
    EXPECT_EQ(decode(p).error, r.error);
  }
}

TEST(DecodeStartup, NewerMinorVersionsAreAccepted) {
  for (const std::uint16_t minor : {1, 2, 65535}) {
    const auto r = decode(packet(make_protocol(3, minor), kParams));
    ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
    const auto& msg = std::get<StartupMessage>(r.packet);
    EXPECT_EQ(msg.major, 3);
    EXPECT_EQ(msg.minor, minor);
  }
}

TEST(DecodeStartup, SslAndGssEncRequests) {
  auto r = decode(packet(kSslRequestCode, ""));
  ASSERT_EQ(r.status, DecodeStatus::kReady);
  EXPECT_TRUE(std::holds_alternative<SslRequest>(r.packet));
  EXPECT_EQ(r.consumed, 8u);
  r = decode(packet(kGssEncRequestCode, ""));
  ASSERT_EQ(r.status, DecodeStatus::kReady);
  EXPECT_TRUE(std::holds_alternative<GssEncRequest>(r.packet));
  EXPECT_EQ(r.consumed, 8u);

  // Wrong lengths are refused from the first 8 bytes, without waiting for the rest.
  EXPECT_EQ(decode(header(12, kSslRequestCode)).error, "invalid startup packet: SSLRequest must be 8 bytes, got 12");
  EXPECT_EQ(decode(header(9, kGssEncRequestCode)).error,
            "invalid startup packet: GSSENCRequest must be 8 bytes, got 9");
}

TEST(DecodeStartup, CancelRequest) {
  const auto r = decode(packet(kCancelRequestCode, "\x00\x00\x30\x39\xde\xad\xbe\xef"s));
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(r.consumed, 16u);
  const auto& cancel = std::get<CancelRequest>(r.packet);
  EXPECT_EQ(cancel.process_id, 12345u);
  EXPECT_EQ(cancel.secret_key, 0xdeadbeefu);

  for (const std::uint32_t len : {8u, 12u, 15u, 17u, 20u, 10000u}) {
    const auto bad = decode(header(len, kCancelRequestCode));
    ASSERT_EQ(bad.status, DecodeStatus::kInvalid) << len;
    EXPECT_EQ(bad.error, "invalid startup packet: CancelRequest must be 16 bytes, got " + std::to_string(len));
  }
}

// ---- round trips ----

TEST(DecodeStartup, RoundTripsThroughTheEncoder) {
  StartupMessage in;
  in.minor = 2;  // not copied: the encoder always writes 3.0
  in.parameters = {{"user", "alice"},  {"database", "shop"},        {"options", "-c search_path=x"},
                   {"_pq_.ext", "on"}, {"client_encoding", "UTF8"}, {"empty", ""}};
  const std::string p = encode_startup_message(in);
  const auto r = decode(p);
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(r.consumed, p.size());
  const auto& out = std::get<StartupMessage>(r.packet);
  EXPECT_EQ(out.parameters, in.parameters);
  EXPECT_EQ(out.major, 3);
  EXPECT_EQ(out.minor, 0);
}

TEST(DecodeStartup, CancelRequestRoundTrips) {
  const CancelRequest in{0xffffffffu, 0x80000001u};
  const auto r = decode(encode_cancel_request(in));
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(std::get<CancelRequest>(r.packet).process_id, in.process_id);
  EXPECT_EQ(std::get<CancelRequest>(r.packet).secret_key, in.secret_key);
}

// ---- random input ----

// Properties every result must have, whatever the input.
void check_invariants(const std::string& input, const StartupDecodeResult& r) {
  ASSERT_LE(r.consumed, input.size());
  switch (r.status) {
    case DecodeStatus::kNeedMoreData:
      EXPECT_EQ(r.consumed, 0u);
      EXPECT_TRUE(r.error.empty());
      break;
    case DecodeStatus::kInvalid:
      EXPECT_EQ(r.consumed, 0u);
      EXPECT_FALSE(r.error.empty());
      break;
    case DecodeStatus::kReady: {
      ASSERT_GE(input.size(), 4u);
      const std::uint32_t declared = read_u32(reinterpret_cast<const std::uint8_t*>(input.data()));
      EXPECT_EQ(r.consumed, declared);
      EXPECT_GE(r.consumed, kMinStartupPacketLength);
      EXPECT_LE(r.consumed, kMaxStartupPacketLength);
      EXPECT_TRUE(r.error.empty());
      if (const auto* msg = std::get_if<StartupMessage>(&r.packet)) {
        EXPECT_FALSE(msg->user().empty());
        EXPECT_EQ(msg->major, 3);
      }
      break;
    }
  }
}

// A decision made on a prefix must not change when more bytes arrive: if the whole input
// decodes, every shorter prefix needs more data; if a prefix is invalid, so is the whole.
void check_prefixes(const std::string& input) {
  const auto full = decode(input);
  check_invariants(input, full);
  for (std::size_t n = 0; n < input.size(); ++n) {
    const auto r = decode(input.substr(0, n));
    check_invariants(input.substr(0, n), r);
    if (full.status == DecodeStatus::kReady && n < full.consumed) {
      ASSERT_EQ(r.status, DecodeStatus::kNeedMoreData) << n;
    }
    if (r.status == DecodeStatus::kInvalid) {
      ASSERT_EQ(full.status, DecodeStatus::kInvalid);
      ASSERT_EQ(full.error, r.error);
    }
  }
}

TEST(DecodeStartup, RandomBytes) {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> size(0, 40);
  for (int i = 0; i < 5000; ++i) {
    std::string input(size(rng), '\0');
    for (auto& c : input) c = static_cast<char>(byte(rng));
    check_invariants(input, decode(input));
  }
}

TEST(DecodeStartup, RandomBodiesBehindPlausibleHeaders) {
  // Purely random bytes almost never get past the length check, so also try random
  // parameter lists, often well-formed, sometimes not, behind a correct length word and a
  // likely code.
  std::mt19937 rng(7);
  const std::string names[] = {"user", "database", "_pq_.y", "x", ""};
  const std::string values[] = {"alice", "", "x"};
  const std::string extras[] = {"", "", "", "\0"s, "x", "user\0"s, "\0\0"s};
  const std::uint32_t codes[] = {kProtocol3,         make_protocol(3, 1), kSslRequestCode,
                                 kGssEncRequestCode, kCancelRequestCode,  make_protocol(2, 0)};
  std::uniform_int_distribution<std::size_t> name(0, std::size(names) - 1);
  std::uniform_int_distribution<std::size_t> value(0, std::size(values) - 1);
  std::uniform_int_distribution<std::size_t> extra(0, std::size(extras) - 1);
  std::uniform_int_distribution<std::size_t> pairs(0, 3);
  std::uniform_int_distribution<std::size_t> code(0, std::size(codes) - 1);
  int startup_ready = 0;
  int startup_invalid = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string body = i % 2 == 0 ? "user\0alice\0"s : ""s;
    for (std::size_t n = pairs(rng); n > 0; --n) body += names[name(rng)] + '\0' + values[value(rng)] + '\0';
    if (i % 4 != 0) body += '\0';
    body += extras[extra(rng)];
    std::string input = packet(codes[code(rng)], body);
    if (i % 3 == 0) input += "trailing";
    check_prefixes(input);
    const auto r = decode(input);
    const bool is_startup = std::holds_alternative<StartupMessage>(r.packet);
    startup_ready += r.status == DecodeStatus::kReady && is_startup;
    startup_invalid += r.status == DecodeStatus::kInvalid && r.error.starts_with("invalid startup packet: ");
  }
  // The generator reaches both the success path and the parameter-list errors.
  EXPECT_GT(startup_ready, 100) << startup_invalid;
  EXPECT_GT(startup_invalid, 1000) << startup_ready;
}

TEST(DecodeStartup, MutatedValidPackets) {
  std::mt19937 rng(99);
  const std::string base = packet(kProtocol3, kParams);
  std::uniform_int_distribution<std::size_t> where(0, base.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 2000; ++i) {
    std::string input = base;
    for (int k = 0; k < 1 + i % 3; ++k) input[where(rng)] = static_cast<char>(byte(rng));
    check_prefixes(input);
  }
}

}  // namespace
}  // namespace pgnap::protocol
