// The guard in front of toml++ (config/toml_guard.h): a scan of the text that follows TOML's
// grammar, then a parse of an all-ASCII copy, so that toml++ never reads the original's
// non-ASCII text where its bug lies.
#include "config/toml_guard.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace pgnap::config::detail {
namespace {

// toml++ 3.3 (Debian bookworm's) asks whether a non-ASCII character is whitespace wherever
// whitespace may come, and for many (U+00A1 to U+0499 among them: "é = 1") that question
// reaches __builtin_unreachable(), undefined behaviour (marzer/tomlplusplus#190 and #295;
// found by tests/fuzz/fuzz_config). TOML allows non-ASCII only in strings and comments, so
// such a character anywhere else is refused here, before toml++ reads the text. So is one
// that a multi-line basic string puts right after a backslash: an invalid escape, or the
// first character after a line-ending backslash (valid TOML, but toml++ misreads it). A quote
// starts a string only where TOML allows one (toml++ reads `0"x` as one bad value).
std::optional<ConfigError> check_non_ascii(std::string_view text, const std::string& source) {
  enum class In { kCode, kComment, kString, kLiteral, kMultiString, kMultiLiteral };
  In in = In::kCode;
  bool escaped = false;   // the previous character was a backslash in a basic string
  bool trimming = false;  // after a line-ending backslash, before the next character
  char last = '\n';       // the last character outside strings, but for spaces and comments
  std::uint32_t line = 1;
  std::uint32_t column = 0;  // in characters, as toml++ counts them
  auto error = [&](std::string_view what) { return ConfigError{source, line, column, {}, std::string(what)}; };
  auto space = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  // The number of `q` characters from `i` on.
  auto run_of = [&](std::size_t i, char q) {
    std::size_t n = 0;
    while (i + n < text.size() && text[i + n] == q) ++n;
    return n;
  };
  const std::size_t start = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 byte order mark
  for (std::size_t i = start; i < text.size(); ++i) {
    if (i > start && text[i - 1] == '\n') {
      ++line;
      column = 0;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) ++column;  // not a UTF-8 continuation byte
    const bool multi = in == In::kMultiString;
    if (escaped) {
      escaped = false;
      if (multi && c >= 0x80) return error("a backslash followed by a non-ASCII character is not a valid escape");
      trimming = multi && space(c);
      continue;
    }
    if (trimming) {
      if (space(c)) continue;
      if (c >= 0x80) {
        return error(
            "the first character after a line-ending backslash must be ASCII: put the non-ASCII text "
            "on the backslash's line, or drop the backslash");
      }
      trimming = false;
    }
    switch (in) {
      case In::kCode:
        if (c == ' ' || c == '\t' || c == '\r') break;
        if (c >= 0x80) return error("non-ASCII character outside a string or a comment");
        if (c == '#') {
          in = In::kComment;
          break;
        }
        // Keys start lines or follow '.', '{' or ','; values follow '=', '[' or ','.
        if ((c == '"' || c == '\'') && std::string_view("\n.{,=[").find(last) != std::string_view::npos) {
          const std::size_t n = std::min<std::size_t>(run_of(i, static_cast<char>(c)), 3);
          if (n != 2) {  // "" and '' are empty strings
            in = c == '"' ? (n == 3 ? In::kMultiString : In::kString) : (n == 3 ? In::kMultiLiteral : In::kLiteral);
          }
          i += n - 1;
          column += static_cast<std::uint32_t>(n - 1);
        }
        last = static_cast<char>(c);
        break;
      case In::kComment:
      case In::kString:
      case In::kLiteral:
        if (c == '\n') {  // a string cannot span lines: toml++ reports it
          in = In::kCode;
          last = '\n';
        }
        if (in == In::kString && c == '\\') escaped = true;
        if ((in == In::kString && c == '"') || (in == In::kLiteral && c == '\'')) in = In::kCode;
        break;
      case In::kMultiString:
      case In::kMultiLiteral: {
        if (multi && c == '\\') {
          escaped = true;
          break;
        }
        const char q = multi ? '"' : '\'';
        if (c != static_cast<unsigned char>(q)) break;
        // Three quotes end the string; up to two more before them belong to it.
        const std::size_t n = run_of(i, q);
        if (n >= 3) in = In::kCode;
        i += n - 1;
        column += static_cast<std::uint32_t>(n - 1);
        break;
      }
    }
  }
  return std::nullopt;
}

// check_non_ascii follows TOML's grammar, not toml++'s error recovery, which reads some
// invalid values past a quote ("e=0[[\"н"). So toml++ first reads a copy in which every
// non-ASCII character is an ASCII '?' (one character for one: positions stay right): if
// that copy is not valid TOML, neither is the file, and toml++ never sees the original's
// non-ASCII text outside a string or a comment.
std::optional<ConfigError> check_ascii_copy(std::string_view text, const std::string& source) {
  if (std::none_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return std::nullopt;
  }
  std::string probe;
  probe.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      probe += c;
    } else if ((u & 0xC0) != 0x80) {
      probe += '?';  // the lead byte of a character; its continuation bytes are dropped
    }
  }
  try {
    (void)toml::parse(probe, std::string_view(source));
  } catch (const toml::parse_error& e) {
    return ConfigError{source,
                       static_cast<std::uint32_t>(e.source().begin.line),
                       static_cast<std::uint32_t>(e.source().begin.column),
                       {},
                       std::string(e.description()) +
                           " (non-ASCII characters are allowed only in strings and comments)"};
  }
  return std::nullopt;
}

}  // namespace

std::optional<ConfigError> check_tomlpp_safe(std::string_view text, const std::string& source) {
  if (std::optional<ConfigError> error = check_non_ascii(text, source)) return error;
  return check_ascii_copy(text, source);
}

}  // namespace pgnap::config::detail
