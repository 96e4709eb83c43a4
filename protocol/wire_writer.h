// Internal to protocol/ (included by its .cpp files only, never by a public header): the
// helpers every encoder builds a typed message with, kept once for encode.cpp and
// messages.cpp. Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/wire.h"

namespace pgnap::protocol::detail {

// Every string in the protocol is NUL-terminated (the docs' "String" type), so a value with
// an embedded NUL would end early and the rest would be read as the next field. Cut it.
inline std::string_view until_nul(std::string_view s) { return s.substr(0, s.find('\0')); }

inline void append_string(std::string& out, std::string_view s) {
  out += until_nul(s);
  out.push_back('\0');
}

// Starts a typed message: the type byte and a placeholder length word.
inline std::string begin_message(char type) {
  std::string out;
  out.push_back(type);
  append_u32(out, 0);
  return out;
}

// The length word counts itself and the body, not the type byte.
inline std::string end_message(std::string out) {
  put_u32(out, 1, static_cast<std::uint32_t>(out.size() - 1));
  return out;
}

}  // namespace pgnap::protocol::detail
