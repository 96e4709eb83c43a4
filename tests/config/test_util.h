// Helpers shared by the config tests: documents written inline, parsed as "pgnap.toml" in
// /etc/pgnap, and their errors as "LINE:COLUMN: KEY: MESSAGE" strings.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace pgnap::config::test_util {

// Test documents start with a newline after R"( so they line up in the source; drop it so
// that line 1 is the first line shown.
inline std::string doc(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

inline Config parse(std::string_view text, std::string base_dir = "/etc/pgnap") {
  return parse_config(doc(text), "pgnap.toml", std::move(base_dir));
}

// Every error of a document that must not load, as "LINE:COLUMN: KEY: MESSAGE" strings.
inline std::vector<std::string> errors_of(std::string_view text) {
  try {
    (void)parse(text);
  } catch (const ConfigLoadError& e) {
    std::vector<std::string> out;
    for (const ConfigError& error : e.errors()) {
      EXPECT_EQ(error.file, "pgnap.toml");
      std::string s = error.to_string();
      out.push_back(s.substr(std::string("pgnap.toml:").size()));
    }
    return out;
  }
  ADD_FAILURE() << "expected the document to be rejected:\n" << text;
  return {};
}

// The one error of a document with exactly one mistake.
inline std::string error_of(std::string_view text) {
  std::vector<std::string> errors = errors_of(text);
  EXPECT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  return errors.empty() ? "" : errors.front();
}

inline constexpr std::string_view kMinimal = R"(
[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"

[instances.main.pg_ctl]
data_dir = "/var/lib/postgresql/15/main"
)";

// kMinimal with `line` added to the [instances.main] table (as line 4).
inline std::string minimal_with(std::string_view line) {
  return doc(R"(
[instances.main]
backend = "pg_ctl"
address = "127.0.0.1:5432"
)") + std::string(line) +
         "\n[instances.main.pg_ctl]\ndata_dir = \"/srv/pg\"\n";
}

// kMinimal followed by more tables (starting at line 7).
inline std::string minimal_plus(std::string_view tables) { return doc(kMinimal) + doc(tables); }

}  // namespace pgnap::config::test_util
