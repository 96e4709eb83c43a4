// PostgreSQL's stored SCRAM verifier, and the tls-server-end-point channel binding data.
// Expected verifiers: two stored by PostgreSQL 15 (CREATE ROLE ... PASSWORD with
// password_encryption = 'scram-sha-256', read from pg_authid.rolpassword), the others computed
// with Python's hashlib (pbkdf2_hmac, hmac, sha256).
#include <openssl/obj_mac.h>

#include <gtest/gtest.h>

#include <string>

#include "auth/base64.h"
#include "auth/scram.h"

namespace pgnap::auth {
namespace {

using namespace std::string_literals;

std::string unbase64(std::string_view text) { return base64_decode(text).value(); }

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

struct Known {
  std::string password;
  std::string salt_base64;
  int iterations;
  std::string verifier;
};

const Known kKnown[] = {
    // Stored by PostgreSQL 15.
    {"pencil", "xUv35rCwGy4LhMIbRKk04g==", 4096,
     "SCRAM-SHA-256$4096:xUv35rCwGy4LhMIbRKk04g==$LoGOamCuwWWqZS0Trr7h50dZrlFHM15U6bmVwf3QjUY=:"
     "bc1G1seESOy3FB6R+Gg8V2joPkjY7bzWMxqdGHVhak8="},
    {"p@ss w\"rd;", "FyEB/UXQYzNymtP0xEwaYQ==", 4096,
     "SCRAM-SHA-256$4096:FyEB/UXQYzNymtP0xEwaYQ==$VAko+53tWmD7l4SA3wOwrkWzfdgM7lR6DE6fznzL6TI=:"
     "R7VZpyMa2Z3OC78DB0eN5g5X0LtMNE9z+FNLbeWxZ/Q="},
    // RFC 7677 section 3's salt, as the exchange tests use it.
    {"pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096,
     "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="},
    // From hashlib.
    {"secret", "AAECAwQFBgcICQoLDA0ODw==", 4096,
     "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$THoPhoTAuqyoQsK4dUHncUzgfD8fdmhsgKZhWVqNP5U=:"
     "7YiHMMi2OcXGRogub03Ek06JRZ9bkhTOdCzHa5iPLiQ="},
    {"x", "c2FsdA==", 1,
     "SCRAM-SHA-256$1:c2FsdA==$LzZnpJx9nyllHcButE6xdMfvR0D6Q/nY1+IfZB/t0N0=:"
     "DHjdQWhf2UfGb66KdZjVrwxEI6+FrasCnM9Yoswga4o="},
    {"correct horse battery staple", "/////////////////////w==", 10000,
     "SCRAM-SHA-256$10000://///////////////////w==$elkrNfSvEVTfGs3F+6bIHXZykl2DtbUKhy+ntylGC4U=:"
     "i3CWV5AY+rMtGXBj1IqQSRR6m8JhWIgBn9aQ0hJ2Eyc="},
};

TEST(ScramVerifier, MakeMatchesPostgresqlAndHashlib) {
  for (const Known& k : kKnown) {
    const ScramVerifier made = make_scram_verifier(k.password, unbase64(k.salt_base64), k.iterations);
    EXPECT_EQ(format_scram_verifier(made), k.verifier) << k.password;
  }
}

TEST(ScramVerifier, ParseThenFormatGivesTheTextBack) {
  for (const Known& k : kKnown) {
    const auto parsed = parse_scram_verifier(k.verifier);
    ASSERT_TRUE(parsed) << k.verifier;
    EXPECT_EQ(parsed->iterations, k.iterations);
    EXPECT_EQ(parsed->salt, unbase64(k.salt_base64));
    EXPECT_EQ(format_scram_verifier(*parsed), k.verifier);
    EXPECT_EQ(*parsed, make_scram_verifier(k.password, parsed->salt, parsed->iterations));
  }
}

TEST(ScramVerifier, ParseReadsEachField) {
  const auto v = parse_scram_verifier(kKnown[2].verifier);
  ASSERT_TRUE(v);
  EXPECT_EQ(base64_encode(std::string(v->stored_key.begin(), v->stored_key.end())),
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=");
  EXPECT_EQ(base64_encode(std::string(v->server_key.begin(), v->server_key.end())),
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
}

TEST(ScramVerifier, ParseRefusesAnythingButTheExactForm) {
  const std::string good = kKnown[2].verifier;
  const std::string key = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
  const std::string tail = "$" + key + ":" + key;
  for (const std::string& bad : {
           ""s,
           "SCRAM-SHA-256$"s,
           "scram-sha-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,  // prefix is case-sensitive
           "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,
           "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,  // iterations >= 1
           "SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,
           "SCRAM-SHA-256$+4096:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,
           "SCRAM-SHA-256$04096:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,  // not as PostgreSQL writes it
           "SCRAM-SHA-256$ 4096:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,
           "SCRAM-SHA-256$2147483648:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,  // above INT_MAX
           "SCRAM-SHA-256$4096x:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,
           "SCRAM-SHA-256$:W22ZaJ0SNY7soEsUEjb6gQ==" + tail,
           "SCRAM-SHA-256$4096:" + tail,                                                // empty salt
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=" + tail,                         // bad base64
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key.substr(4) + ":" + key,  // short key
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key + "AAAA",   // long key
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key,                        // one key
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":",
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + ":" + key + ":" + key,
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + key + "$" + key,
           "SCRAM-SHA-256$4096W22ZaJ0SNY7soEsUEjb6gQ==" + tail,
           good + " ",
           " " + good,
           good + "\n",
       }) {
    EXPECT_FALSE(parse_scram_verifier(bad)) << bad;
  }
  EXPECT_TRUE(parse_scram_verifier(good));
}

TEST(ScramVerifier, IterationsUpToIntMax) {
  const std::string key = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
  const auto v = parse_scram_verifier("SCRAM-SHA-256$2147483647:c2FsdA==$" + key + ":" + key);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 2147483647);
}

TEST(ScramVerifier, AnyNonEmptySaltLength) {
  // PostgreSQL writes 16 bytes, but reads any (a salt from another tool keeps working).
  const ScramVerifier v = make_scram_verifier("pencil", "s", 2);
  EXPECT_EQ(parse_scram_verifier(format_scram_verifier(v)), v);
}

TEST(ScramVerifier, NoIterationsMakesAVerifierThatDoesNotParse) {
  const ScramVerifier v = make_scram_verifier("pencil", "0123456789abcdef", 0);
  EXPECT_EQ(v.iterations, 0);
  EXPECT_FALSE(parse_scram_verifier(format_scram_verifier(v)));
}

// Digests of "abc" from FIPS 180-2 (and hashlib).
constexpr const char* kSha256Abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(ScramTlsServerEndPoint, HashesWithTheSignaturesDigest) {
  EXPECT_EQ(hex(tls_server_end_point("abc", NID_sha256).value()), kSha256Abc);
  EXPECT_EQ(hex(tls_server_end_point("abc", NID_sha384).value()),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(tls_server_end_point("abc", NID_sha512).value().size(), 64u);
}

TEST(ScramTlsServerEndPoint, Md5AndSha1BecomeSha256) {
  // RFC 5929 section 4.1.
  EXPECT_EQ(hex(tls_server_end_point("abc", NID_md5).value()), kSha256Abc);
  EXPECT_EQ(hex(tls_server_end_point("abc", NID_sha1).value()), kSha256Abc);
}

TEST(ScramTlsServerEndPoint, NoDigestNoBinding) {
  EXPECT_FALSE(tls_server_end_point("abc", NID_undef));
  EXPECT_FALSE(tls_server_end_point("abc", NID_ED25519));   // signs without a separate hash
  EXPECT_FALSE(tls_server_end_point("abc", NID_shake256));  // no fixed output size
  EXPECT_FALSE(tls_server_end_point("abc", -5));
  EXPECT_FALSE(tls_server_end_point("abc", NID_rsaEncryption));
}

}  // namespace
}  // namespace pgnap::auth
