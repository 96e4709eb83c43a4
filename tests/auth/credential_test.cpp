// Telling a stored secret's kind, as PostgreSQL's get_password_type() does, but for a broken
// SCRAM verifier, which is refused rather than taken for a password.
#include "auth/credential.h"

#include <gtest/gtest.h>

#include <string>

namespace pgnap::auth {
namespace {

const std::string kVerifier =
    "SCRAM-SHA-256$4096:xUv35rCwGy4LhMIbRKk04g==$LoGOamCuwWWqZS0Trr7h50dZrlFHM15U6bmVwf3QjUY=:"
    "bc1G1seESOy3FB6R+Gg8V2joPkjY7bzWMxqdGHVhak8=";

TEST(Credential, PlaintextPassword) {
  const auto c = parse_credential("pencil");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, Credential::Kind::kPassword);
  EXPECT_EQ(c->secret, "pencil");
  EXPECT_FALSE(c->scram);
}

TEST(Credential, Md5Hash) {
  const auto c = parse_credential("md50098e7fab7b4d8d091067152a80b3f12");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, Credential::Kind::kMd5);
  EXPECT_EQ(c->secret, "md50098e7fab7b4d8d091067152a80b3f12");
}

TEST(Credential, WhatIsAlmostAnMd5HashIsAPassword) {
  // As in PostgreSQL: only "md5" + 32 lower-case hex digits is a hash.
  for (const std::string text : {"md50098E7FAB7B4D8D091067152A80B3F12", "md50098e7fab7b4d8d091067152a80b3f1",
                                 "md50098e7fab7b4d8d091067152a80b3f123", "md5"}) {
    const auto c = parse_credential(text);
    ASSERT_TRUE(c) << text;
    EXPECT_EQ(c->kind, Credential::Kind::kPassword) << text;
  }
}

TEST(Credential, ScramVerifier) {
  const auto c = parse_credential(kVerifier);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, Credential::Kind::kScram);
  EXPECT_EQ(c->secret, kVerifier);
  ASSERT_TRUE(c->scram);
  EXPECT_EQ(c->scram->iterations, 4096);
}

TEST(Credential, ABrokenScramVerifierIsNotAPassword) {
  EXPECT_FALSE(parse_credential(kVerifier.substr(0, kVerifier.size() - 1)));
  EXPECT_FALSE(parse_credential("SCRAM-SHA-256$"));
  EXPECT_FALSE(parse_credential("SCRAM-SHA-256$4096:salt"));
  // Only the exact prefix makes a verifier: these are passwords (as for PostgreSQL).
  EXPECT_EQ(parse_credential("SCRAM-SHA-256").value().kind, Credential::Kind::kPassword);
  EXPECT_EQ(parse_credential("scram-sha-256$x").value().kind, Credential::Kind::kPassword);
}

TEST(Credential, EmptyIsNoCredential) { EXPECT_FALSE(parse_credential("")); }

TEST(Credential, KindNames) {
  EXPECT_EQ(to_string(Credential::Kind::kPassword), "password");
  EXPECT_EQ(to_string(Credential::Kind::kMd5), "md5");
  EXPECT_EQ(to_string(Credential::Kind::kScram), "scram-sha-256");
}

}  // namespace
}  // namespace pgnap::auth
