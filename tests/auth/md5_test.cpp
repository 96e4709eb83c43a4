// PostgreSQL's md5 method. Expected hashes from Python's hashlib and from PostgreSQL 15 itself
// (SET password_encryption = 'md5'; CREATE ROLE md5user PASSWORD 'pencil').
#include "auth/md5.h"

#include <gtest/gtest.h>

#include <string>

namespace pgnap::auth {
namespace {

TEST(Md5, HexOfKnownInputs) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");  // RFC 1321 appendix A.5
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Md5, PasswordHashIsMd5OfPasswordThenUser) {
  // hashlib.md5(b"penciluser").hexdigest()
  EXPECT_EQ(md5_password_hash("pencil", "user"), "md520c46e3762c864548e296b33c3406aa9");
  EXPECT_EQ(md5_password_hash("foo", "bar"), "md53858f62230ac3c915f300c664312c63f");
}

TEST(Md5, PasswordHashMatchesWhatPostgresqlStored) {
  EXPECT_EQ(md5_password_hash("pencil", "md5user"), "md50098e7fab7b4d8d091067152a80b3f12");
}

TEST(Md5, ResponseToASalt) {
  // "md5" + md5hex(md5hex(b"penciluser") + b"\x01\x02\x03\x04"), from hashlib.
  const Md5Salt salt{1, 2, 3, 4};
  EXPECT_EQ(md5_response("md520c46e3762c864548e296b33c3406aa9", salt), "md54376eb6913b38f9aaff38dc7cf19ca76");
}

TEST(Md5, VerifyAcceptsTheRightResponse) {
  const std::string stored = md5_password_hash("pencil", "user");
  const Md5Salt salt{0xde, 0xad, 0xbe, 0xef};
  EXPECT_TRUE(md5_verify(stored, salt, md5_response(stored, salt)));
}

TEST(Md5, VerifyRefusesAWrongResponse) {
  const std::string stored = md5_password_hash("pencil", "user");
  const Md5Salt salt{0xde, 0xad, 0xbe, 0xef};
  const std::string right = md5_response(stored, salt);
  // Another salt, another password, a truncated or extended answer, nothing at all.
  EXPECT_FALSE(md5_verify(stored, Md5Salt{0xde, 0xad, 0xbe, 0xee}, right));
  EXPECT_FALSE(md5_verify(md5_password_hash("pencil2", "user"), salt, right));
  EXPECT_FALSE(md5_verify(stored, salt, right.substr(0, right.size() - 1)));
  EXPECT_FALSE(md5_verify(stored, salt, right + "0"));
  EXPECT_FALSE(md5_verify(stored, salt, ""));
  std::string flipped = right;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(md5_verify(stored, salt, flipped));
  // The stored hash itself is not an answer (it would be a pass-the-hash).
  EXPECT_FALSE(md5_verify(stored, salt, stored));
}

TEST(Md5, VerifyRefusesWhenTheStoredValueIsNoHash) {
  const Md5Salt salt{1, 2, 3, 4};
  EXPECT_EQ(md5_response("pencil", salt), "");
  EXPECT_FALSE(md5_verify("pencil", salt, ""));
  EXPECT_FALSE(md5_verify("", salt, ""));
}

TEST(Md5, IsMd5HashEdgeCases) {
  EXPECT_TRUE(is_md5_hash("md520c46e3762c864548e296b33c3406aa9"));
  EXPECT_TRUE(is_md5_hash("md5" + std::string(32, '0')));
  EXPECT_FALSE(is_md5_hash("md520C46E3762C864548E296B33C3406AA9"));   // upper case: a password to PostgreSQL
  EXPECT_FALSE(is_md5_hash("md520c46e3762c864548e296b33c3406aa"));    // 31 digits
  EXPECT_FALSE(is_md5_hash("md520c46e3762c864548e296b33c3406aa90"));  // 33 digits
  EXPECT_FALSE(is_md5_hash("md520c46e3762c864548e296b33c3406aag"));   // not hex
  EXPECT_FALSE(is_md5_hash("MD520c46e3762c864548e296b33c3406aa9"));
  EXPECT_FALSE(is_md5_hash("sha20c46e3762c864548e296b33c3406aa9"));
  EXPECT_FALSE(is_md5_hash("md5"));
  EXPECT_FALSE(is_md5_hash(""));
  EXPECT_FALSE(is_md5_hash(" md520c46e3762c864548e296b33c3406aa9"));
}

}  // namespace
}  // namespace pgnap::auth
