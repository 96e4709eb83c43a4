// libFuzzer target for what pgnap reads from PostgreSQL: a server-to-client stream is scanned
// as the relay scans it, and every decoder of message_scanner.h (parse_backend_key_data,
// parse_ready_for_query, parse_authentication_code, parse_error_sqlstate) runs on every
// message. Each answer must equal the one read straight off the whole stream, written here
// independently of the decoders. The stream is then framed with next_frame() (frame_walk.h:
// against its length words and MessageScanner), and every body decoder of messages.h runs on
// every frame's body whatever its type: what one decodes must re-encode to the same bytes.
// The same bytes then feed the encoders of the backend messages pgnap writes itself
// (ErrorResponse, NegotiateProtocolVersion, Authentication*, ParameterStatus,
// BackendKeyData, ReadyForQuery), whose output must frame as one message and read back
// field by field.
// Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <algorithm>
#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frame_walk.h"
#include "protocol/encode.h"
#include "protocol/frame.h"
#include "protocol/message_scanner.h"
#include "protocol/messages.h"

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

  // The whole-body decoder reads every field back, cut as the encoder cut it.
  const std::vector<std::uint8_t> body(encoded.begin() + 5, encoded.end());
  const auto parsed = parse_error_response(Bytes(body.data(), body.size()));
  check(parsed.has_value());
  check(parsed->severity == severity && parsed->sqlstate == sqlstate);
  check(parsed->message == until_nul(fields.message) && parsed->detail == until_nul(fields.detail) &&
        parsed->hint == until_nul(fields.hint));

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

// ---- Whole messages: next_frame() and the body decoders of messages.h ----

std::string text(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// `encoded` is one whole message of type `type`: returns its body.
std::string body_of(const std::string& encoded, char type) {
  check(encoded.size() >= 5 && encoded[0] == type && u32_at(encoded, 1) == encoded.size() - 1);
  return encoded.substr(5);
}

// A DataRow body as PostgreSQL writes it (printtup.c): Int16 count, then per column an Int32
// length (-1 for NULL) and the bytes. Written here, independently of parse_data_row().
std::string data_row_body(const std::vector<std::optional<std::string>>& columns) {
  std::string out;
  append_u16(out, static_cast<std::uint16_t>(columns.size()));
  for (const auto& column : columns) {
    append_u32(out, column ? static_cast<std::uint32_t>(column->size()) : 0xffffffffu);
    if (column) out += *column;
  }
  return out;
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// Every backend body decoder on one frame's body, whatever its type: each either refuses it or
// decodes something that encodes back to exactly these bytes (or, for ErrorResponse, whose
// unknown fields are dropped, to a message that decodes to the same fields).
void check_body_decoders(const Frame& frame) {
  const std::string body = text(frame.body);

  if (const auto auth = parse_authentication(frame.body)) {
    check(body.size() >= 4 && auth->code == static_cast<std::int32_t>(u32_at(body, 0)));
    check(text(auth->payload) == body.substr(4));
    std::optional<std::string> again;
    switch (auth->code) {
      case auth_code::kOk: again = encode_authentication_ok(); break;
      case auth_code::kCleartextPassword: again = encode_authentication_cleartext(); break;
      case auth_code::kMd5Password: {
        check(auth->payload.size() == 4);
        std::array<std::uint8_t, 4> salt{};
        std::copy(auth->payload.begin(), auth->payload.end(), salt.begin());
        again = encode_authentication_md5(salt);
        break;
      }
      case auth_code::kSasl:
        if (const auto names = parse_sasl_mechanisms(auth->payload)) again = encode_authentication_sasl(*names);
        break;
      case auth_code::kSaslContinue: again = encode_authentication_sasl_continue(text(auth->payload)); break;
      case auth_code::kSaslFinal: again = encode_authentication_sasl_final(text(auth->payload)); break;
      default: break;
    }
    if (again) check(body_of(*again, 'R') == body);
  }
  if (const auto names = parse_sasl_mechanisms(frame.body)) {
    for (const std::string& name : *names) check(!name.empty() && !has_nul(name));
    check(body_of(encode_authentication_sasl(*names), 'R').substr(4) == body);
  }
  if (const auto status = parse_parameter_status(frame.body)) {
    check(!has_nul(status->first) && !has_nul(status->second));
    check(body_of(encode_parameter_status(status->first, status->second), 'S') == body);
  }
  const auto key = parse_backend_key_data_body(frame.body);
  if (key) check(body_of(encode_backend_key_data(*key), 'K') == body);
  const auto ready = parse_ready_for_query_body(frame.body);
  if (ready) check(body_of(encode_ready_for_query(*ready), 'Z') == body);
  if (const auto error = parse_error_response(frame.body)) {
    for (const std::string* f : {&error->severity, &error->sqlstate, &error->message, &error->detail, &error->hint}) {
      check(!has_nul(*f));
    }
    const std::string again = body_of(encode_error_response(*error), 'E');
    const auto reread = parse_error_response(as_bytes(again));
    check(reread && reread->severity == error->severity && reread->sqlstate == error->sqlstate &&
          reread->message == error->message && reread->detail == error->detail && reread->hint == error->hint);
  }
  if (const auto row = parse_data_row(frame.body)) check(data_row_body(*row) == body);
  if (const auto tag = parse_command_complete(frame.body)) check(*tag + '\0' == body);

  // Where the relay's head decoders and the body decoders both speak of a whole message, they
  // agree.
  const ScannedMessage head{frame.type, static_cast<std::uint32_t>(frame.size - 1),
                            frame.body.first(std::min(frame.body.size(), kScanCaptureBytes))};
  if (frame.type == 'K') {
    const auto head_key = parse_backend_key_data(head);
    check(head_key.has_value() == key.has_value());
    if (key) check(head_key->process_id == key->process_id && head_key->secret_key == key->secret_key);
  }
  if (frame.type == 'Z') check(parse_ready_for_query(head) == ready);
}

// The backend encoders of messages.h, fed the input's strings: each output is one message that
// reads back as what was written (strings cut at their first NUL, raw data kept whole).
void check_backend_encoders(const std::vector<std::string_view>& parts, std::uint8_t seed) {
  auto part = [&](std::size_t i) { return i < parts.size() ? parts[i] : std::string_view(); };
  auto owned = [](const std::string& body) { return std::vector<std::uint8_t>(body.begin(), body.end()); };

  const auto status_body = owned(body_of(encode_parameter_status(part(0), part(1)), 'S'));
  const auto status = parse_parameter_status(status_body);
  check(status && status->first == until_nul(part(0)) && status->second == until_nul(part(1)));

  const std::vector<std::string> mechanisms(parts.begin(), parts.end());
  std::vector<std::string> listed;
  for (const std::string& name : mechanisms) {
    if (!until_nul(name).empty()) listed.emplace_back(until_nul(name));
  }
  const auto sasl_body = owned(body_of(encode_authentication_sasl(mechanisms), 'R'));
  const auto sasl = parse_authentication(sasl_body);
  check(sasl && sasl->code == auth_code::kSasl && parse_sasl_mechanisms(sasl->payload) == listed);

  for (const std::int32_t code : {auth_code::kSaslContinue, auth_code::kSaslFinal}) {
    const std::string encoded = code == auth_code::kSaslContinue ? encode_authentication_sasl_continue(part(0))
                                                                 : encode_authentication_sasl_final(part(0));
    const auto body = owned(body_of(encoded, 'R'));
    const auto auth = parse_authentication(body);
    check(auth && auth->code == code && text(auth->payload) == part(0));
  }

  const std::array<std::uint8_t, 4> salt = {seed, static_cast<std::uint8_t>(~seed), 0, 0xff};
  const auto md5_body = owned(body_of(encode_authentication_md5(salt), 'R'));
  const auto md5 = parse_authentication(md5_body);
  check(md5 && md5->code == auth_code::kMd5Password && std::equal(salt.begin(), salt.end(), md5->payload.begin()));
  for (const auto& [encoded, code] : {std::pair{encode_authentication_ok(), auth_code::kOk},
                                      std::pair{encode_authentication_cleartext(), auth_code::kCleartextPassword}}) {
    const auto body = owned(body_of(encoded, 'R'));
    const auto auth = parse_authentication(body);
    check(auth && auth->code == code && auth->payload.empty());
  }

  const BackendKeyData key{seed * 0x01010101u, ~(seed * 0x00010001u)};
  const auto key_body = owned(body_of(encode_backend_key_data(key), 'K'));
  const auto key_back = parse_backend_key_data_body(key_body);
  check(key_back && key_back->process_id == key.process_id && key_back->secret_key == key.secret_key);

  const char state = "ITE"[seed % 3];
  const auto ready_body = owned(body_of(encode_ready_for_query(state), 'Z'));
  check(parse_ready_for_query_body(ready_body) == state);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Layout: 1 byte chunk size (0: the whole stream at once), then the stream.
  if (size < 1) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_stream(stream, data[0]);
  // Whole messages as pgnap reads them when it logs in for a client: with the relay's limit,
  // every frame through every body decoder; with a small one, the refusals.
  (void)pgnap::fuzz::walk_frames(as_bytes(stream), kMaxServerMessage, check_body_decoders);
  (void)pgnap::fuzz::walk_frames(as_bytes(stream), 4u + data[0], [](const Frame&) {});

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
  check_backend_encoders(parts, data[0]);
  check(encode_terminate() == std::string_view("X\0\0\0\x04", 5));
  return 0;
}
