// The ledger's caches for the authenticating mode (schema version 4): the password verifiers
// auth_query returned, and the ParameterStatus values of each user's and database's last real
// login. Written through the writer thread like every other record (ledger.cpp), read at
// start-up from the file, read-only, like the other readers (ledger_read.cpp).
//
// Parameters are stored as text that the sqlite3 shell shows plainly: one "name=value" line
// per parameter, each ending in '\n', in the order PostgreSQL sent them. In names and values,
// '%', '=' and every control character (NUL, '\n' and '\r' included) are written %XX with
// two upper-case hex digits, so a line splits at its one '=' and decodes back byte for byte;
// other bytes, UTF-8 included, are kept as they are.
#include <sqlite3.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "accounting/ledger.h"
#include "accounting/sqlite.h"

namespace pgnap::accounting {

using detail::schema_version;
using detail::Statement;
using detail::with_read_only;

namespace {

using Parameters = std::vector<std::pair<std::string, std::string>>;

constexpr int kCacheSchemaVersion = 4;

bool needs_escape(unsigned char c) { return c == '%' || c == '=' || c < 0x20 || c == 0x7f; }

void append_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (needs_escape(byte)) {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0f];
    } else {
      out += c;
    }
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The bytes `text` stands for, or nullopt when it is not what append_escaped() writes.
std::optional<std::string> unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '%') {
      if (needs_escape(static_cast<unsigned char>(c))) return std::nullopt;
      out += c;
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_digit(text[i + 1]);
    const int low = hex_digit(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

std::string encode_parameters(const Parameters& parameters) {
  std::string text;
  for (const auto& [name, value] : parameters) {
    append_escaped(text, name);
    text += '=';
    append_escaped(text, value);
    text += '\n';
  }
  return text;
}

std::optional<Parameters> decode_parameters(std::string_view text) {
  Parameters parameters;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    if (end == std::string_view::npos) return std::nullopt;  // every line ends in '\n'
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) return std::nullopt;
    std::optional<std::string> name = unescape(line.substr(0, equals));
    std::optional<std::string> value = unescape(line.substr(equals + 1));
    if (!name || !value) return std::nullopt;
    parameters.emplace_back(std::move(*name), std::move(*value));
  }
  return parameters;
}

}  // namespace

// ---- writes, queued to the writer thread ----

void Ledger::record_credential(const std::string& instance, const std::string& user, const std::string& secret,
                               UnixTime at) {
  enqueue(
      [instance, user, secret, at](sqlite3* db) {
        Statement s(db,
                    "INSERT INTO credentials (instance, \"user\", secret, learned_at) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT (instance, \"user\") DO UPDATE SET secret = excluded.secret, "
                    "learned_at = excluded.learned_at");
        s.bind(1, instance).bind(2, user).bind(3, secret).bind(4, at).run();
      },
      instance.size() + user.size() + secret.size());
}

void Ledger::forget_credential(const std::string& instance, const std::string& user) {
  enqueue(
      [instance, user](sqlite3* db) {
        Statement s(db, "DELETE FROM credentials WHERE instance = ?1 AND \"user\" = ?2");
        s.bind(1, instance).bind(2, user).run();
      },
      instance.size() + user.size());
}

void Ledger::forget_credentials(const std::string& instance) {
  enqueue(
      [instance](sqlite3* db) {
        Statement s(db, "DELETE FROM credentials WHERE instance = ?1");
        s.bind(1, instance).run();
      },
      instance.size());
}

void Ledger::record_session_parameters(const std::string& instance, const std::string& user,
                                       const std::string& database, const Parameters& parameters, UnixTime at) {
  // Encoded here, on the caller's thread: the job then holds one string, not the vector.
  std::string text = encode_parameters(parameters);
  const std::size_t bytes = instance.size() + user.size() + database.size() + text.size();
  enqueue(
      [instance, user, database, text = std::move(text), at](sqlite3* db) {
        Statement s(db,
                    "INSERT INTO session_parameters (instance, \"user\", \"database\", parameters, learned_at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (instance, \"user\", \"database\") DO UPDATE SET "
                    "parameters = excluded.parameters, learned_at = excluded.learned_at");
        s.bind(1, instance).bind(2, user).bind(3, database).bind(4, text).bind(5, at).run();
      },
      bytes);
}

// ---- reads, for start-up ----

std::vector<CachedCredential> read_credentials(const std::string& path) {
  return with_read_only(path, [](sqlite3* db) {
    std::vector<CachedCredential> out;
    if (schema_version(db) < kCacheSchemaVersion) return out;
    Statement s(db, "SELECT instance, \"user\", secret, learned_at FROM credentials ORDER BY instance, \"user\"");
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.real(3)});
    return out;
  });
}

std::vector<CachedParameters> read_session_parameters(const std::string& path) {
  return with_read_only(path, [](sqlite3* db) {
    std::vector<CachedParameters> out;
    if (schema_version(db) < kCacheSchemaVersion) return out;
    Statement s(db,
                "SELECT instance, \"user\", \"database\", parameters, learned_at FROM session_parameters "
                "ORDER BY instance, \"user\", \"database\"");
    while (s.step()) {
      std::optional<Parameters> parameters = decode_parameters(s.text(3));
      if (!parameters) continue;
      out.push_back({s.text(0), s.text(1), s.text(2), std::move(*parameters), s.real(4)});
    }
    return out;
  });
}

}  // namespace pgnap::accounting
