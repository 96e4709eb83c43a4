// PgBouncer's auth_file format (https://www.pgbouncer.org/config.html#authentication-file-format,
// src/loader.c load_auth_file()), with every broken line reported and the good ones kept.
#include "auth/auth_file.h"

#include <gtest/gtest.h>

#include <string>

namespace pgnap::auth {
namespace {

using namespace std::string_literals;

const std::string kVerifier =
    "SCRAM-SHA-256$4096:xUv35rCwGy4LhMIbRKk04g==$LoGOamCuwWWqZS0Trr7h50dZrlFHM15U6bmVwf3QjUY=:"
    "bc1G1seESOy3FB6R+Gg8V2joPkjY7bzWMxqdGHVhak8=";

std::string errors_of(const AuthFile& file) {
  std::string out;
  for (const auto& e : file.errors) out += std::to_string(e.line) + ": " + e.message + "\n";
  return out;
}

TEST(AuthFile, PgBouncersExample) {
  // One line of each kind PgBouncer's documentation lists: a plaintext password, an md5 hash,
  // a SCRAM verifier.
  const AuthFile file = parse_auth_file(
      "\"user1\" \"password1\"\n"
      "\"user2\" \"md5dbc8ac5a2a8ea5a8b1f02c3c0e3f5ea4\"\n"
      "\"user3\" \"" +
      kVerifier + "\"\n");
  EXPECT_TRUE(file.errors.empty()) << errors_of(file);
  ASSERT_EQ(file.entries.size(), 3u);
  EXPECT_EQ(file.entries[0].user, "user1");
  EXPECT_EQ(file.entries[0].credential.kind, Credential::Kind::kPassword);
  EXPECT_EQ(file.entries[0].credential.secret, "password1");
  EXPECT_EQ(file.entries[0].line, 1u);
  EXPECT_EQ(file.entries[1].credential.kind, Credential::Kind::kMd5);
  EXPECT_EQ(file.entries[1].line, 2u);
  EXPECT_EQ(file.entries[2].credential.kind, Credential::Kind::kScram);
  EXPECT_EQ(file.entries[2].credential.secret, kVerifier);
  ASSERT_TRUE(file.entries[2].credential.scram);
  EXPECT_EQ(file.entries[2].line, 3u);
}

TEST(AuthFile, DoubledQuotesAreOneQuote) {
  const AuthFile file = parse_auth_file("\"we\"\"ird\" \"p\"\"w\"\"\"\n\"\"\"\" \"\"\"\"\"\"\n");
  EXPECT_TRUE(file.errors.empty()) << errors_of(file);
  ASSERT_EQ(file.entries.size(), 2u);
  EXPECT_EQ(file.entries[0].user, "we\"ird");
  EXPECT_EQ(file.entries[0].credential.secret, "p\"w\"");
  EXPECT_EQ(file.entries[1].user, "\"");
  EXPECT_EQ(file.entries[1].credential.secret, "\"\"");
}

TEST(AuthFile, SpacesAndSemicolonsInsideQuotes) {
  const AuthFile file = parse_auth_file("\"a user\" \"; not a comment\"\n");
  ASSERT_EQ(file.entries.size(), 1u);
  EXPECT_EQ(file.entries[0].user, "a user");
  EXPECT_EQ(file.entries[0].credential.secret, "; not a comment");
}

TEST(AuthFile, CommentsAndBlankLines) {
  const AuthFile file = parse_auth_file(
      "; pgnap's users\n"
      "\n"
      "   \t\n"
      "  ; an indented comment\n"
      ";\"old\" \"password\"\n"
      "\"alice\" \"a\"\n"
      "\n");
  EXPECT_TRUE(file.errors.empty()) << errors_of(file);
  ASSERT_EQ(file.entries.size(), 1u);
  EXPECT_EQ(file.entries[0].user, "alice");
  EXPECT_EQ(file.entries[0].line, 6u);
}

TEST(AuthFile, ThirdFieldAndTheRestOfTheLineAreIgnored) {
  const AuthFile file = parse_auth_file(
      "\"alice\" \"a\" \"ignored\"\n"
      "\"bob\" \"b\" whatever ; comment\n"
      "\"carol\" \"c\"trailing\n");
  EXPECT_TRUE(file.errors.empty()) << errors_of(file);
  ASSERT_EQ(file.entries.size(), 3u);
  EXPECT_EQ(file.entries[0].credential.secret, "a");
  EXPECT_EQ(file.entries[1].credential.secret, "b");
  EXPECT_EQ(file.entries[2].credential.secret, "c");
}

TEST(AuthFile, LeadingWhitespaceAndWhatSeparatesTheFields) {
  // As PgBouncer: whitespace before the user, and anything up to the password's quote.
  const AuthFile file = parse_auth_file("  \t\"alice\"\t\t\"a\"\n\"bob\"\"b\"\n\"carol\" = \"c\"\n");
  ASSERT_EQ(file.entries.size(), 2u);
  EXPECT_EQ(file.entries[0].user, "alice");
  EXPECT_EQ(file.entries[1].user, "carol");
  // "bob""b" is the user bob"b, with no password after it.
  EXPECT_EQ(errors_of(file), "2: expected a quoted password after the user name\n");
}

TEST(AuthFile, BrokenLinesAreReportedWithTheirNumbersAndLaterLinesKept) {
  const AuthFile file = parse_auth_file(
      "\"alice\" \"a\"\n"                          // 1
      "bob \"b\"\n"                                // 2: user not quoted
      "\"carol \"c\"\n"                            // 3: the user is "carol ", then c, then a quote that never closes
      "\"dave\" \"d\n"                             // 4: password unterminated
      "\"erin\"\n"                                 // 5: no password
      "\"\" \"x\"\n"                               // 6: empty user
      "\"frank\" \"\"\n"                           // 7: empty password
      "\"grace\" \"SCRAM-SHA-256$4096:broken\"\n"  // 8: broken verifier
      "# not a comment here\n"                     // 9
      "\"heidi\" \"h\"\n"                          // 10
      "\"ivan");                                   // 11: unterminated user, no final newline
  ASSERT_EQ(file.entries.size(), 2u);
  EXPECT_EQ(file.entries[0].user, "alice");
  EXPECT_EQ(file.entries[1].user, "heidi");
  EXPECT_EQ(file.entries[1].line, 10u);
  EXPECT_EQ(errors_of(file),
            "2: expected a quoted user name\n"
            "3: unterminated quote in the password\n"
            "4: unterminated quote in the password\n"
            "5: expected a quoted password after the user name\n"
            "6: empty user name\n"
            "7: empty password (PostgreSQL accepts no empty password)\n"
            "8: invalid SCRAM verifier (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)\n"
            "9: expected a quoted user name\n"
            "11: unterminated quote in the user name\n");
}

TEST(AuthFile, AQuotedFieldEndsWithItsLine) {
  const AuthFile file = parse_auth_file("\"alice\" \"multi\nline\"\n\"bob\" \"b\"\n");
  ASSERT_EQ(file.entries.size(), 1u);
  EXPECT_EQ(file.entries[0].user, "bob");
  ASSERT_EQ(file.errors.size(), 2u);
  EXPECT_EQ(file.errors[0].line, 1u);
  EXPECT_EQ(file.errors[1].line, 2u);
}

TEST(AuthFile, UserListedTwiceLastWins) {
  const AuthFile file = parse_auth_file("\"alice\" \"old\"\n\"bob\" \"b\"\n\"alice\" \"new\"\n");
  EXPECT_TRUE(file.errors.empty()) << errors_of(file);
  ASSERT_EQ(file.entries.size(), 2u);
  EXPECT_EQ(file.entries[0].user, "bob");
  EXPECT_EQ(file.entries[1].user, "alice");
  EXPECT_EQ(file.entries[1].credential.secret, "new");
  EXPECT_EQ(file.entries[1].line, 3u);
}

TEST(AuthFile, ABrokenLineDoesNotReplaceAnEarlierEntry) {
  const AuthFile file = parse_auth_file("\"alice\" \"old\"\n\"alice\" \"\"\n");
  ASSERT_EQ(file.entries.size(), 1u);
  EXPECT_EQ(file.entries[0].credential.secret, "old");
  ASSERT_EQ(file.errors.size(), 1u);
  EXPECT_EQ(file.errors[0].line, 2u);
}

TEST(AuthFile, CrlfLineEnds) {
  const AuthFile file = parse_auth_file("; users\r\n\"alice\" \"a\"\r\n\r\n\"bob\" \"" + kVerifier + "\"\r\n");
  EXPECT_TRUE(file.errors.empty()) << errors_of(file);
  ASSERT_EQ(file.entries.size(), 2u);
  EXPECT_EQ(file.entries[0].credential.secret, "a");
  EXPECT_EQ(file.entries[1].credential.kind, Credential::Kind::kScram);
  EXPECT_EQ(file.entries[1].line, 4u);
}

TEST(AuthFile, LongFields) {
  const std::string max(1000, 'x');
  const std::string over(1001, 'x');
  const AuthFile file = parse_auth_file("\"" + max + "\" \"" + max + "\"\n\"" + over + "\" \"p\"\n\"u\" \"" + over +
                                        "\"\n");
  ASSERT_EQ(file.entries.size(), 1u);
  EXPECT_EQ(file.entries[0].user, max);
  EXPECT_EQ(errors_of(file), "2: user name longer than 1000 bytes\n3: password longer than 1000 bytes\n");
}

TEST(AuthFile, NulByte) {
  const AuthFile file = parse_auth_file("\"al\0ice\" \"a\"\n\"bob\" \"b\"\n"s);
  ASSERT_EQ(file.entries.size(), 1u);
  EXPECT_EQ(errors_of(file), "1: NUL byte in the line\n");
}

TEST(AuthFile, EmptyFile) {
  EXPECT_TRUE(parse_auth_file("").entries.empty());
  EXPECT_TRUE(parse_auth_file("").errors.empty());
  EXPECT_TRUE(parse_auth_file("\n\n").entries.empty());
}

}  // namespace
}  // namespace pgnap::auth
