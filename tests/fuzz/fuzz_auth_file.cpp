// libFuzzer target for parse_auth_file(): on any text, every entry and error names a line of
// the text, in order, at most one report per line; users are unique, within bounds, and their
// credentials are what parse_credential() makes of their secrets; and the entries, written
// back in PgBouncer's format, read back the same with no error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "auth/auth_file.h"
#include "auth/credential.h"

using namespace pgnap::auth;

namespace {

void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_auth_file.cpp:%d: invariant broken\n", line);
  std::abort();
}

std::string quoted(std::string_view field) {
  std::string out = "\"";
  for (const char c : field) {
    out.push_back(c);
    if (c == '"') out.push_back('"');
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t lines = 1;
  for (const char c : text) lines += c == '\n';

  const AuthFile file = parse_auth_file(text);
  std::set<std::size_t> reported;  // lines with an entry or an error, one report each
  std::set<std::string> users;
  std::size_t previous = 0;
  for (const AuthFileEntry& e : file.entries) {
    check(e.line >= 1 && e.line <= lines && e.line > previous);
    previous = e.line;
    check(reported.insert(e.line).second);
    check(users.insert(e.user).second);  // a user listed twice: only the last line is kept
    check(!e.user.empty() && e.user.size() <= 1000);
    check(!e.credential.secret.empty() && e.credential.secret.size() <= 1000);
    check(e.user.find('\n') == std::string::npos && e.credential.secret.find('\n') == std::string::npos);
    const auto again = parse_credential(e.credential.secret);
    check(again.has_value() && *again == e.credential);
    check(e.credential.scram.has_value() == (e.credential.kind == Credential::Kind::kScram));
  }
  previous = 0;
  for (const AuthFileError& e : file.errors) {
    check(e.line >= 1 && e.line <= lines && e.line > previous);  // sorted by line
    previous = e.line;
    check(reported.insert(e.line).second);
    check(!e.message.empty());
  }

  // Written back: the same entries (by then one per user), no error.
  std::string written = "; written back by fuzz_auth_file\n";
  for (const AuthFileEntry& e : file.entries) written += quoted(e.user) + " " + quoted(e.credential.secret) + "\n";
  const AuthFile reread = parse_auth_file(written);
  check(reread.errors.empty());
  check(reread.entries.size() == file.entries.size());
  for (std::size_t i = 0; i < reread.entries.size(); ++i) {
    check(reread.entries[i].user == file.entries[i].user);
    check(reread.entries[i].credential == file.entries[i].credential);
    check(reread.entries[i].line == i + 2);
  }
  return 0;
}
