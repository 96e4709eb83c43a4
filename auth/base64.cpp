// Base64 of RFC 4648 section 4, the alphabet with '+' and '/', always padded.
//
// Decoding accepts exactly what encoding produces: length a multiple of 4, '=' only as the
// last one or two characters, and the unused low bits of the last symbol zero (RFC 4648
// section 3.5 lets a decoder refuse them otherwise). So every accepted text has one decoding
// and re-encodes to itself: a SCRAM proof or a stored verifier cannot be spelled two ways.
// PostgreSQL's pg_b64_decode() (src/common/base64.c) is laxer (it skips whitespace and ignores
// the pad bits), but PostgreSQL and libpq only ever produce the canonical form.
#include "auth/base64.h"

#include <array>
#include <cstddef>
#include <cstdint>

namespace pgnap::auth {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::int8_t kInvalid = -1;

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}
constexpr std::array<std::int8_t, 256> kDecode = make_decode_table();

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out.push_back(kAlphabet[v >> 6 & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out.push_back(kAlphabet[v >> 6 & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    // Padding: only in the last quantum, as "xx==" or "xxx=".
    std::size_t pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4 - pad; ++j) {
      const std::int8_t d = kDecode[static_cast<unsigned char>(text[i + j])];
      if (d == kInvalid) return std::nullopt;  // '=' in the middle lands here too
      v |= static_cast<std::uint32_t>(d) << (18 - 6 * j);
    }
    out.push_back(static_cast<char>(v >> 16 & 0xff));
    if (pad == 2) {
      if ((v & 0xffff) != 0) return std::nullopt;  // non-zero bits under the padding
      break;
    }
    out.push_back(static_cast<char>(v >> 8 & 0xff));
    if (pad == 1) {
      if ((v & 0xff) != 0) return std::nullopt;
      break;
    }
    out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

}  // namespace pgnap::auth
