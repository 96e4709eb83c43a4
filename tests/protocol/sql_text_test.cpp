// protocol::is_single_statement (protocol/sql_text.h): the check that keeps a PREPARE recorded
// with a multi-statement query's text from running twice when a parked session is restored.
#include "protocol/sql_text.h"

#include <gtest/gtest.h>

namespace pgnap::protocol {
namespace {

TEST(SingleStatementTest, OneStatementWithOrWithoutItsSemicolonsCommentsAndWhitespace) {
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT 1"));
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT 1;"));
  EXPECT_TRUE(is_single_statement("  PREPARE p AS SELECT 1 ; ;\n -- done\n /* really */ "));
  EXPECT_TRUE(is_single_statement("PREPARE p (int) AS SELECT $1 + 1"));
}

TEST(SingleStatementTest, SemicolonsInsideQuotesDollarQuotesAndCommentsDoNotEndTheStatement) {
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT 'a;b', 'it''s; fine'"));
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT E'\\'; still inside'"));
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT \"odd;name\" FROM t"));
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT $$a;b$$, $tag$ ; $$ ; $tag$"));
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT 1 /* a; /* nested; */ b; */ + 2"));
  EXPECT_TRUE(is_single_statement("PREPARE p AS SELECT 1 -- trailing; comment"));
}

TEST(SingleStatementTest, TwoStatementsOrAnUnterminatedQuoteAreNotOne) {
  EXPECT_FALSE(is_single_statement("select 1; PREPARE p2 AS select 2; select 3"));
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT 1; DELETE FROM t"));
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT 'a';'b'"));
  // A backslash does not escape in a standard string: the quote after it ends the string.
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT 'a\\'; DELETE FROM t; SELECT ''"));
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT $x$; unterminated"));
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT 'open"));
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT 1 /* open"));
  // $1 is a parameter, not a dollar quote: the semicolon after it ends the statement.
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT $1; SELECT $1"));
  // A line comment ends at a carriage return too.
  EXPECT_FALSE(is_single_statement("PREPARE p AS SELECT 1 -- note\r; DELETE FROM t"));
}

}  // namespace
}  // namespace pgnap::protocol
