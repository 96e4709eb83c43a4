// What pgnap needs to know of SQL text it did not write: whether a query string holds one
// statement. Used on the statement text PostgreSQL records for a SQL-level PREPARE, which is
// the whole query string the PREPARE came in (daemon/session_state.h): replaying a
// multi-statement string would run its other statements again.
#pragma once

#include <string_view>

namespace pgnap::protocol {

// Whether `sql` is one statement: a trailing semicolon, whitespace and comments allowed.
// Lexes what can hide a semicolon, as PostgreSQL's scanner does: '' strings (quotes doubled),
// E'' strings (backslash escapes), "" identifiers, dollar quotes ($$, $tag$), -- and nested
// /* */ comments. An unterminated quote or comment is not one statement.
[[nodiscard]] bool is_single_statement(std::string_view sql);

}  // namespace pgnap::protocol
