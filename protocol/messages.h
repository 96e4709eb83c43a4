// The messages pgnap reads and writes itself in the authenticating mode (docs/architecture.md):
// as a server to clients (authentication, the session's greeting), and as a client to
// PostgreSQL (logging in for a client, the auth_query). Layouts from
// https://www.postgresql.org/docs/15/protocol-message-formats.html.
//
// Encoders return a complete message (type byte and length). Decoders take a message body
// (Frame::body, without type and length) and return nullopt when it is malformed: too short,
// a missing NUL terminator, trailing bytes, a negative length that is not -1.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/encode.h"
#include "protocol/message_scanner.h"
#include "protocol/wire.h"

namespace pgnap::protocol {

// Authentication request codes ('R').
namespace auth_code {
inline constexpr std::int32_t kOk = 0;
inline constexpr std::int32_t kCleartextPassword = 3;
inline constexpr std::int32_t kMd5Password = 5;
inline constexpr std::int32_t kSasl = 10;
inline constexpr std::int32_t kSaslContinue = 11;
inline constexpr std::int32_t kSaslFinal = 12;
}  // namespace auth_code

// Message types not in wire.h.
namespace frontend_msg {
inline constexpr char kPassword = 'p';  // PasswordMessage, SASLInitialResponse and SASLResponse
}  // namespace frontend_msg
namespace backend_msg {
inline constexpr char kRowDescription = 'T';
inline constexpr char kDataRow = 'D';
inline constexpr char kEmptyQueryResponse = 'I';
inline constexpr char kParseComplete = '1';
inline constexpr char kBindComplete = '2';
inline constexpr char kNoData = 'n';
}  // namespace backend_msg

// ---- backend messages pgnap writes as a server ----

[[nodiscard]] std::string encode_authentication_ok();
[[nodiscard]] std::string encode_authentication_cleartext();
[[nodiscard]] std::string encode_authentication_md5(const std::array<std::uint8_t, 4>& salt);
// AuthenticationSASL: the mechanism names, each NUL-terminated, then a final NUL.
[[nodiscard]] std::string encode_authentication_sasl(std::span<const std::string> mechanisms);
[[nodiscard]] std::string encode_authentication_sasl_continue(std::string_view data);
[[nodiscard]] std::string encode_authentication_sasl_final(std::string_view data);
[[nodiscard]] std::string encode_parameter_status(std::string_view name, std::string_view value);
[[nodiscard]] std::string encode_backend_key_data(const BackendKeyData& key);
// 'I', 'T' or 'E'.
[[nodiscard]] std::string encode_ready_for_query(char status);

// ---- backend messages pgnap reads from PostgreSQL (complete bodies) ----

struct Authentication {
  std::int32_t code = 0;
  Bytes payload;  // what follows the code: MD5 salt, SASL mechanisms or data
};
[[nodiscard]] std::optional<Authentication> parse_authentication(Bytes body);
// AuthenticationSASL's payload: the mechanism names.
[[nodiscard]] std::optional<std::vector<std::string>> parse_sasl_mechanisms(Bytes payload);
[[nodiscard]] std::optional<std::pair<std::string, std::string>> parse_parameter_status(Bytes body);
// A session's parameters as ParameterStatus reports them, in the order first reported.
using ParameterList = std::vector<std::pair<std::string, std::string>>;
// Sets `name` to `value` (a ParameterStatus received), appending it when it is new.
void set_parameter(ParameterList& parameters, std::string_view name, std::string value);
// The value of `name`, or nullptr when it was never reported.
[[nodiscard]] const std::string* find_parameter(const ParameterList& parameters, std::string_view name);
[[nodiscard]] std::optional<BackendKeyData> parse_backend_key_data_body(Bytes body);
[[nodiscard]] std::optional<char> parse_ready_for_query_body(Bytes body);
// Every field of an ErrorResponse or NoticeResponse: S (or V), C, M, D, H; others ignored.
// nullopt when a field is not NUL-terminated or the list lacks its final NUL. `severity` is
// V when sent, else S, else empty (not ErrorResponse's default "FATAL").
[[nodiscard]] std::optional<ErrorResponse> parse_error_response(Bytes body);
// DataRow: each column's bytes, nullopt for SQL NULL.
[[nodiscard]] std::optional<std::vector<std::optional<std::string>>> parse_data_row(Bytes body);
[[nodiscard]] std::optional<std::string> parse_command_complete(Bytes body);

// ---- frontend messages pgnap reads from a client (complete bodies) ----

// PasswordMessage: one NUL-terminated string (cleartext password or md5 answer).
[[nodiscard]] std::optional<std::string> parse_password_message(Bytes body);
struct SaslInitialResponse {
  std::string mechanism;
  std::optional<std::string> data;  // nullopt when the length is -1
};
[[nodiscard]] std::optional<SaslInitialResponse> parse_sasl_initial_response(Bytes body);
// Query: the SQL text, NUL-terminated.
[[nodiscard]] std::optional<std::string> parse_query(Bytes body);

// ---- frontend messages pgnap writes as a client to PostgreSQL ----

[[nodiscard]] std::string encode_password_message(std::string_view password);
[[nodiscard]] std::string encode_sasl_initial_response(std::string_view mechanism, std::string_view data);
// Without initial data: its length is sent as -1 (what parse_sasl_initial_response() reads as
// a nullopt `data`).
[[nodiscard]] std::string encode_sasl_initial_response(std::string_view mechanism);
[[nodiscard]] std::string encode_sasl_response(std::string_view data);
[[nodiscard]] std::string encode_query(std::string_view sql);
// `value` as a SQL string literal for the queries pgnap writes itself: quotes doubled, which is
// the whole escaping with standard_conforming_strings on (every supported PostgreSQL; E''
// strings are never produced).
[[nodiscard]] std::string sql_literal(std::string_view value);
// The extended protocol, with text parameters and text results: Parse (unnamed statement, no
// parameter types), Bind (unnamed portal; nullopt parameter = NULL), Describe portal,
// Execute (all rows), Sync. At most 65535 parameters (the count is an Int16 that PostgreSQL
// reads unsigned), each shorter than 2 GiB.
[[nodiscard]] std::string encode_parse(std::string_view statement, std::string_view sql);
// Parse with the parameter types given (OIDs; 0 leaves one to the server), as a client that
// prepared a named statement sent it. At most 65535 types.
[[nodiscard]] std::string encode_parse(std::string_view statement, std::string_view sql,
                                       std::span<const std::uint32_t> parameter_types);
[[nodiscard]] std::string encode_bind(std::string_view portal, std::string_view statement,
                                      std::span<const std::optional<std::string>> parameters);
[[nodiscard]] std::string encode_describe_portal(std::string_view portal);
[[nodiscard]] std::string encode_execute(std::string_view portal);
[[nodiscard]] std::string encode_sync();

}  // namespace pgnap::protocol
