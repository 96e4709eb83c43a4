// The messages pgnap reads and writes itself: each encoder against hand-written bytes of
// protocol-message-formats.html, each encoder read back by its decoder, and each decoder's
// malformed bodies (truncated, a missing NUL, a trailing byte, a length of -2, a length past
// the end).
#include "protocol/messages.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/frame.h"

namespace pgnap::protocol {
namespace {

using namespace std::string_literals;

std::string msg(char type, const std::string& body) {
  std::string out(1, type);
  append_u32(out, static_cast<std::uint32_t>(4 + body.size()));
  return out + body;
}

std::string i32(std::int32_t v) {
  std::string out;
  append_u32(out, static_cast<std::uint32_t>(v));
  return out;
}

std::string i16(std::uint16_t v) {
  std::string out;
  append_u16(out, v);
  return out;
}

// The bytes in a buffer exactly as long as they are: a decoder reading past the body is a
// heap overflow under ASan, not a look at std::string's terminating NUL.
std::vector<std::uint8_t> owned(const std::string& s) { return {s.begin(), s.end()}; }

std::string text(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// An encoder's output framed by next_frame(): it must be one whole message of `type`, and
// nothing else. Returns the body.
std::vector<std::uint8_t> body_of(const std::string& encoded, char type) {
  const auto bytes = owned(encoded);
  const FrameResult r = next_frame(bytes, 1 << 20);
  EXPECT_EQ(r.status, FrameStatus::kReady) << r.error;
  EXPECT_EQ(r.frame.type, type);
  EXPECT_EQ(r.frame.size, encoded.size());
  return owned(text(r.frame.body));
}

// ---- backend messages pgnap writes: exact bytes ----

TEST(EncodeAuthentication, OkIsTheCodeZeroAlone) { EXPECT_EQ(encode_authentication_ok(), "R\0\0\0\x08\0\0\0\0"s); }

TEST(EncodeAuthentication, CleartextPasswordIsTheCodeThreeAlone) {
  EXPECT_EQ(encode_authentication_cleartext(), "R\0\0\0\x08\0\0\0\x03"s);
}

TEST(EncodeAuthentication, Md5PasswordCarriesItsFourByteSalt) {
  EXPECT_EQ(encode_authentication_md5({0x01, 0x00, 0xfe, 0x7f}), "R\0\0\0\x0c\0\0\0\x05\x01\x00\xfe\x7f"s);
}

TEST(EncodeAuthentication, SaslListsEachMechanismThenAnEmptyName) {
  const std::vector<std::string> mechanisms = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  const std::string body = "\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"s;
  EXPECT_EQ(encode_authentication_sasl(mechanisms), msg('R', body));
  EXPECT_EQ(body.size() + 4, 42u);
}

TEST(EncodeAuthentication, SaslSkipsEmptyNamesAndCutsNamesAtANul) {
  // An empty name would end the list early; a NUL inside a name would split it in two.
  const std::vector<std::string> mechanisms = {"", "SCRAM-SHA-256\0junk"s, "\0"s};
  EXPECT_EQ(encode_authentication_sasl(mechanisms), msg('R', "\0\0\0\x0aSCRAM-SHA-256\0\0"s));
  EXPECT_EQ(encode_authentication_sasl({}), msg('R', "\0\0\0\x0a\0"s));
}

TEST(EncodeAuthentication, SaslContinueAndFinalCarryTheirDataUnterminated) {
  EXPECT_EQ(encode_authentication_sasl_continue("r=abc,s=c2FsdA==,i=4096"),
            msg('R', "\0\0\0\x0br=abc,s=c2FsdA==,i=4096"s));
  EXPECT_EQ(encode_authentication_sasl_final("v=x\0y"s), msg('R', "\0\0\0\x0cv=x\0y"s));
}

TEST(EncodeParameterStatus, WritesTheNameAndValueEachNulTerminated) {
  EXPECT_EQ(encode_parameter_status("server_version", "15.6"),
            "S\0\0\0\x18server_version\0"
            "15.6\0"s);
  EXPECT_EQ(encode_parameter_status("a\0b"s, ""), msg('S', "a\0\0"s));
}

TEST(EncodeBackendKeyData, WritesTheProcessIdAndSecretKey) {
  EXPECT_EQ(encode_backend_key_data({4242, 0xdeadbeef}), "K\0\0\0\x0c\0\0\x10\x92\xde\xad\xbe\xef"s);
}

TEST(EncodeReadyForQuery, WritesTheStatusByte) {
  EXPECT_EQ(encode_ready_for_query('I'), "Z\0\0\0\x05I"s);
  EXPECT_EQ(encode_ready_for_query('T'), "Z\0\0\0\x05T"s);
  EXPECT_EQ(encode_ready_for_query('E'),
            "Z\0\0\0\x05"
            "E"s);
}

// ---- frontend messages pgnap writes: exact bytes ----

TEST(EncodePasswordMessage, WritesOneNulTerminatedString) {
  EXPECT_EQ(encode_password_message("md5d41d8cd98f00b204e9800998ecf8427e"),
            "p\0\0\0\x28md5d41d8cd98f00b204e9800998ecf8427e\0"s);
}

TEST(EncodeSaslInitialResponse, WritesTheMechanismThenTheLengthAndBytesOfTheData) {
  EXPECT_EQ(encode_sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=abc"),
            "p\0\0\0\x21SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc"s);
}

TEST(EncodeSaslInitialResponse, WritesLengthZeroForEmptyData) {
  EXPECT_EQ(encode_sasl_initial_response("SCRAM-SHA-256", ""), "p\0\0\0\x16SCRAM-SHA-256\0\0\0\0\0"s);
}

TEST(EncodeSaslInitialResponse, WritesLengthMinusOneWithoutData) {
  EXPECT_EQ(encode_sasl_initial_response("SCRAM-SHA-256"), "p\0\0\0\x16SCRAM-SHA-256\0\xff\xff\xff\xff"s);
}

TEST(EncodeSaslResponse, WritesTheDataAloneUnterminated) {
  EXPECT_EQ(encode_sasl_response("c=biws,r=abc,p=xyz"),
            "p\0\0\0\x16"
            "c=biws,r=abc,p=xyz"s);
  EXPECT_EQ(encode_sasl_response(""), "p\0\0\0\x04"s);
}

TEST(EncodeQuery, WritesTheSqlNulTerminated) { EXPECT_EQ(encode_query("SELECT 1"), "Q\0\0\0\x0dSELECT 1\0"s); }

TEST(EncodeExtendedQuery, ParseNamesTheStatementAndGivesNoParameterTypes) {
  EXPECT_EQ(encode_parse("", "SELECT $1"), "P\0\0\0\x11\0SELECT $1\0\0\0"s);
  EXPECT_EQ(encode_parse("s1", "SELECT 1"), msg('P', "s1\0SELECT 1\0\0\0"s));
}

TEST(EncodeExtendedQuery, BindSendsTextParametersWithNullsAsMinusOne) {
  const std::vector<std::optional<std::string>> parameters = {"alice", std::nullopt, ""};
  const std::string body =
      "\0"      // portal
      "\0"      // statement
      "\0\0"    // no parameter format codes: text
      "\0\x03"  // three parameters
      "\0\0\0\x05"
      "alice"
      "\xff\xff\xff\xff"  // NULL
      "\0\0\0\0"          // empty string
      "\0\0"s;            // no result format codes: text
  EXPECT_EQ(encode_bind("", "", parameters), msg('B', body));
  EXPECT_EQ(encode_bind("", "", {}), "B\0\0\0\x0c\0\0\0\0\0\0\0\0"s);
  EXPECT_EQ(encode_bind("p", "s", {}), msg('B', "p\0s\0\0\0\0\0\0\0"s));
}

TEST(EncodeExtendedQuery, DescribeNamesAPortal) {
  EXPECT_EQ(encode_describe_portal(""), "D\0\0\0\x06P\0"s);
  EXPECT_EQ(encode_describe_portal("c"), msg('D', "Pc\0"s));
}

TEST(EncodeExtendedQuery, ExecuteAsksForEveryRow) {
  EXPECT_EQ(encode_execute(""), "E\0\0\0\x09\0\0\0\0\0"s);
  EXPECT_EQ(encode_execute("c"), msg('E', "c\0\0\0\0\0"s));
}

TEST(EncodeExtendedQuery, SyncIsAnEmptyMessage) { EXPECT_EQ(encode_sync(), "S\0\0\0\x04"s); }

TEST(EncodeExtendedQuery, AnAuthQueryFramesAsFiveMessages) {
  const std::vector<std::optional<std::string>> user = {"alice"};
  const std::string stream = encode_parse("", "SELECT usename, passwd FROM pg_shadow WHERE usename = $1") +
                             encode_bind("", "", user) + encode_describe_portal("") + encode_execute("") +
                             encode_sync();
  const auto bytes = owned(stream);
  std::string types;
  for (Bytes rest = bytes; !rest.empty();) {
    const FrameResult r = next_frame(rest, 1 << 20);
    ASSERT_EQ(r.status, FrameStatus::kReady);
    types += r.frame.type;
    rest = rest.subspan(r.frame.size);
  }
  EXPECT_EQ(types, "PBDES");
}

// ---- round trips: every encoder read back by its decoder ----

TEST(RoundTrip, AuthenticationRequestsReadBackWithTheirPayloads) {
  {
    const auto body = body_of(encode_authentication_ok(), 'R');
    const auto auth = parse_authentication(body);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->code, auth_code::kOk);
    EXPECT_TRUE(auth->payload.empty());
  }
  {
    const auto body = body_of(encode_authentication_cleartext(), 'R');
    const auto auth = parse_authentication(body);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->code, auth_code::kCleartextPassword);
    EXPECT_TRUE(auth->payload.empty());
  }
  {
    const auto body = body_of(encode_authentication_md5({9, 8, 7, 6}), 'R');
    const auto auth = parse_authentication(body);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->code, auth_code::kMd5Password);
    EXPECT_EQ(text(auth->payload), "\x09\x08\x07\x06");
  }
  {
    const std::vector<std::string> mechanisms = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
    const auto body = body_of(encode_authentication_sasl(mechanisms), 'R');
    const auto auth = parse_authentication(body);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->code, auth_code::kSasl);
    EXPECT_EQ(parse_sasl_mechanisms(auth->payload), mechanisms);
  }
  for (const auto& [code, data] : {std::pair{auth_code::kSaslContinue, "r=abc,s=xyz,i=4096"s},
                                   std::pair{auth_code::kSaslFinal, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="s},
                                   std::pair{auth_code::kSaslFinal, ""s}}) {
    const std::string encoded = code == auth_code::kSaslContinue ? encode_authentication_sasl_continue(data)
                                                                 : encode_authentication_sasl_final(data);
    const auto body = body_of(encoded, 'R');
    const auto auth = parse_authentication(body);
    ASSERT_TRUE(auth);
    EXPECT_EQ(auth->code, code);
    EXPECT_EQ(text(auth->payload), data);
  }
}

TEST(RoundTrip, ParameterStatusBackendKeyDataAndReadyForQueryReadBack) {
  const auto status = parse_parameter_status(body_of(encode_parameter_status("TimeZone", "Europe/Paris"), 'S'));
  EXPECT_EQ(status, std::pair("TimeZone"s, "Europe/Paris"s));
  EXPECT_EQ(parse_parameter_status(body_of(encode_parameter_status("", ""), 'S')), std::pair(""s, ""s));

  const auto key = parse_backend_key_data_body(body_of(encode_backend_key_data({0xffffffff, 0}), 'K'));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->process_id, 0xffffffffu);
  EXPECT_EQ(key->secret_key, 0u);

  for (const char state : {'I', 'T', 'E'}) {
    EXPECT_EQ(parse_ready_for_query_body(body_of(encode_ready_for_query(state), 'Z')), state);
  }
}

TEST(RoundTrip, AnErrorResponseReadsBackFieldByField) {
  const ErrorResponse sent{"FATAL", "57P03", "instance \"main\" could not be started", "pg_ctl exited with 1",
                           "retry in a moment"};
  const auto got = parse_error_response(body_of(encode_error_response(sent), 'E'));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->severity, sent.severity);
  EXPECT_EQ(got->sqlstate, sent.sqlstate);
  EXPECT_EQ(got->message, sent.message);
  EXPECT_EQ(got->detail, sent.detail);
  EXPECT_EQ(got->hint, sent.hint);
}

TEST(RoundTrip, FrontendMessagesReadBack) {
  EXPECT_EQ(parse_password_message(body_of(encode_password_message("s3cr\xc3\xa9t"), 'p')), "s3cr\xc3\xa9t");
  EXPECT_EQ(parse_password_message(body_of(encode_password_message(""), 'p')), "");
  EXPECT_EQ(parse_query(body_of(encode_query("SELECT 'a;b'"), 'Q')), "SELECT 'a;b'");

  const auto with_data = parse_sasl_initial_response(
      body_of(encode_sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=x\0y"s), 'p'));
  ASSERT_TRUE(with_data);
  EXPECT_EQ(with_data->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(with_data->data, "n,,n=,r=x\0y"s);  // raw bytes: an embedded NUL is kept

  const auto empty = parse_sasl_initial_response(body_of(encode_sasl_initial_response("SCRAM-SHA-256", ""), 'p'));
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->data, ""s);

  const auto without = parse_sasl_initial_response(body_of(encode_sasl_initial_response("SCRAM-SHA-256"), 'p'));
  ASSERT_TRUE(without);
  EXPECT_EQ(without->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(without->data, std::nullopt);
}

// ---- decoders: well-formed bodies PostgreSQL sends ----

TEST(ParseAuthentication, PassesTheDataOfOtherRequestsThrough) {
  const auto gss_continue = owned(i32(8) + "token");
  const auto auth = parse_authentication(gss_continue);
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->code, 8);
  EXPECT_EQ(text(auth->payload), "token");
}

TEST(ParseSaslMechanisms, ReadsAnEmptyListAsNoMechanisms) {
  EXPECT_EQ(parse_sasl_mechanisms(owned("\0"s)), std::vector<std::string>{});
}

TEST(ParseErrorResponse, ReadsAPostgresqlFatalForAWrongPassword) {
  // As PostgreSQL 15 sends it from auth_failed() (src/backend/libpq/auth.c): severity
  // localized and not, SQLSTATE, message, then source file, line and routine.
  const std::string body =
      "SFATAL\0"
      "VFATAL\0"
      "C28P01\0"
      "Mpassword authentication failed for user \"x\"\0"
      "Fauth.c\0"
      "L335\0"
      "Rauth_failed\0"
      "\0"s;
  const auto error = parse_error_response(owned(body));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->severity, "FATAL");
  EXPECT_EQ(error->sqlstate, "28P01");
  EXPECT_EQ(error->message, "password authentication failed for user \"x\"");
  EXPECT_EQ(error->detail, "");
  EXPECT_EQ(error->hint, "");
}

TEST(ParseErrorResponse, PrefersTheNonLocalizedSeverityWhereverItComes) {
  const auto v_after = parse_error_response(owned("SERREUR\0VERROR\0C42P01\0Mla relation n'existe pas\0\0"s));
  ASSERT_TRUE(v_after);
  EXPECT_EQ(v_after->severity, "ERROR");
  const auto v_before = parse_error_response(owned("VERROR\0SERREUR\0\0"s));
  ASSERT_TRUE(v_before);
  EXPECT_EQ(v_before->severity, "ERROR");
}

TEST(ParseErrorResponse, FallsBackToTheLocalizedSeverityBeforePostgresql96) {
  const auto error = parse_error_response(owned("SFATAL\0C28000\0Mno pg_hba.conf entry\0\0"s));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->severity, "FATAL");
  EXPECT_EQ(error->sqlstate, "28000");
}

TEST(ParseErrorResponse, ReadsDetailAndHintAndIgnoresUnknownFields) {
  const auto error = parse_error_response(
      owned("SERROR\0VERROR\0C23505\0Mduplicate key\0DKey (id)=(1) already exists.\0Hdrop it\0sschema\0tt\0"
            "nt_pkey\0P12\0q\0Z\0\0"s));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->message, "duplicate key");
  EXPECT_EQ(error->detail, "Key (id)=(1) already exists.");
  EXPECT_EQ(error->hint, "drop it");
}

TEST(ParseErrorResponse, LeavesTheSeverityEmptyWhenNoneIsSent) {
  const auto error = parse_error_response(owned("\0"s));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->severity, "");
  EXPECT_EQ(error->sqlstate, "");
  EXPECT_EQ(error->message, "");
}

TEST(ParseDataRow, ReadsValuesEmptyStringsAndNulls) {
  const auto row = parse_data_row(owned(i16(3) + i32(5) + "alice" + i32(-1) + i32(0)));
  ASSERT_TRUE(row);
  ASSERT_EQ(row->size(), 3u);
  EXPECT_EQ((*row)[0], "alice");
  EXPECT_EQ((*row)[1], std::nullopt);
  EXPECT_EQ((*row)[2], "");
  EXPECT_EQ(parse_data_row(owned(i16(0))), std::vector<std::optional<std::string>>{});
}

TEST(ParseCommandComplete, ReadsTheTag) { EXPECT_EQ(parse_command_complete(owned("SELECT 1\0"s)), "SELECT 1"); }

// ---- decoders: malformed bodies ----

TEST(ParseAuthentication, RefusesATruncatedCodeAndFixedRequestsOfTheWrongSize) {
  EXPECT_FALSE(parse_authentication(owned("")));
  EXPECT_FALSE(parse_authentication(owned("\0\0\0"s)));
  EXPECT_FALSE(parse_authentication(owned(i32(auth_code::kOk) + "x")));  // trailing byte
  EXPECT_FALSE(parse_authentication(owned(i32(auth_code::kCleartextPassword) + "x")));
  EXPECT_FALSE(parse_authentication(owned(i32(auth_code::kMd5Password) + "abc")));  // salt truncated
  EXPECT_FALSE(parse_authentication(owned(i32(auth_code::kMd5Password) + "abcde")));
}

TEST(ParseSaslMechanisms, RefusesAMissingNulATruncatedListAndATrailingByte) {
  EXPECT_FALSE(parse_sasl_mechanisms(owned("")));
  EXPECT_FALSE(parse_sasl_mechanisms(owned("SCRAM-SHA-256")));        // the name lacks its NUL
  EXPECT_FALSE(parse_sasl_mechanisms(owned("SCRAM-SHA-256\0"s)));     // the list lacks its end
  EXPECT_FALSE(parse_sasl_mechanisms(owned("SCRAM-SHA-256\0\0x"s)));  // trailing byte
  EXPECT_FALSE(parse_sasl_mechanisms(owned("\0\0"s)));                // trailing byte
}

TEST(ParseParameterStatus, RefusesAMissingValueAMissingNulAndATrailingByte) {
  EXPECT_FALSE(parse_parameter_status(owned("")));
  EXPECT_FALSE(parse_parameter_status(owned("TimeZone")));
  EXPECT_FALSE(parse_parameter_status(owned("TimeZone\0"s)));
  EXPECT_FALSE(parse_parameter_status(owned("TimeZone\0UTC"s)));
  EXPECT_FALSE(parse_parameter_status(owned("TimeZone\0UTC\0x"s)));
}

TEST(ParseBackendKeyData, RefusesAnyBodyButEightBytes) {
  EXPECT_FALSE(parse_backend_key_data_body(owned("")));
  EXPECT_FALSE(parse_backend_key_data_body(owned("1234567")));
  EXPECT_FALSE(parse_backend_key_data_body(owned("123456789")));
  EXPECT_FALSE(parse_backend_key_data_body(owned(std::string(36, 'k'))));  // protocol 3.2's long key
}

TEST(ParseReadyForQuery, RefusesAnUnknownStatusAndAnyBodyButOneByte) {
  EXPECT_FALSE(parse_ready_for_query_body(owned("")));
  EXPECT_FALSE(parse_ready_for_query_body(owned("X")));
  EXPECT_FALSE(parse_ready_for_query_body(owned("II")));
  EXPECT_FALSE(parse_ready_for_query_body(owned("\0"s)));
}

TEST(ParseErrorResponse, RefusesAMissingTerminatorAFieldWithoutNulAndATrailingByte) {
  EXPECT_FALSE(parse_error_response(owned("")));
  EXPECT_FALSE(parse_error_response(owned("SFATAL\0C28P01\0"s)));  // no final zero byte
  EXPECT_FALSE(parse_error_response(owned("SFATAL\0C28P01"s)));    // a value without its NUL
  EXPECT_FALSE(parse_error_response(owned("SFATAL\0C"s)));         // a code without its value
  EXPECT_FALSE(parse_error_response(owned("SFATAL\0\0x"s)));       // trailing byte
  EXPECT_FALSE(parse_error_response(owned("\0\0"s)));              // trailing byte
}

TEST(ParseDataRow, RefusesMinusTwoALengthPastTheEndATrailingByteAndMissingColumns) {
  EXPECT_FALSE(parse_data_row(owned("")));
  EXPECT_FALSE(parse_data_row(owned("\0"s)));             // count truncated
  EXPECT_FALSE(parse_data_row(owned(i16(1) + i32(-2))));  // -2 is no length
  EXPECT_FALSE(parse_data_row(owned(i16(1) + i32(std::int32_t{-2147483647} - 1))));
  EXPECT_FALSE(parse_data_row(owned(i16(1) + i32(6) + "alice")));        // past the end
  EXPECT_FALSE(parse_data_row(owned(i16(1) + i32(5) + "alice" + "x")));  // trailing byte
  EXPECT_FALSE(parse_data_row(owned(i16(1) + i32(-1) + "x")));           // trailing after NULL
  EXPECT_FALSE(parse_data_row(owned(i16(2) + i32(5) + "alice")));        // a column missing
  EXPECT_FALSE(parse_data_row(owned(i16(1) + "\0\0"s)));                 // length truncated
  EXPECT_FALSE(parse_data_row(owned(i16(0xffff) + i32(-1))));            // a count the body cannot hold
  EXPECT_FALSE(parse_data_row(owned(i16(0) + "x")));                     // trailing byte
}

TEST(ParseCommandComplete, RefusesAMissingNulAndATrailingByte) {
  EXPECT_FALSE(parse_command_complete(owned("")));
  EXPECT_FALSE(parse_command_complete(owned("SELECT 1")));
  EXPECT_FALSE(parse_command_complete(owned("SELECT 1\0x"s)));
  EXPECT_FALSE(parse_command_complete(owned("SELECT 1\0\0"s)));
}

TEST(ParsePasswordMessage, RefusesAnEmptyBodyAMissingNulAndATrailingByte) {
  EXPECT_FALSE(parse_password_message(owned("")));
  EXPECT_FALSE(parse_password_message(owned("secret")));
  EXPECT_FALSE(parse_password_message(owned("secret\0x"s)));
  EXPECT_FALSE(parse_password_message(owned("secret\0\0"s)));
}

TEST(ParseSaslInitialResponse, RefusesEveryMalformedLayout) {
  EXPECT_FALSE(parse_sasl_initial_response(owned("")));
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256")));                       // mechanism lacks NUL
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256\0"s)));                    // no length
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256\0\0\0"s)));                // length truncated
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256\0"s + i32(-2))));          // -2 is no length
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256\0"s + i32(4) + "abc")));   // past the end
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256\0"s + i32(2) + "abc")));   // trailing byte
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256\0"s + i32(-1) + "a")));    // trailing after -1
  EXPECT_FALSE(parse_sasl_initial_response(owned("SCRAM-SHA-256\0"s + i32(0x7fffffff))));  // far past the end
}

TEST(ParseQuery, RefusesAnEmptyBodyAMissingNulAndATrailingByte) {
  EXPECT_FALSE(parse_query(owned("")));
  EXPECT_FALSE(parse_query(owned("SELECT 1")));
  EXPECT_FALSE(parse_query(owned("SELECT 1\0;"s)));
  EXPECT_EQ(parse_query(owned("\0"s)), "");  // an empty query string is a valid Query
}

// A body cut anywhere before its end is refused by its decoder, never read past.
TEST(Decoders, RefuseEveryTruncationOfAWellFormedBody) {
  const auto truncations = [](const std::string& body, auto&& parse) {
    for (std::size_t n = 0; n < body.size(); ++n) {
      EXPECT_FALSE(parse(owned(body.substr(0, n)))) << "first " << n << " bytes of " << body.size();
    }
    EXPECT_TRUE(parse(owned(body)));
  };
  truncations("SFATAL\0VFATAL\0C28P01\0Mm\0Dd\0Hh\0\0"s, [](Bytes b) { return parse_error_response(b).has_value(); });
  truncations(i16(2) + i32(1) + "1" + i32(-1), [](Bytes b) { return parse_data_row(b).has_value(); });
  truncations("SCRAM-SHA-256\0"s + i32(3) + "abc", [](Bytes b) { return parse_sasl_initial_response(b).has_value(); });
  truncations("SCRAM-SHA-256\0"s + i32(-1), [](Bytes b) { return parse_sasl_initial_response(b).has_value(); });
  truncations("a\0b\0\0"s, [](Bytes b) { return parse_sasl_mechanisms(b).has_value(); });
  truncations("a\0b\0"s, [](Bytes b) { return parse_parameter_status(b).has_value(); });
  truncations(i32(5) + "salt", [](Bytes b) { return parse_authentication(b).has_value(); });
}

}  // namespace
}  // namespace pgnap::protocol
