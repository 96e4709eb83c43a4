// PgBouncer's auth_file, read as its load_auth_file() (src/loader.c) reads it: leading
// whitespace skipped, ';' starts a comment line, the user name and the password each in
// double quotes with "" for a quote inside, anything between the two fields up to the
// password's opening quote skipped, and the rest of the line after the password ignored.
//
// Where pgnap differs, it is to report rather than guess:
// - PgBouncer stops at the first broken line ("broken auth file") and keeps what it read so
//   far; pgnap reports every broken line with its number and keeps all the good ones.
// - A quoted field ends on its own line (PgBouncer would read on into the next lines).
// - An empty user name or password, a NUL byte, a field above 1000 bytes, and a
//   "SCRAM-SHA-256$..." that does not parse are errors. An empty password in particular is
//   refused, not skipped in silence: PostgreSQL never accepts one, so the line is a mistake.
// A user listed twice keeps the last line, as in PgBouncer (where a later line overwrites).
#include "auth/auth_file.h"

#include <optional>
#include <string>
#include <unordered_map>

namespace pgnap::auth {

namespace {

constexpr std::size_t kMaxFieldLength = 1000;

// isspace() in the C locale, as PgBouncer skips at a line's start.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// The field whose opening quote is at `pos`, with "" read as one quote; `pos` ends after the
// closing quote. nullopt when the line ends first.
std::optional<std::string> read_quoted(std::string_view line, std::size_t& pos) {
  std::string out;
  for (std::size_t i = pos + 1; i < line.size(); ++i) {
    if (line[i] != '"') {
      out.push_back(line[i]);
    } else if (i + 1 < line.size() && line[i + 1] == '"') {
      out.push_back('"');
      ++i;
    } else {
      pos = i + 1;
      return out;
    }
  }
  return std::nullopt;
}

// One line that is neither blank nor a comment: an entry, or what is wrong with it.
struct LineResult {
  std::optional<AuthFileEntry> entry;
  std::string error;
};

LineResult parse_line(std::string_view line, std::size_t start) {
  LineResult r;
  if (line.find('\0') != std::string_view::npos) {
    r.error = "NUL byte in the line";
    return r;
  }
  std::size_t pos = start;
  if (line[pos] != '"') {
    r.error = "expected a quoted user name";
    return r;
  }
  auto user = read_quoted(line, pos);
  if (!user) {
    r.error = "unterminated quote in the user name";
    return r;
  }
  if (user->empty()) {
    r.error = "empty user name";
    return r;
  }
  if (user->size() > kMaxFieldLength) {
    r.error = "user name longer than " + std::to_string(kMaxFieldLength) + " bytes";
    return r;
  }
  pos = line.find('"', pos);
  if (pos == std::string_view::npos) {
    r.error = "expected a quoted password after the user name";
    return r;
  }
  auto password = read_quoted(line, pos);
  if (!password) {
    r.error = "unterminated quote in the password";
    return r;
  }
  if (password->empty()) {
    r.error = "empty password (PostgreSQL accepts no empty password)";
    return r;
  }
  if (password->size() > kMaxFieldLength) {
    r.error = "password longer than " + std::to_string(kMaxFieldLength) + " bytes";
    return r;
  }
  auto credential = parse_credential(*password);
  if (!credential) {
    // Not empty, so it began with "SCRAM-SHA-256$" and did not parse.
    r.error = "invalid SCRAM verifier (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)";
    return r;
  }
  r.entry = AuthFileEntry{std::move(*user), std::move(*credential), 0};
  return r;
}

}  // namespace

AuthFile parse_auth_file(std::string_view text) {
  AuthFile file;
  std::unordered_map<std::string, std::size_t> index_of_user;  // into file.entries
  std::vector<bool> superseded;

  std::size_t line_number = 0;
  std::size_t begin = 0;
  while (begin < text.size()) {
    ++line_number;
    const std::size_t newline = text.find('\n', begin);
    const std::size_t end = newline == std::string_view::npos ? text.size() : newline;
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;

    std::size_t start = 0;
    while (start < line.size() && is_space(line[start])) ++start;
    if (start == line.size() || line[start] == ';') continue;

    LineResult r = parse_line(line, start);
    if (!r.entry) {
      file.errors.push_back({line_number, std::move(r.error)});
      continue;
    }
    r.entry->line = line_number;
    const auto [it, inserted] = index_of_user.try_emplace(r.entry->user, file.entries.size());
    if (!inserted) {
      superseded[it->second] = true;
      it->second = file.entries.size();
    }
    file.entries.push_back(std::move(*r.entry));
    superseded.push_back(false);
  }

  std::vector<AuthFileEntry> kept;
  kept.reserve(file.entries.size());
  for (std::size_t i = 0; i < file.entries.size(); ++i) {
    if (!superseded[i]) kept.push_back(std::move(file.entries[i]));
  }
  file.entries = std::move(kept);
  return file;
}

}  // namespace pgnap::auth
