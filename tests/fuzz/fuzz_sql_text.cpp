// libFuzzer target for protocol::is_single_statement(): on any text, a crash or a read out of
// bounds is a bug, and so is an answer that contradicts itself when the text is extended —
// what decides whether a recorded PREPARE may be replayed on another connection:
//  - text that is one statement stays one after "\n;" (a line comment ends at the newline,
//    and a top-level semicolon may follow a statement);
//  - and becomes two after "\n; select 1";
//  - text inside a comment is no statement at all: in a line comment (when it holds no line
//    end) or a block comment (when it holds no comment delimiter), the whole is one statement.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/sql_text.h"

using pgnap::protocol::is_single_statement;

namespace {

void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_sql_text.cpp:%d: invariant broken\n", line);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool single = is_single_statement(text);
  check(single == is_single_statement(text));
  if (single) {
    check(is_single_statement(text + "\n;"));
    check(!is_single_statement(text + "\n; select 1"));
  }
  if (text.find('\n') == std::string::npos && text.find('\r') == std::string::npos) {
    check(is_single_statement("-- " + text));
  }
  // Inside a block comment, only a comment delimiter in the text can matter.
  if (text.find("/*") == std::string::npos && text.find("*/") == std::string::npos) {
    check(is_single_statement("/* " + text + " */"));
  }
  return 0;
}
