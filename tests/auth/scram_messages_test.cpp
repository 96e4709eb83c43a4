// The SCRAM message grammar (RFC 5802 section 7), with the SQLSTATEs, messages and details of
// PostgreSQL 15's auth-scram.c for the client's messages.
#include <gtest/gtest.h>

#include <string>

#include "auth/base64.h"
#include "auth/scram.h"
#include "scram_test_util.h"

namespace pgnap::auth {
namespace {

using namespace std::string_literals;
using testing::failure_of;
using testing::key_string;
using testing::value_of;

const std::string kProof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";  // RFC 7677's, 32 bytes

void expect_malformed(const ScramFailure& f, const std::string& detail) {
  EXPECT_EQ(f.sqlstate, "08P01");
  EXPECT_EQ(f.message, "malformed SCRAM message");
  EXPECT_EQ(f.detail, detail);
}

// ---- client-first-message ----

TEST(ScramClientFirst, WithoutChannelBinding) {
  const ClientFirst m = value_of(parse_client_first("n,,n=,r=rOprNGfwEbeRWgbNEkqO"));
  EXPECT_EQ(m.binding, ChannelBinding::kNone);
  EXPECT_EQ(m.binding_name, "");
  EXPECT_EQ(m.gs2_header, "n,,");
  EXPECT_EQ(m.bare, "n=,r=rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(m.nonce, "rOprNGfwEbeRWgbNEkqO");
}

TEST(ScramClientFirst, SupportedButNotUsed) {
  const ClientFirst m = value_of(parse_client_first("y,,n=user,r=abc"));
  EXPECT_EQ(m.binding, ChannelBinding::kNotUsed);
  EXPECT_EQ(m.gs2_header, "y,,");
  EXPECT_EQ(m.bare, "n=user,r=abc");
}

TEST(ScramClientFirst, WithChannelBinding) {
  const ClientFirst m = value_of(parse_client_first("p=tls-server-end-point,,n=,r=abc"));
  EXPECT_EQ(m.binding, ChannelBinding::kUsed);
  EXPECT_EQ(m.binding_name, "tls-server-end-point");
  EXPECT_EQ(m.gs2_header, "p=tls-server-end-point,,");
  EXPECT_EQ(m.bare, "n=,r=abc");
  // Any well-formed name parses; ScramServer decides which it supports.
  EXPECT_EQ(value_of(parse_client_first("p=tls-unique,,n=,r=abc")).binding_name, "tls-unique");
}

TEST(ScramClientFirst, TheUserNameIsReadButMayBeAnything) {
  EXPECT_EQ(value_of(parse_client_first("n,,n=some=2Cone,r=abc")).nonce, "abc");
  EXPECT_EQ(value_of(parse_client_first("n,,n=\xc3\xa9t\xc3\xa9,r=abc")).nonce, "abc");
}

TEST(ScramClientFirst, ExtensionsAfterTheNonceAreIgnored) {
  // auth-scram.c: "There can be any number of optional extensions after this."
  const ClientFirst m = value_of(parse_client_first("n,,n=,r=abc,x=1,Y=two"));
  EXPECT_EQ(m.nonce, "abc");
  EXPECT_EQ(m.bare, "n=,r=abc,x=1,Y=two");
}

TEST(ScramClientFirst, EmptyMessage) { expect_malformed(failure_of(parse_client_first("")), "The message is empty."); }

TEST(ScramClientFirst, EmbeddedNul) {
  expect_malformed(failure_of(parse_client_first("n,,n=,r=abc\0def"s)), "Message length does not match input length.");
}

TEST(ScramClientFirst, TooLong) {
  expect_malformed(failure_of(parse_client_first("n,,n=,r=" + std::string(70000, 'a'))), "The message is too long.");
}

TEST(ScramClientFirst, UnexpectedChannelBindingFlag) {
  expect_malformed(failure_of(parse_client_first("x,,n=,r=abc")), "Unexpected channel-binding flag \"'x'\".");
  expect_malformed(failure_of(parse_client_first("\x80,,n=,r=abc")), "Unexpected channel-binding flag \"0x80\".");
  expect_malformed(failure_of(parse_client_first(",,n=,r=abc")), "Unexpected channel-binding flag \"','\".");
}

TEST(ScramClientFirst, CommaExpectedAfterTheFlag) {
  expect_malformed(failure_of(parse_client_first("n;,n=,r=abc")), "Comma expected, but found character \"';'\".");
  expect_malformed(failure_of(parse_client_first("y")), "Comma expected, but found character \"0x00\".");
}

TEST(ScramClientFirst, MalformedChannelBindingName) {
  expect_malformed(failure_of(parse_client_first("p,,n=,r=abc")), "Expected character \"=\" for attribute \"p\".");
  expect_malformed(failure_of(parse_client_first("p=,,n=,r=abc")), "Malformed channel-binding type.");
  expect_malformed(failure_of(parse_client_first("p=tls server,,n=,r=abc")), "Malformed channel-binding type.");
  expect_malformed(failure_of(parse_client_first("p=tls-server-end-point")),
                   "Unexpected attribute \"0x00\" in client-first-message.");
}

TEST(ScramClientFirst, AuthorizationIdentityIsNotSupported) {
  const ScramFailure f = failure_of(parse_client_first("n,a=admin,n=,r=abc"));
  EXPECT_EQ(f.sqlstate, "0A000");
  EXPECT_EQ(f.message, "client uses authorization identity, but it is not supported");
  EXPECT_EQ(failure_of(parse_client_first("p=tls-server-end-point,a=x,n=,r=abc")).sqlstate, "0A000");
}

TEST(ScramClientFirst, UnexpectedAttributeInTheGs2Header) {
  expect_malformed(failure_of(parse_client_first("n,x=1,n=,r=abc")),
                   "Unexpected attribute \"'x'\" in client-first-message.");
}

TEST(ScramClientFirst, MandatoryExtensionIsNotSupported) {
  const ScramFailure f = failure_of(parse_client_first("n,,m=ext,n=,r=abc"));
  EXPECT_EQ(f.sqlstate, "0A000");
  EXPECT_EQ(f.message, "client requires an unsupported SCRAM extension");
}

TEST(ScramClientFirst, AttributesInOrder) {
  expect_malformed(failure_of(parse_client_first("n,,r=abc,n=")), "Expected attribute \"n\" but found \"'r'\".");
  expect_malformed(failure_of(parse_client_first("n,,n=")), "Expected attribute \"r\" but found \"0x00\".");
  expect_malformed(failure_of(parse_client_first("n,,n")), "Expected character \"=\" for attribute \"n\".");
  expect_malformed(failure_of(parse_client_first("n,,")), "Expected attribute \"n\" but found \"0x00\".");
}

TEST(ScramClientFirst, Nonce) {
  expect_malformed(failure_of(parse_client_first("n,,n=,r=")), "The client's nonce is empty.");
  for (const std::string& bad : {"n,,n=,r=ab cd"s, "n,,n=,r=ab\x7f"s, "n,,n=,r=\xc3\xa9"s, "n,,n=,r=a\tb"s}) {
    const ScramFailure f = failure_of(parse_client_first(bad));
    EXPECT_EQ(f.sqlstate, "08P01") << bad;
    EXPECT_EQ(f.message, "non-printable characters in SCRAM nonce") << bad;
  }
  // Every printable character but ',' (RFC 5802: printable = %x21-2B / %x2D-7E).
  std::string nonce;
  for (char c = 0x21; c <= 0x7e; ++c) {
    if (c != ',') nonce.push_back(c);
  }
  EXPECT_EQ(value_of(parse_client_first("n,,n=,r=" + nonce)).nonce, nonce);
}

TEST(ScramClientFirst, MalformedExtensions) {
  expect_malformed(failure_of(parse_client_first("n,,n=,r=abc,")), "Attribute expected, but found end of string.");
  expect_malformed(failure_of(parse_client_first("n,,n=,r=abc,1=x")),
                   "Attribute expected, but found invalid character \"'1'\".");
  expect_malformed(failure_of(parse_client_first("n,,n=,r=abc,x")), "Expected character \"=\" for attribute \"x\".");
  expect_malformed(failure_of(parse_client_first("n,,n=,r=abc,x=1,")), "Attribute expected, but found end of string.");
}

// ---- client-final-message ----

TEST(ScramClientFinal, Rfc7677Message) {
  const ClientFinal m = value_of(parse_client_final(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
  EXPECT_EQ(m.channel_binding, "n,,");
  EXPECT_EQ(m.nonce, "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  EXPECT_EQ(base64_encode(key_string(m.proof)), kProof);
  EXPECT_EQ(m.without_proof, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
}

TEST(ScramClientFinal, ChannelBindingDataIsDecoded) {
  const std::string cbind = "p=tls-server-end-point,,\x01\x02\xff"s;
  const ClientFinal m = value_of(parse_client_final("c=" + base64_encode(cbind) + ",r=abc,p=" + kProof));
  EXPECT_EQ(m.channel_binding, cbind);
}

TEST(ScramClientFinal, ExtensionsBeforeTheProofBelongToTheSignedPart) {
  const ClientFinal m = value_of(parse_client_final("c=biws,r=abc,x=1,z=,p=" + kProof));
  EXPECT_EQ(m.without_proof, "c=biws,r=abc,x=1,z=");
}

TEST(ScramClientFinal, Empty) { expect_malformed(failure_of(parse_client_final("")), "The message is empty."); }

TEST(ScramClientFinal, AttributesInOrder) {
  expect_malformed(failure_of(parse_client_final("r=abc,c=biws,p=" + kProof)),
                   "Expected attribute \"c\" but found \"'r'\".");
  expect_malformed(failure_of(parse_client_final("c=biws,p=" + kProof)), "Expected attribute \"r\" but found \"'p'\".");
}

TEST(ScramClientFinal, MissingProof) {
  expect_malformed(failure_of(parse_client_final("c=biws,r=abc")), "Attribute expected, but found end of string.");
  expect_malformed(failure_of(parse_client_final("c=biws,r=abc,x=1")), "Attribute expected, but found end of string.");
}

TEST(ScramClientFinal, MalformedProof) {
  for (const std::string& proof : {""s, "AAAA"s, kProof.substr(0, 40), kProof + "AAAA", "not base64 at all!!!"s,
                                   base64_encode(std::string(33, 'x')), base64_encode(std::string(31, 'x'))}) {
    expect_malformed(failure_of(parse_client_final("c=biws,r=abc,p=" + proof)),
                     "Malformed proof in client-final-message.");
  }
}

TEST(ScramClientFinal, NothingAfterTheProof) {
  expect_malformed(failure_of(parse_client_final("c=biws,r=abc,p=" + kProof + ",x=1")),
                   "Garbage found at the end of client-final-message.");
  expect_malformed(failure_of(parse_client_final("c=biws,r=abc,p=" + kProof + ",")),
                   "Garbage found at the end of client-final-message.");
}

TEST(ScramClientFinal, MalformedChannelBinding) {
  expect_malformed(failure_of(parse_client_final("c=biw,r=abc,p=" + kProof)),
                   "Malformed channel binding in client-final-message.");
}

// ---- server-first-message (read by ScramClient) ----

TEST(ScramServerFirst, Rfc7677Message) {
  const ServerFirst m = value_of(
      parse_server_first("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
  EXPECT_EQ(m.nonce, "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  EXPECT_EQ(m.salt, base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").value());
  EXPECT_EQ(m.iterations, 4096);
}

TEST(ScramServerFirst, Refusals) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "The message is empty."},
      {"s=c2FsdA==,r=abc,i=1", "Expected attribute \"r\" but found \"'s'\"."},
      {"m=x,r=abc,s=c2FsdA==,i=1", "Expected attribute \"r\" but found \"'m'\"."},
      {"r=,s=c2FsdA==,i=1", "Invalid nonce in server-first-message."},
      {"r=a\x01,s=c2FsdA==,i=1", "Invalid nonce in server-first-message."},
      {"r=abc,s=,i=1", "Invalid salt in server-first-message."},
      {"r=abc,s=c2FsdA=,i=1", "Invalid salt in server-first-message."},
      {"r=abc,i=1,s=c2FsdA==", "Expected attribute \"s\" but found \"'i'\"."},
      {"r=abc,s=c2FsdA==", "Expected attribute \"i\" but found \"0x00\"."},
      {"r=abc,s=c2FsdA==,i=", "Invalid iteration count in server-first-message."},
      {"r=abc,s=c2FsdA==,i=0", "Invalid iteration count in server-first-message."},
      {"r=abc,s=c2FsdA==,i=-1", "Invalid iteration count in server-first-message."},
      {"r=abc,s=c2FsdA==,i=4096x", "Invalid iteration count in server-first-message."},
      {"r=abc,s=c2FsdA==,i=99999999999", "Invalid iteration count in server-first-message."},
      {"r=abc,s=c2FsdA==,i=4096,x=1", "Garbage found at the end of server-first-message."},
      {"r=abc,s=c2FsdA==,i=4096,", "Garbage found at the end of server-first-message."},
  };
  for (const auto& [message, detail] : cases) {
    SCOPED_TRACE(message);
    expect_malformed(failure_of(parse_server_first(message)), detail);
  }
}

// ---- server-final-message (read by ScramClient) ----

TEST(ScramServerFinal, Signature) {
  const ScramKey signature = value_of(parse_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  EXPECT_EQ(base64_encode(key_string(signature)), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST(ScramServerFinal, ServerErrorIsAFailure) {
  const ScramFailure f = failure_of(parse_server_final("e=invalid-proof"));
  EXPECT_EQ(f.sqlstate, "28000");
  EXPECT_EQ(f.message, "error received from server in SCRAM exchange: invalid-proof");
}

TEST(ScramServerFinal, Refusals) {
  expect_malformed(failure_of(parse_server_final("")), "The message is empty.");
  expect_malformed(failure_of(parse_server_final("x=1")), "Expected attribute \"v\" but found \"'x'\".");
  expect_malformed(failure_of(parse_server_final("v=AAAA")), "Invalid server signature in server-final-message.");
  expect_malformed(failure_of(parse_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=1")),
                   "Garbage found at the end of server-final-message.");
}

}  // namespace
}  // namespace pgnap::auth
