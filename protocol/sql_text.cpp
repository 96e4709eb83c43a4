#include "protocol/sql_text.h"

#include <cctype>

namespace pgnap::protocol {

namespace {

bool is_identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$'; }

// At `sql[i]` == '$': the length of a dollar-quote tag ("$$", "$tag$"), or 0 if none starts here.
std::size_t dollar_tag(std::string_view sql, std::size_t i) {
  if (i > 0 && is_identifier_char(sql[i - 1])) return 0;  // "$1" or part of an identifier
  std::size_t j = i + 1;
  if (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) return 0;
  while (j < sql.size() && sql[j] != '$') {
    if (!is_identifier_char(sql[j]) || sql[j] == '$') return 0;
    ++j;
  }
  return j < sql.size() ? j - i + 1 : 0;
}

}  // namespace

bool is_single_statement(std::string_view sql) {
  bool ended = false;  // a top-level ';' has been seen: only whitespace, comments and ';' may follow
  for (std::size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
    if (c == '-' && next == '-') {
      while (i < sql.size() && sql[i] != '\n' && sql[i] != '\r') ++i;  // either ends it, as in PostgreSQL
      continue;
    }
    if (c == '/' && next == '*') {  // comments nest
      int depth = 0;
      while (i < sql.size()) {
        if (sql[i] == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < sql.size() && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
      if (depth != 0) return false;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      ++i;
      continue;
    }
    if (c == ';') {
      ended = true;
      ++i;
      continue;
    }
    if (ended) return false;  // a second statement
    if (c == '\'' || c == '"') {
      // E'...' takes backslash escapes; '' and "" double their quote.
      const bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i < 2 || !is_identifier_char(sql[i - 2]));
      std::size_t j = i + 1;
      for (;;) {
        if (j >= sql.size()) return false;  // unterminated
        if (escapes && sql[j] == '\\') {
          j += 2;
          continue;
        }
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      i = j + 1;
      continue;
    }
    if (c == '$') {
      if (const std::size_t tag = dollar_tag(sql, i); tag > 0) {
        const std::size_t close = sql.find(sql.substr(i, tag), i + tag);
        if (close == std::string_view::npos) return false;
        i = close + tag;
        continue;
      }
    }
    ++i;
  }
  return true;
}

}  // namespace pgnap::protocol
