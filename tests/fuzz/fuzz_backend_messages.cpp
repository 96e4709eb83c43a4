// libFuzzer target for what pgnap reads from PostgreSQL: a server-to-client stream is scanned
// as the relay scans it, and every decoder of message_scanner.h (parse_backend_key_data,
// parse_ready_for_query, parse_authentication_code, parse_error_sqlstate) runs on every
// message. Each answer must equal the one read straight off the whole stream, written here
// independently of the decoders. The same bytes then feed the encoders of the backend
// messages pgnap writes itself (ErrorResponse, NegotiateProtocolVersion), whose output must
// frame as one message and read back field by field.
// Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/encode.h"
#include "protocol/message_scanner.h"

using namespace pgnap::protocol;

namespace {

// An invariant; a broken one names its line and aborts, which libFuzzer reports as a crash.
void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_backend_messages.cpp:%d: invariant broken\n", line);
  std::abort();
}

// The relay's limit for server messages (daemon/relay.cpp): PostgreSQL's lengths are trusted
// up to the protocol's maximum.
constexpr std::uint32_t kMaxServerMessage = 0x7fffffff;

// A message of the stream whose header and captured head are all present.
struct Expected {
  char type;
  std::uint32_t length;
  std::size_t body;  // offset of the body in the stream
  std::size_t head;  // captured bytes
};

// Whole-stream walk: the messages the scanner must report, in order, and whether the stream
// turns out to be out of sync (a length word below 4 or above the maximum).
std::vector<Expected> walk(std::string_view s, bool& invalid) {
  std::vector<Expected> out;
  std::size_t pos = 0;
  invalid = false;
  while (s.size() - pos >= 5) {
    const std::uint32_t length = read_u32(reinterpret_cast<const std::uint8_t*>(s.data()) + pos + 1);
    if (length < 4 || length > kMaxServerMessage) {
      invalid = true;
      break;
    }
    const std::size_t head = std::min<std::size_t>(length - 4, kScanCaptureBytes);
    if (s.size() - pos - 5 < head) break;
    out.push_back({s[pos], length, pos + 5, head});
    if (s.size() - pos - 5 < length - 4) break;
    pos += 1 + std::size_t{length};
  }
  return out;
}

bool is_sqlstate(std::string_view v) {
  return v.size() == 5 &&
         std::all_of(v.begin(), v.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); });
}

// The first 'C' field of an ErrorResponse/NoticeResponse body, if it ends inside `head` and
// is a well-formed SQLSTATE (protocol-error-fields.html, errcodes-appendix.html).
std::optional<std::string> sqlstate_in(std::string_view head) {
  while (!head.empty() && head.front() != '\0') {
    const std::size_t nul = head.find('\0', 1);
    if (nul == std::string_view::npos) return std::nullopt;
    if (head.front() == 'C') {
      const std::string_view value = head.substr(1, nul - 1);
      return is_sqlstate(value) ? std::optional<std::string>(value) : std::nullopt;
    }
    head.remove_prefix(nul + 1);
  }
  return std::nullopt;
}

std::uint32_t u32_at(std::string_view s, std::size_t pos) {
  return read_u32(reinterpret_cast<const std::uint8_t*>(s.data()) + pos);
}

void check_stream(std::string_view stream, std::size_t chunk_size) {
  bool invalid = false;
  const std::vector<Expected> want = walk(stream, invalid);
  std::bitset<256> all;
  all.set();
  MessageScanner scanner(kMaxServerMessage, all);
  std::size_t seen = 0;
  ScanStatus status = ScanStatus::kOk;
  for (std::size_t pos = 0; pos < stream.size();) {
    const std::size_t n = chunk_size == 0 ? stream.size() : std::min(chunk_size, stream.size() - pos);
    // Each chunk in its own allocation, so an overread is caught by ASan.
    const std::vector<std::uint8_t> chunk(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                          stream.begin() + static_cast<std::ptrdiff_t>(pos + n));
    status = scanner.scan(Bytes(chunk.data(), chunk.size()), [&](const ScannedMessage& m) {
      check(seen < want.size());
      const Expected& e = want[seen++];
      check(m.type == e.type && m.length == e.length && m.head.size() == e.head);
      const std::string_view head = stream.substr(e.body, e.head);
      check(std::equal(m.head.begin(), m.head.end(), head.begin(),
                       [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); }));

      // BackendKeyData: exactly 12 bytes, protocol 3.0.
      const auto key = parse_backend_key_data(m);
      check(key.has_value() == (e.type == 'K' && e.length == 12));
      if (key) check(key->process_id == u32_at(stream, e.body) && key->secret_key == u32_at(stream, e.body + 4));

      // ReadyForQuery: 5 bytes, one of the three statuses.
      const auto ready = parse_ready_for_query(m);
      const bool ready_ok = e.type == 'Z' && e.length == 5 &&
                            std::string_view("ITE").find(head[0]) != std::string_view::npos;
      check(ready.has_value() == ready_ok);
      if (ready) check(*ready == head[0]);

      // Authentication: at least the request code.
      const auto auth = parse_authentication_code(m);
      check(auth.has_value() == (e.type == 'R' && e.length >= 8));
      if (auth) check(*auth == static_cast<std::int32_t>(u32_at(stream, e.body)));

      // ErrorResponse / NoticeResponse: the SQLSTATE when it lies within the head.
      const auto state = parse_error_sqlstate(m);
      const auto state_want = e.type == 'E' || e.type == 'N' ? sqlstate_in(head) : std::nullopt;
      check(state == state_want);
    });
    pos += n;
  }
  check(seen == want.size());
  check((status == ScanStatus::kInvalid) == invalid);
  check((status == ScanStatus::kOk) == scanner.error().empty());
}

// ---- Encoders of the backend messages pgnap writes ----

std::string_view until_nul(std::string_view s) { return s.substr(0, s.find('\0')); }

// Reads the NUL-terminated string at `pos`, advancing past its NUL.
std::string_view take_string(std::string_view s, std::size_t& pos) {
  const std::size_t nul = s.find('\0', pos);
  check(nul != std::string_view::npos);
  const std::string_view value = s.substr(pos, nul - pos);
  pos = nul + 1;
  return value;
}

// Frames `encoded` with a scanner watching `type`: it must be exactly one whole message, which
// `inspect` sees while the scanner (which owns the captured head) is alive.
template <typename Inspect>
void scan_one(const std::string& encoded, char type, Inspect&& inspect) {
  check(encoded.size() >= 5 && encoded[0] == type && u32_at(encoded, 1) == encoded.size() - 1);
  std::bitset<256> watched;
  watched.set(static_cast<unsigned char>(type));
  MessageScanner scanner(kMaxServerMessage, watched);
  int calls = 0;
  check(scanner.scan(as_bytes(encoded), [&](const ScannedMessage& m) {
    check(m.type == type && m.length == encoded.size() - 1);
    inspect(m);
    ++calls;
  }) == ScanStatus::kOk);
  check(calls == 1 && scanner.messages() == 1 && scanner.at_boundary());
}

void check_error_response(const std::vector<std::string_view>& parts) {
  auto part = [&](std::size_t i) { return i < parts.size() ? parts[i] : std::string_view(); };
  ErrorResponse fields;
  fields.severity = part(0);
  fields.sqlstate = part(1);
  fields.message = part(2);
  fields.detail = part(3);
  fields.hint = part(4);
  const std::string encoded = encode_error_response(fields);

  // Every field reads back, cut at its first NUL; the list ends with the message.
  const std::string_view severity = until_nul(fields.severity);
  const std::string_view sqlstate = until_nul(fields.sqlstate);
  std::vector<std::pair<char, std::string_view>> want = {
      {'S', severity}, {'V', severity}, {'C', sqlstate}, {'M', until_nul(fields.message)}};
  if (!until_nul(fields.detail).empty()) want.emplace_back('D', until_nul(fields.detail));
  if (!until_nul(fields.hint).empty()) want.emplace_back('H', until_nul(fields.hint));
  std::size_t pos = 5;
  for (const auto& [code, value] : want) {
    check(pos < encoded.size() && encoded[pos] == code);
    ++pos;
    check(take_string(encoded, pos) == value);
  }
  check(pos + 1 == encoded.size() && encoded[pos] == '\0');

  // The relay's decoder finds the SQLSTATE when 'S', 'V' and 'C' fit in the captured head.
  const std::size_t c_end = 2 * (severity.size() + 2) + sqlstate.size() + 2;
  const bool readable = is_sqlstate(sqlstate) && c_end <= kScanCaptureBytes;
  scan_one(encoded, 'E', [&](const ScannedMessage& m) {
    check(parse_error_sqlstate(m) == (readable ? std::optional<std::string>(sqlstate) : std::nullopt));
  });
}

void check_negotiate_protocol_version(std::uint16_t minor, const std::vector<std::string_view>& parts) {
  const std::vector<std::string> options(parts.begin(), parts.end());
  const std::string encoded = encode_negotiate_protocol_version(minor, options);
  scan_one(encoded, 'v', [](const ScannedMessage&) {});
  check(u32_at(encoded, 5) == minor && u32_at(encoded, 9) == options.size());
  std::size_t pos = 13;
  for (const std::string& option : options) check(take_string(encoded, pos) == until_nul(option));
  check(pos == encoded.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Layout: 1 byte chunk size (0: the whole stream at once), then the stream.
  if (size < 1) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_stream(stream, data[0]);

  // The stream, cut at 0x1f bytes, gives the encoders their strings.
  std::vector<std::string_view> parts;
  for (std::size_t from = 0;;) {
    const std::size_t cut = stream.find('\x1f', from);
    parts.push_back(stream.substr(from, cut == std::string_view::npos ? std::string_view::npos : cut - from));
    if (cut == std::string_view::npos) break;
    from = cut + 1;
  }
  check_error_response(parts);
  check_negotiate_protocol_version(static_cast<std::uint16_t>(data[0] * 257u), parts);
  check(encode_terminate() == std::string_view("X\0\0\0\x04", 5));
  return 0;
}
