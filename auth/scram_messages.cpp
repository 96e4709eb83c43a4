// The SCRAM messages of RFC 5802 section 7, read as PostgreSQL 15 reads them:
// read_client_first_message() and read_client_final_message() in
// src/backend/libpq/auth-scram.c for the client's, read_server_first_message() and
// read_server_final_message() in src/interfaces/libpq/fe-auth-scram.c for the server's.
// Errors carry PostgreSQL's SQLSTATE, message and detail.
//
// Where PostgreSQL is laxer than the RFC, these parsers follow the RFC, since no real client
// or server depends on the difference: a trailing ',' after the last attribute, an empty
// client nonce, and extensions in the server's messages (PostgreSQL sends none) are refused.
// The grammar alone is checked here; what depends on the exchange (the mechanism, the nonce,
// the channel binding data, the proof) is ScramServer's and ScramClient's.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "auth/base64.h"
#include "auth/scram.h"
#include "auth/scram_detail.h"

namespace pgnap::auth {

namespace {

using detail::malformed;
using detail::sanitize_char;

// Walks "a=value,b=value,..." like auth-scram.c's read_attr_value() and read_any_attr(): a
// value runs to the next ',' (consumed) or the end. The first error sticks.
class AttrReader {
 public:
  explicit AttrReader(std::string_view text) : text_(text) {}

  [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
  [[nodiscard]] std::size_t pos() const { return pos_; }
  // The character at the cursor, '\0' at the end (C strings in PostgreSQL).
  [[nodiscard]] char peek() const { return at_end() ? '\0' : text_[pos_]; }
  void skip(std::size_t n) { pos_ += n; }
  // Whether the value read last was ended by a ',' rather than by the end of the message.
  [[nodiscard]] bool after_comma() const { return after_comma_; }

  // `attr` "=" value.
  std::optional<std::string_view> expect(char attr) {
    if (peek() != attr) {
      return fail(std::string("Expected attribute \"") + attr + "\" but found \"" + sanitize_char(text_, pos_) + "\".");
    }
    return value_after(attr);
  }

  // ALPHA "=" value, whatever the letter (extensions).
  std::optional<std::pair<char, std::string_view>> any() {
    const char attr = peek();
    if (at_end()) return fail("Attribute expected, but found end of string.");
    if (!((attr >= 'A' && attr <= 'Z') || (attr >= 'a' && attr <= 'z'))) {
      return fail("Attribute expected, but found invalid character \"" + sanitize_char(text_, pos_) + "\".");
    }
    const auto value = value_after(attr);
    if (!value) return std::nullopt;
    return std::pair{attr, *value};
  }

  // After the last attribute: nothing may follow, not even a ','.
  [[nodiscard]] bool finished() const { return at_end() && !after_comma_; }

  ScramFailure take_failure() { return std::move(*failure_); }
  std::nullopt_t fail(std::string detail) {
    if (!failure_) failure_ = malformed(std::move(detail));
    return std::nullopt;
  }

 private:
  std::optional<std::string_view> value_after(char attr) {
    ++pos_;
    if (peek() != '=') return fail(std::string("Expected character \"=\" for attribute \"") + attr + "\".");
    ++pos_;
    const std::size_t begin = pos_;
    const std::size_t end = std::min(text_.find(',', begin), text_.size());
    after_comma_ = end < text_.size();
    pos_ = after_comma_ ? end + 1 : end;
    return text_.substr(begin, end - begin);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  bool after_comma_ = false;
  std::optional<ScramFailure> failure_;
};

// What auth-scram.c's scram_exchange() checks of every client message before reading it,
// and the length bound PostgreSQL puts on a SASL message.
std::optional<ScramFailure> check_envelope(std::string_view message) {
  if (message.empty()) return malformed("The message is empty.");
  if (message.size() > detail::kMaxMessageLength) return malformed("The message is too long.");
  // PostgreSQL reads the message as a C string: an embedded NUL would cut it short.
  if (message.find('\0') != std::string_view::npos) return malformed("Message length does not match input length.");
  return std::nullopt;
}

// RFC 5056 section 7: cb-name = 1*(ALPHA / DIGIT / "." / "-").
bool is_cb_name(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<ScramKey> to_key(const std::optional<std::string>& bytes) {
  if (!bytes || bytes->size() != ScramKey().size()) return std::nullopt;
  ScramKey key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>((*bytes)[i]);
  return key;
}

}  // namespace

std::variant<ClientFirst, ScramFailure> parse_client_first(std::string_view message) {
  if (auto bad = check_envelope(message)) return std::move(*bad);
  ClientFirst out;
  AttrReader in(message);

  // gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
  switch (in.peek()) {
    case 'n':
    case 'y':
      out.binding = in.peek() == 'n' ? ChannelBinding::kNone : ChannelBinding::kNotUsed;
      in.skip(1);
      if (in.peek() != ',') {
        return malformed("Comma expected, but found character \"" + sanitize_char(message, in.pos()) + "\".");
      }
      in.skip(1);
      break;
    case 'p': {
      const auto name = in.expect('p');
      if (!name) return in.take_failure();
      if (!is_cb_name(*name)) return malformed("Malformed channel-binding type.");
      out.binding = ChannelBinding::kUsed;
      out.binding_name = std::string(*name);
      break;
    }
    default: return malformed("Unexpected channel-binding flag \"" + sanitize_char(message, 0) + "\".");
  }

  // The authzid, between the two commas of the gs2 header: PostgreSQL takes the user from the
  // startup packet and supports no other identity.
  if (in.peek() == 'a') {
    return detail::failure(detail::kFeatureNotSupported, "client uses authorization identity, but it is not supported");
  }
  if (in.peek() != ',') {
    return malformed("Unexpected attribute \"" + sanitize_char(message, in.pos()) + "\" in client-first-message.");
  }
  in.skip(1);
  out.gs2_header = std::string(message.substr(0, in.pos()));
  out.bare = std::string(message.substr(in.pos()));

  // reserved-mext: RFC 5802 says a server must fail on it; PostgreSQL does so at once.
  if (in.peek() == 'm') {
    return detail::failure(detail::kFeatureNotSupported, "client requires an unsupported SCRAM extension");
  }
  // n=: ignored, as by PostgreSQL (libpq sends it empty; the user is the startup packet's).
  if (!in.expect('n')) return in.take_failure();
  const auto nonce = in.expect('r');
  if (!nonce) return in.take_failure();
  if (nonce->empty()) return malformed("The client's nonce is empty.");
  if (!detail::is_scram_printable(*nonce)) {
    return detail::failure(detail::kProtocolViolation, "non-printable characters in SCRAM nonce");
  }
  out.nonce = std::string(*nonce);
  // Optional extensions: well-formed ones are ignored, as PostgreSQL ignores them.
  while (!in.at_end()) {
    if (!in.any()) return in.take_failure();
  }
  if (!in.finished()) return malformed("Attribute expected, but found end of string.");
  return out;
}

std::variant<ClientFinal, ScramFailure> parse_client_final(std::string_view message) {
  if (auto bad = check_envelope(message)) return std::move(*bad);
  ClientFinal out;
  AttrReader in(message);

  // c= base64(gs2-header [cbind-data]); compared with the expected value by ScramServer.
  const auto binding = in.expect('c');
  if (!binding) return in.take_failure();
  const auto binding_bytes = base64_decode(*binding);
  if (!binding_bytes) return malformed("Malformed channel binding in client-final-message.");
  out.channel_binding = *binding_bytes;

  const auto nonce = in.expect('r');
  if (!nonce) return in.take_failure();
  out.nonce = std::string(*nonce);

  // Extensions may come before the proof, which is last (auth-scram.c skips them the same way).
  std::size_t proof_at = 0;
  std::optional<std::pair<char, std::string_view>> attr;
  do {
    proof_at = in.pos();
    attr = in.any();
    if (!attr) return in.take_failure();
  } while (attr->first != 'p');

  const auto proof = to_key(base64_decode(attr->second));
  if (!proof) return malformed("Malformed proof in client-final-message.");
  out.proof = *proof;
  if (!in.finished()) return malformed("Garbage found at the end of client-final-message.");
  // client-final-message-without-proof: all before the ",p=" (r= always precedes it, so the
  // proof never starts the message).
  out.without_proof = std::string(message.substr(0, proof_at - 1));
  return out;
}

std::variant<ServerFirst, ScramFailure> parse_server_first(std::string_view message) {
  if (auto bad = check_envelope(message)) return std::move(*bad);
  ServerFirst out;
  AttrReader in(message);

  const auto nonce = in.expect('r');
  if (!nonce) return in.take_failure();
  if (nonce->empty() || !detail::is_scram_printable(*nonce)) {
    return malformed("Invalid nonce in server-first-message.");
  }
  out.nonce = std::string(*nonce);

  const auto salt_text = in.expect('s');
  if (!salt_text) return in.take_failure();
  const auto salt = base64_decode(*salt_text);
  if (!salt || salt->empty()) return malformed("Invalid salt in server-first-message.");
  out.salt = *salt;

  const auto iterations_text = in.expect('i');
  if (!iterations_text) return in.take_failure();
  const auto iterations = detail::parse_positive_int(*iterations_text);
  if (!iterations) return malformed("Invalid iteration count in server-first-message.");
  out.iterations = *iterations;

  if (!in.finished()) return malformed("Garbage found at the end of server-first-message.");
  return out;
}

std::variant<ScramKey, ScramFailure> parse_server_final(std::string_view message) {
  if (auto bad = check_envelope(message)) return std::move(*bad);
  AttrReader in(message);

  // server-error = "e=" server-error-value (RFC 5802 section 7). PostgreSQL never sends one
  // (it fails with an ErrorResponse instead), but the RFC allows it.
  if (in.peek() == 'e') {
    const auto error = in.expect('e');
    if (!error) return in.take_failure();
    return detail::failure(detail::kInvalidAuthorization,
                           "error received from server in SCRAM exchange: " + detail::sanitize_str(*error));
  }
  const auto signature = in.expect('v');
  if (!signature) return in.take_failure();
  const auto key = to_key(base64_decode(*signature));
  if (!key) return malformed("Invalid server signature in server-final-message.");
  if (!in.finished()) return malformed("Garbage found at the end of server-final-message.");
  return *key;
}

}  // namespace pgnap::auth
