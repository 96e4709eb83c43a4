// libFuzzer target for what pgnap reads from a client and writes to PostgreSQL as a client:
// a client-to-server stream is framed with next_frame() (frame_walk.h: against its length
// words and MessageScanner, with a limit taken from the input so that both refusals are
// reached), and the frontend decoders of messages.h (parse_password_message,
// parse_sasl_initial_response, parse_query) run on every frame's body whatever its type: what
// one decodes must re-encode to the same bytes. The same bytes then feed the frontend
// encoders (PasswordMessage, SASLInitialResponse, SASLResponse, Query, Parse, Bind, Describe,
// Execute, Sync), whose output must frame as one message and read back field by field, read
// here independently of the library.
// Layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frame_walk.h"
#include "protocol/frame.h"
#include "protocol/messages.h"

using namespace pgnap::protocol;

namespace {

// An invariant; a broken one names its line and aborts, which libFuzzer reports as a crash.
void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_frontend_messages.cpp:%d: invariant broken\n", line);
  std::abort();
}

std::string text(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
std::string_view until_nul(std::string_view s) { return s.substr(0, s.find('\0')); }
bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

std::string i32(std::int32_t v) {
  std::string out;
  append_u32(out, static_cast<std::uint32_t>(v));
  return out;
}

// ---- What a client sends ----

// Every frontend body decoder on one frame's body: each refuses it or decodes what encodes
// back to exactly these bytes.
void check_body_decoders(const Frame& frame) {
  const std::string body = text(frame.body);
  if (const auto password = parse_password_message(frame.body)) {
    check(!has_nul(*password) && *password + '\0' == body);
    check(encode_password_message(*password).substr(5) == body);
  }
  if (const auto sql = parse_query(frame.body)) {
    check(!has_nul(*sql) && *sql + '\0' == body);
    check(encode_query(*sql).substr(5) == body);
  }
  if (const auto initial = parse_sasl_initial_response(frame.body)) {
    check(!has_nul(initial->mechanism));
    const std::string again = initial->data ? encode_sasl_initial_response(initial->mechanism, *initial->data)
                                            : encode_sasl_initial_response(initial->mechanism);
    check(again.substr(5) == body);
    // Written here: mechanism, NUL, Int32 length (-1 without data), data.
    const std::string want = initial->mechanism + '\0' +
                             (initial->data ? i32(static_cast<std::int32_t>(initial->data->size())) + *initial->data
                                            : i32(-1));
    check(want == body);
  }
  // SASLResponse is the body as it is: nothing to refuse.
  check(encode_sasl_response(body).substr(5) == body);
}

// ---- What pgnap writes as a client ----

// `encoded` must be one whole message of `type` for next_frame(); returns its body.
std::string body_of(const std::string& encoded, char type) {
  const std::vector<std::uint8_t> bytes(encoded.begin(), encoded.end());
  const FrameResult r = next_frame(Bytes(bytes.data(), bytes.size()), 0xffffffff);
  check(r.status == FrameStatus::kReady && r.frame.type == type && r.frame.size == encoded.size());
  return text(r.frame.body);
}

// A cursor over a body for reading the encoders' output back, independently of messages.cpp.
struct Reader {
  std::string_view s;
  std::size_t pos = 0;
  std::string_view string() {
    const std::size_t nul = s.find('\0', pos);
    check(nul != std::string_view::npos);
    const std::string_view v = s.substr(pos, nul - pos);
    pos = nul + 1;
    return v;
  }
  std::uint32_t u32() {
    check(s.size() - pos >= 4);
    const std::uint32_t v = read_u32(reinterpret_cast<const std::uint8_t*>(s.data()) + pos);
    pos += 4;
    return v;
  }
  std::uint16_t u16() {
    check(s.size() - pos >= 2);
    const std::uint16_t v = read_u16(reinterpret_cast<const std::uint8_t*>(s.data()) + pos);
    pos += 2;
    return v;
  }
  std::string_view bytes(std::size_t n) {
    check(s.size() - pos >= n);
    const std::string_view v = s.substr(pos, n);
    pos += n;
    return v;
  }
  bool at_end() const { return pos == s.size(); }
};

void check_frontend_encoders(const std::vector<std::string_view>& parts) {
  auto part = [&](std::size_t i) { return i < parts.size() ? parts[i] : std::string_view(); };
  auto owned = [](const std::string& body) { return std::vector<std::uint8_t>(body.begin(), body.end()); };

  // The messages pgnap reads back itself.
  check(parse_password_message(owned(body_of(encode_password_message(part(0)), 'p'))) == until_nul(part(0)));
  check(parse_query(owned(body_of(encode_query(part(0)), 'Q'))) == until_nul(part(0)));
  const auto initial = parse_sasl_initial_response(owned(body_of(encode_sasl_initial_response(part(0), part(1)), 'p')));
  check(initial && initial->mechanism == until_nul(part(0)) && initial->data == part(1));
  const auto bare = parse_sasl_initial_response(owned(body_of(encode_sasl_initial_response(part(0)), 'p')));
  check(bare && bare->mechanism == until_nul(part(0)) && !bare->data);
  check(body_of(encode_sasl_response(part(0)), 'p') == part(0));

  // The extended protocol: Parse, Bind (a part "\N" is a NULL parameter), Describe, Execute,
  // Sync.
  {
    const std::string body = body_of(encode_parse(part(0), part(1)), 'P');
    Reader r{body};
    check(r.string() == until_nul(part(0)) && r.string() == until_nul(part(1)));
    check(r.u16() == 0 && r.at_end());
  }
  {
    std::vector<std::optional<std::string>> parameters;
    // At most 65535 parameters: the protocol's limit, a precondition of encode_bind().
    for (std::size_t i = 2; i < parts.size() && parameters.size() < 65535; ++i) {
      if (parts[i] == "\\N") {
        parameters.emplace_back();
      } else {
        parameters.emplace_back(std::string(parts[i]));
      }
    }
    const std::string body = body_of(encode_bind(part(0), part(1), parameters), 'B');
    Reader r{body};
    check(r.string() == until_nul(part(0)) && r.string() == until_nul(part(1)));
    check(r.u16() == 0);  // parameter formats: all text
    check(r.u16() == parameters.size());
    for (const auto& parameter : parameters) {
      const std::uint32_t length = r.u32();
      if (!parameter) {
        check(length == 0xffffffff);
      } else {
        check(length == parameter->size() && r.bytes(length) == *parameter);
      }
    }
    check(r.u16() == 0 && r.at_end());  // result formats: all text
  }
  {
    const std::string body = body_of(encode_describe_portal(part(0)), 'D');
    Reader r{body};
    check(r.bytes(1) == "P" && r.string() == until_nul(part(0)) && r.at_end());
  }
  {
    const std::string body = body_of(encode_execute(part(0)), 'E');
    Reader r{body};
    check(r.string() == until_nul(part(0)) && r.u32() == 0 && r.at_end());
  }
  check(body_of(encode_sync(), 'S').empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Layout: 1 byte for the length limit (0: 1 GiB, PostgreSQL's own; n: 4 + 8n, tight as
  // before authentication), then a client-to-server stream.
  if (size < 1) return 0;
  const std::uint32_t max_length = data[0] == 0 ? (1u << 30) : 4u + 8u * data[0];
  const Bytes stream(data + 1, size - 1);
  (void)pgnap::fuzz::walk_frames(stream, max_length, check_body_decoders);

  // The stream, cut at 0x1f bytes, gives the encoders their strings.
  const std::string_view s(reinterpret_cast<const char*>(stream.data()), stream.size());
  std::vector<std::string_view> parts;
  for (std::size_t from = 0;;) {
    const std::size_t cut = s.find('\x1f', from);
    parts.push_back(s.substr(from, cut == std::string_view::npos ? std::string_view::npos : cut - from));
    if (cut == std::string_view::npos) break;
    from = cut + 1;
  }
  check_frontend_encoders(parts);
  return 0;
}
