// Encoders and decoders of the messages pgnap reads and writes itself. Layouts:
// https://www.postgresql.org/docs/15/protocol-message-formats.html; error fields:
// https://www.postgresql.org/docs/15/protocol-error-fields.html.
//
// Every decoder reads a complete body through BodyReader, which never reads past the body and
// fails on a missing NUL or a length that runs past the end; each decoder then insists that
// the body ends exactly where its last field does.
#include "protocol/messages.h"

#include "protocol/wire_writer.h"

namespace pgnap::protocol {

namespace {

using detail::append_string;
using detail::begin_message;
using detail::end_message;
using detail::until_nul;

// A cursor over one message body. Each read either takes its field whole or fails and leaves
// the cursor where it was; nothing is allocated before its length has been checked against
// what remains.
class BodyReader {
 public:
  explicit BodyReader(Bytes body) : body_(body) {}

  [[nodiscard]] std::size_t remaining() const { return body_.size() - pos_; }
  [[nodiscard]] bool at_end() const { return pos_ == body_.size(); }

  std::optional<std::uint8_t> byte() {
    if (remaining() < 1) return std::nullopt;
    return body_[pos_++];
  }
  std::optional<std::uint16_t> u16() {
    if (remaining() < 2) return std::nullopt;
    const std::uint16_t v = read_u16(body_.data() + pos_);
    pos_ += 2;
    return v;
  }
  std::optional<std::int32_t> i32() {
    if (remaining() < 4) return std::nullopt;
    const std::int32_t v = read_i32(body_.data() + pos_);
    pos_ += 4;
    return v;
  }
  // A "String": the bytes up to the next NUL, which is consumed too.
  std::optional<std::string> string() {
    for (std::size_t end = pos_; end < body_.size(); ++end) {
      if (body_[end] == 0) {
        std::string value(reinterpret_cast<const char*>(body_.data()) + pos_, end - pos_);
        pos_ = end + 1;
        return value;
      }
    }
    return std::nullopt;
  }
  // `n` raw bytes.
  std::optional<std::string> bytes(std::size_t n) {
    if (remaining() < n) return std::nullopt;
    std::string value(reinterpret_cast<const char*>(body_.data()) + pos_, n);
    pos_ += n;
    return value;
  }
  // The "Int32 length, then that many bytes" of DataRow and SASLInitialResponse: nullopt
  // inside the result for -1 (NULL / no data); a failure for any other negative length or one
  // that runs past the body.
  std::optional<std::optional<std::string>> counted_bytes() {
    const std::size_t start = pos_;
    const auto length = i32();
    if (!length) return std::nullopt;
    if (*length == -1) return std::optional<std::string>();
    if (*length < 0 || remaining() < static_cast<std::size_t>(*length)) {
      pos_ = start;
      return std::nullopt;
    }
    return bytes(static_cast<std::size_t>(*length));
  }
  // Everything not read yet.
  Bytes rest() {
    const Bytes out = body_.subspan(pos_);
    pos_ = body_.size();
    return out;
  }

 private:
  Bytes body_;
  std::size_t pos_ = 0;
};

// A body that is exactly one String.
std::optional<std::string> single_string(Bytes body) {
  BodyReader r(body);
  auto value = r.string();
  if (!value || !r.at_end()) return std::nullopt;
  return value;
}

std::string authentication(std::int32_t code, std::string_view payload = {}) {
  std::string out = begin_message(backend_msg::kAuthentication);
  append_u32(out, static_cast<std::uint32_t>(code));
  out += payload;
  return end_message(std::move(out));
}

// Int32 fields are written from their two's complement bit pattern (-1 included).
void append_i32(std::string& out, std::int32_t v) { append_u32(out, static_cast<std::uint32_t>(v)); }

}  // namespace

// ---- backend messages pgnap writes as a server ----

std::string encode_authentication_ok() { return authentication(auth_code::kOk); }

std::string encode_authentication_cleartext() { return authentication(auth_code::kCleartextPassword); }

std::string encode_authentication_md5(const std::array<std::uint8_t, 4>& salt) {
  return authentication(auth_code::kMd5Password,
                        std::string_view(reinterpret_cast<const char*>(salt.data()), salt.size()));
}

std::string encode_authentication_sasl(std::span<const std::string> mechanisms) {
  std::string list;
  for (const std::string& name : mechanisms) {
    // An empty name would read as the end of the list and hide the ones after it.
    if (until_nul(name).empty()) continue;
    append_string(list, name);
  }
  list.push_back('\0');
  return authentication(auth_code::kSasl, list);
}

std::string encode_authentication_sasl_continue(std::string_view data) {
  return authentication(auth_code::kSaslContinue, data);
}

std::string encode_authentication_sasl_final(std::string_view data) {
  return authentication(auth_code::kSaslFinal, data);
}

std::string encode_parameter_status(std::string_view name, std::string_view value) {
  std::string out = begin_message(backend_msg::kParameterStatus);
  append_string(out, name);
  append_string(out, value);
  return end_message(std::move(out));
}

std::string encode_backend_key_data(const BackendKeyData& key) {
  std::string out = begin_message(backend_msg::kBackendKeyData);
  append_u32(out, key.process_id);
  append_u32(out, key.secret_key);
  return end_message(std::move(out));
}

std::string encode_ready_for_query(char status) {
  std::string out = begin_message(backend_msg::kReadyForQuery);
  out.push_back(status);
  return end_message(std::move(out));
}

// ---- backend messages pgnap reads from PostgreSQL ----

std::optional<Authentication> parse_authentication(Bytes body) {
  BodyReader r(body);
  const auto code = r.i32();
  if (!code) return std::nullopt;
  Authentication auth{*code, r.rest()};
  // The requests whose layout is fixed must have exactly it; the others (SASL and its
  // continuations, GSSAPI, SSPI) carry data of their own, which the caller reads.
  switch (auth.code) {
    case auth_code::kOk:
    case auth_code::kCleartextPassword:
      if (!auth.payload.empty()) return std::nullopt;
      break;
    case auth_code::kMd5Password:
      if (auth.payload.size() != 4) return std::nullopt;
      break;
    default: break;
  }
  return auth;
}

std::optional<std::vector<std::string>> parse_sasl_mechanisms(Bytes payload) {
  // Each name a String, the list ended by an empty one (CheckSASLAuth() in PostgreSQL's
  // src/backend/libpq/auth-sasl.c).
  BodyReader r(payload);
  std::vector<std::string> names;
  for (;;) {
    auto name = r.string();
    if (!name) return std::nullopt;
    if (name->empty()) break;
    names.push_back(std::move(*name));
  }
  if (!r.at_end()) return std::nullopt;
  return names;
}

void set_parameter(ParameterList& parameters, std::string_view name, std::string value) {
  for (auto& [n, v] : parameters) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  parameters.emplace_back(std::string(name), std::move(value));
}

const std::string* find_parameter(const ParameterList& parameters, std::string_view name) {
  for (const auto& [n, v] : parameters) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::optional<std::pair<std::string, std::string>> parse_parameter_status(Bytes body) {
  BodyReader r(body);
  auto name = r.string();
  if (!name) return std::nullopt;
  auto value = r.string();
  if (!value || !r.at_end()) return std::nullopt;
  return std::pair{std::move(*name), std::move(*value)};
}

std::optional<BackendKeyData> parse_backend_key_data_body(Bytes body) {
  // Exactly two Int32s: protocol 3.2 (PostgreSQL 18) allows a longer key, but pgnap speaks 3.0.
  if (body.size() != 8) return std::nullopt;
  return BackendKeyData{read_u32(body.data()), read_u32(body.data() + 4)};
}

std::optional<char> parse_ready_for_query_body(Bytes body) {
  if (body.size() != 1) return std::nullopt;
  const char status = static_cast<char>(body[0]);
  if (status != 'I' && status != 'T' && status != 'E') return std::nullopt;
  return status;
}

std::optional<ErrorResponse> parse_error_response(Bytes body) {
  // Fields of a Byte1 code and a String, ended by a zero byte. 'V' (PostgreSQL 9.6+) is the
  // severity never translated, so it wins over 'S', which follows lc_messages. A severity that
  // was not sent stays empty rather than taking ErrorResponse's default.
  BodyReader r(body);
  ErrorResponse error;
  error.severity.clear();
  std::optional<std::string> localized;
  std::optional<std::string> severity;
  for (;;) {
    const auto code = r.byte();
    if (!code) return std::nullopt;  // no terminating zero byte
    if (*code == 0) break;
    auto value = r.string();
    if (!value) return std::nullopt;
    switch (*code) {
      case 'S': localized = std::move(*value); break;
      case 'V': severity = std::move(*value); break;
      case 'C': error.sqlstate = std::move(*value); break;
      case 'M': error.message = std::move(*value); break;
      case 'D': error.detail = std::move(*value); break;
      case 'H': error.hint = std::move(*value); break;
      default: break;  // position, file, line, routine, schema...: not needed, and more may come
    }
  }
  if (!r.at_end()) return std::nullopt;
  if (severity) {
    error.severity = std::move(*severity);
  } else if (localized) {
    error.severity = std::move(*localized);
  }
  return error;
}

std::optional<std::vector<std::optional<std::string>>> parse_data_row(Bytes body) {
  // The column count is an Int16 that libpq reads unsigned (getAnotherTuple() in
  // fe-protocol3.c); PostgreSQL never sends more than 1664 columns.
  BodyReader r(body);
  const auto count = r.u16();
  if (!count) return std::nullopt;
  // Each column takes at least its 4-byte length: a count the body cannot hold is refused
  // before the vector is sized for it.
  if (std::size_t{*count} > r.remaining() / 4) return std::nullopt;
  std::vector<std::optional<std::string>> columns;
  columns.reserve(*count);
  for (std::uint16_t i = 0; i < *count; ++i) {
    auto column = r.counted_bytes();
    if (!column) return std::nullopt;
    columns.push_back(std::move(*column));
  }
  if (!r.at_end()) return std::nullopt;
  return columns;
}

std::optional<std::string> parse_command_complete(Bytes body) { return single_string(body); }

// ---- frontend messages pgnap reads from a client ----

std::optional<std::string> parse_password_message(Bytes body) { return single_string(body); }

std::optional<SaslInitialResponse> parse_sasl_initial_response(Bytes body) {
  BodyReader r(body);
  auto mechanism = r.string();
  if (!mechanism) return std::nullopt;
  auto data = r.counted_bytes();
  if (!data || !r.at_end()) return std::nullopt;
  return SaslInitialResponse{std::move(*mechanism), std::move(*data)};
}

std::optional<std::string> parse_query(Bytes body) { return single_string(body); }

// ---- frontend messages pgnap writes as a client to PostgreSQL ----

std::string encode_password_message(std::string_view password) {
  std::string out = begin_message(frontend_msg::kPassword);
  append_string(out, password);
  return end_message(std::move(out));
}

std::string encode_sasl_initial_response(std::string_view mechanism, std::string_view data) {
  std::string out = begin_message(frontend_msg::kPassword);
  append_string(out, mechanism);
  append_i32(out, static_cast<std::int32_t>(data.size()));
  out += data;
  return end_message(std::move(out));
}

std::string encode_sasl_initial_response(std::string_view mechanism) {
  std::string out = begin_message(frontend_msg::kPassword);
  append_string(out, mechanism);
  append_i32(out, -1);
  return end_message(std::move(out));
}

std::string encode_sasl_response(std::string_view data) {
  std::string out = begin_message(frontend_msg::kPassword);
  out += data;
  return end_message(std::move(out));
}

std::string sql_literal(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string encode_query(std::string_view sql) {
  std::string out = begin_message(frontend_msg::kQuery);
  append_string(out, sql);
  return end_message(std::move(out));
}

std::string encode_parse(std::string_view statement, std::string_view sql) {
  std::string out = begin_message(frontend_msg::kParse);
  append_string(out, statement);
  append_string(out, sql);
  append_u16(out, 0);  // no parameter types: the server infers them
  return end_message(std::move(out));
}

std::string encode_parse(std::string_view statement, std::string_view sql,
                         std::span<const std::uint32_t> parameter_types) {
  std::string out = begin_message(frontend_msg::kParse);
  append_string(out, statement);
  append_string(out, sql);
  append_u16(out, static_cast<std::uint16_t>(parameter_types.size()));
  for (const std::uint32_t type : parameter_types) append_i32(out, static_cast<std::int32_t>(type));
  return end_message(std::move(out));
}

std::string encode_bind(std::string_view portal, std::string_view statement,
                        std::span<const std::optional<std::string>> parameters) {
  std::string out = begin_message(frontend_msg::kBind);
  append_string(out, portal);
  append_string(out, statement);
  append_u16(out, 0);  // no parameter format codes: all text
  append_u16(out, static_cast<std::uint16_t>(parameters.size()));
  for (const auto& parameter : parameters) {
    if (!parameter) {
      append_i32(out, -1);  // NULL
      continue;
    }
    append_i32(out, static_cast<std::int32_t>(parameter->size()));
    out += *parameter;
  }
  append_u16(out, 0);  // no result format codes: all text
  return end_message(std::move(out));
}

std::string encode_describe_portal(std::string_view portal) {
  std::string out = begin_message(frontend_msg::kDescribe);
  out.push_back('P');
  append_string(out, portal);
  return end_message(std::move(out));
}

std::string encode_execute(std::string_view portal) {
  std::string out = begin_message(frontend_msg::kExecute);
  append_string(out, portal);
  append_i32(out, 0);  // no row limit
  return end_message(std::move(out));
}

std::string encode_sync() { return end_message(begin_message(frontend_msg::kSync)); }

}  // namespace pgnap::protocol
