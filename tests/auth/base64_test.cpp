// Base64: the RFC 4648 section 10 test vectors both ways, and the strictness that makes every
// accepted text the one encoding of its bytes.
#include "auth/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace pgnap::auth {
namespace {

using namespace std::string_literals;

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, DecodesTheRfc4648Vectors) {
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm9v"), "foo");
  EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
  EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(base64_decode("Zm9vYmFy"), "foobar");
}

TEST(Base64, UsesPlusAndSlashAndKeepsBinaryBytes) {
  const std::string bytes = "\xfb\xff\xbf\x00\x01"s;
  EXPECT_EQ(base64_encode(bytes), "+/+/AAE=");
  EXPECT_EQ(base64_decode("+/+/AAE="), bytes);
}

TEST(Base64, RoundTripsEveryByteValueAndLength) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(static_cast<char>(i));
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes) << i;
  }
}

TEST(Base64, RefusesCharactersOutsideTheAlphabet) {
  EXPECT_FALSE(base64_decode("Zm9*"));
  EXPECT_FALSE(base64_decode("Zm9-"));  // base64url's alphabet is not accepted
  EXPECT_FALSE(base64_decode("Zm9_"));
  EXPECT_FALSE(base64_decode("Zm\x80v"));
  EXPECT_FALSE(base64_decode("Zm9v\0\0\0\0"s));
}

TEST(Base64, RefusesWhitespaceAnywhere) {
  EXPECT_FALSE(base64_decode(" Zm9v"));
  EXPECT_FALSE(base64_decode("Zm9v "));
  EXPECT_FALSE(base64_decode("Zm9v\nYmFy"));
  EXPECT_FALSE(base64_decode("Zm 9v"));
  EXPECT_FALSE(base64_decode("Zm9vYg==\r\n"));
}

TEST(Base64, RefusesMissingOrMisplacedPadding) {
  EXPECT_FALSE(base64_decode("Zg"));  // unpadded
  EXPECT_FALSE(base64_decode("Zm8"));
  EXPECT_FALSE(base64_decode("Zg="));    // short
  EXPECT_FALSE(base64_decode("Zg==="));  // too much
  EXPECT_FALSE(base64_decode("Z==="));   // three pads
  EXPECT_FALSE(base64_decode("===="));
  EXPECT_FALSE(base64_decode("Zg==Zm9v"));  // padding before the end
  EXPECT_FALSE(base64_decode("Zm=v"));      // '=' inside a quantum
  EXPECT_FALSE(base64_decode("Z"));
}

TEST(Base64, RefusesNonZeroBitsUnderThePadding) {
  // "Zh==" and "Zm9=" decode to the same bytes as "Zg==" and "Zm8=" with the unused bits set:
  // a second spelling of the same value.
  EXPECT_FALSE(base64_decode("Zh=="));
  EXPECT_FALSE(base64_decode("Zm9="));
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
}

}  // namespace
}  // namespace pgnap::auth
