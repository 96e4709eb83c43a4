// Encoders: exact bytes against the layouts of protocol-message-formats.html, and decoding
// of what they produce.
#include "protocol/encode.h"

#include <gtest/gtest.h>

#include <bitset>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/message_scanner.h"

namespace pgnap::protocol {
namespace {

using namespace std::string_literals;

std::uint32_t length_at(const std::string& s, std::size_t pos) {
  return read_u32(reinterpret_cast<const std::uint8_t*>(s.data()) + pos);
}

TEST(EncodeErrorResponse, ExactBytes) {
  const std::string got = encode_error_response({"FATAL", std::string(sqlstate::kProtocolViolation), "bad", "", ""});
  const std::string body = "SFATAL\0VFATAL\0C08P01\0Mbad\0\0"s;
  std::string want = "E";
  append_u32(want, static_cast<std::uint32_t>(4 + body.size()));
  EXPECT_EQ(got, want + body);
}

TEST(EncodeErrorResponse, DetailAndHint) {
  const std::string got = encode_error_response({"FATAL", std::string(sqlstate::kCannotConnectNow),
                                                 "instance \"main\" could not be started", "pg_ctl exited with 1",
                                                 "retry"});
  const std::string body =
      "SFATAL\0VFATAL\0C57P03\0Minstance \"main\" could not be started\0Dpg_ctl exited with 1\0Hretry\0\0"s;
  EXPECT_EQ(got.substr(5), body);
  EXPECT_EQ(length_at(got, 1), got.size() - 1);
}

TEST(EncodeErrorResponse, HintWithoutDetail) {
  const std::string got = encode_error_response({"ERROR", "53300", "m", "", "h"});
  EXPECT_EQ(got.substr(5), "SERROR\0VERROR\0C53300\0Mm\0Hh\0\0"s);
}

TEST(EncodeErrorResponse, EmbeddedNulsAreCut) {
  const std::string message = "first\0second"s;
  const std::string detail = "\0hidden"s;  // empty once cut: omitted
  const std::string got = encode_error_response({"FATAL", "08P01", message, detail, ""});
  EXPECT_EQ(got.substr(5), "SFATAL\0VFATAL\0C08P01\0Mfirst\0\0"s);
  EXPECT_EQ(length_at(got, 1), got.size() - 1);
}

TEST(EncodeErrorResponse, ReadsBackThroughTheScanner) {
  const std::string got = encode_error_response({"FATAL", std::string(sqlstate::kInvalidCatalogName), "no such db", "",
                                                 ""});
  std::bitset<256> watched;
  watched.set('E');
  MessageScanner scanner(1 << 20, watched);
  std::vector<std::string> states;
  ASSERT_EQ(scanner.scan(as_bytes(got),
                         [&](const ScannedMessage& m) { states.push_back(parse_error_sqlstate(m).value_or("?")); }),
            ScanStatus::kOk);
  EXPECT_EQ(states, std::vector<std::string>{"3D000"});
  EXPECT_TRUE(scanner.at_boundary());
  EXPECT_EQ(scanner.messages(), 1u);
}

TEST(EncodeNegotiateProtocolVersion, ExactBytes) {
  const std::vector<std::string> options = {"_pq_.foo", "_pq_.bar"};
  const std::string got = encode_negotiate_protocol_version(0, options);
  const std::string body = "\0\0\0\0\0\0\0\x02_pq_.foo\0_pq_.bar\0"s;
  std::string want = "v";
  append_u32(want, static_cast<std::uint32_t>(4 + body.size()));
  EXPECT_EQ(got, want + body);
}

TEST(EncodeNegotiateProtocolVersion, NoOptions) {
  const std::string got = encode_negotiate_protocol_version(0, {});
  EXPECT_EQ(got, "v\0\0\0\x0c\0\0\0\0\0\0\0\0"s);
}

TEST(EncodeNegotiateProtocolVersion, NewestMinorAndCutNames) {
  const std::vector<std::string> options = {"_pq_.a\0b"s};
  const std::string got = encode_negotiate_protocol_version(2, options);
  EXPECT_EQ(got.substr(5), "\0\0\0\x02\0\0\0\x01_pq_.a\0"s);
  EXPECT_EQ(length_at(got, 1), got.size() - 1);
}

TEST(EncodeStartupMessage, ExactBytes) {
  StartupMessage msg;
  msg.minor = 1;  // pgnap always speaks 3.0 to PostgreSQL
  msg.parameters = {{"user", "alice"}, {"database", "shop"}};
  const std::string got = encode_startup_message(msg);
  const std::string want = "\0\0\0\x22\0\x03\0\0user\0alice\0database\0shop\0\0"s;
  ASSERT_EQ(want.size(), 0x22u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(length_at(got, 4), 196608u);
}

TEST(EncodeStartupMessage, UnrepresentableParts) {
  StartupMessage msg;
  msg.parameters = {{"user", "al\0ice"s}, {"", "dropped"}, {"\0x"s, "dropped too"}, {"database", ""}};
  const std::string got = encode_startup_message(msg);
  EXPECT_EQ(got.substr(8), "user\0al\0database\0\0\0"s);
  EXPECT_EQ(length_at(got, 0), got.size());
  const auto r = decode_startup(as_bytes(got));
  ASSERT_EQ(r.status, DecodeStatus::kReady) << r.error;
  EXPECT_EQ(std::get<StartupMessage>(r.packet).parameters.size(), 2u);
}

TEST(EncodeCancelRequest, ExactBytes) {
  // 16 bytes: length, the code 1234.5678 (80877102), the process ID and the secret key.
  EXPECT_EQ(encode_cancel_request({0x01020304, 0xa0b0c0d0}),
            "\0\0\0\x10\x04\xd2\x16\x2e\x01\x02\x03\x04\xa0\xb0\xc0\xd0"s);
}

TEST(EncodeTerminate, ExactBytes) { EXPECT_EQ(encode_terminate(), "X\0\0\0\x04"s); }

// ---- negotiate_startup ----

// A NegotiateProtocolVersion message read back: Int32 newest minor version, Int32 count,
// then the count NUL-terminated option names, and nothing after them.
struct Negotiation {
  std::uint32_t newest_minor = 0;
  std::vector<std::string> options;
};
std::optional<Negotiation> decode_negotiate(const std::string& wire) {
  if (wire.size() < 13 || wire[0] != 'v' || length_at(wire, 1) != wire.size() - 1) return std::nullopt;
  Negotiation out;
  out.newest_minor = length_at(wire, 5);
  const std::uint32_t count = length_at(wire, 9);
  std::size_t pos = 13;
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto end = wire.find('\0', pos);
    if (end == std::string::npos) return std::nullopt;
    out.options.push_back(wire.substr(pos, end - pos));
    pos = end + 1;
  }
  if (pos != wire.size()) return std::nullopt;
  return out;
}

using Parameters = std::vector<std::pair<std::string, std::string>>;

StartupMessage startup(std::uint16_t minor, Parameters parameters) {
  StartupMessage msg;
  msg.major = 3;
  msg.minor = minor;
  msg.parameters = std::move(parameters);
  return msg;
}

TEST(NegotiateStartup, Protocol30WithoutPqOptionsNeedsNoNegotiationAndKeepsParametersInOrder) {
  const Parameters parameters = {{"user", "alice"},
                                 {"database", "shop"},
                                 {"application_name", "psql"},
                                 {"options", "-c search_path=app"},
                                 {"client_encoding", "UTF8"}};
  const auto got = negotiate_startup(startup(0, parameters));
  EXPECT_FALSE(got.negotiate_message.has_value());
  EXPECT_EQ(got.forwarded.major, 3);
  EXPECT_EQ(got.forwarded.minor, 0);
  EXPECT_EQ(got.forwarded.parameters, parameters);
}

TEST(NegotiateStartup, Protocol32IsAnsweredWithNewestMinorZeroAndNoOptions) {
  const Parameters parameters = {{"user", "alice"}, {"database", "shop"}};
  const auto got = negotiate_startup(startup(2, parameters));
  ASSERT_TRUE(got.negotiate_message.has_value());
  const auto negotiation = decode_negotiate(*got.negotiate_message);
  ASSERT_TRUE(negotiation.has_value()) << "not a well-formed NegotiateProtocolVersion";
  EXPECT_EQ(negotiation->newest_minor, 0u);
  EXPECT_TRUE(negotiation->options.empty());
  EXPECT_EQ(got.forwarded.minor, 0) << "PostgreSQL is spoken to in 3.0";
  EXPECT_EQ(got.forwarded.parameters, parameters);
}

TEST(NegotiateStartup, PqOptionsAreRemovedFromTheForwardedStartupAndNamedInTheMessage) {
  const auto got = negotiate_startup(
      startup(0, {{"user", "alice"}, {"_pq_.compression", "on"}, {"database", "shop"}, {"_pq_.x", "1"}}));
  EXPECT_EQ(got.forwarded.parameters, (Parameters{{"user", "alice"}, {"database", "shop"}}));
  ASSERT_TRUE(got.negotiate_message.has_value());
  const auto negotiation = decode_negotiate(*got.negotiate_message);
  ASSERT_TRUE(negotiation.has_value()) << "not a well-formed NegotiateProtocolVersion";
  EXPECT_EQ(negotiation->newest_minor, 0u);
  EXPECT_EQ(negotiation->options, (std::vector<std::string>{"_pq_.compression", "_pq_.x"}));
}

TEST(NegotiateStartup, ANewerMinorWithPqOptionsNamesTheOptionsInOneMessage) {
  const auto got = negotiate_startup(startup(2, {{"user", "alice"}, {"_pq_.x", "1"}}));
  ASSERT_TRUE(got.negotiate_message.has_value());
  const auto negotiation = decode_negotiate(*got.negotiate_message);
  ASSERT_TRUE(negotiation.has_value());
  EXPECT_EQ(negotiation->newest_minor, 0u);
  EXPECT_EQ(negotiation->options, std::vector<std::string>{"_pq_.x"});
  EXPECT_EQ(got.forwarded.minor, 0);
  EXPECT_EQ(got.forwarded.parameters, (Parameters{{"user", "alice"}}));
}

TEST(NegotiateStartup, OnlyNamesStartingWithPqDotAreProtocolOptions) {
  // As postmaster.c: strncmp(nameptr, "_pq_.", 5). Anything else is a parameter for
  // PostgreSQL to accept or refuse.
  const Parameters parameters = {{"user", "alice"}, {"_pq_", "1"}, {"x_pq_.y", "2"}, {"_PQ_.z", "3"}};
  const auto got = negotiate_startup(startup(0, parameters));
  EXPECT_FALSE(got.negotiate_message.has_value());
  EXPECT_EQ(got.forwarded.parameters, parameters);
}

TEST(NegotiateStartup, TheForwardedStartupEncodesAsAProtocol30Packet) {
  const auto got = negotiate_startup(startup(2, {{"user", "alice"}, {"_pq_.x", "1"}, {"database", "shop"}}));
  const std::string packet = encode_startup_message(got.forwarded);
  const auto decoded = decode_startup(as_bytes(packet));
  ASSERT_EQ(decoded.status, DecodeStatus::kReady) << decoded.error;
  const auto& msg = std::get<StartupMessage>(decoded.packet);
  EXPECT_EQ(msg.major, 3);
  EXPECT_EQ(msg.minor, 0);
  EXPECT_EQ(msg.parameters, (Parameters{{"user", "alice"}, {"database", "shop"}}));
}

}  // namespace
}  // namespace pgnap::protocol
