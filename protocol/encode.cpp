// Encoders of the messages pgnap writes itself. Layouts from
// https://www.postgresql.org/docs/15/protocol-message-formats.html and field codes from
// https://www.postgresql.org/docs/15/protocol-error-fields.html.
#include "protocol/encode.h"

#include <vector>

#include "protocol/wire_writer.h"

namespace pgnap::protocol {

namespace {

using detail::append_string;
using detail::begin_message;
using detail::end_message;
using detail::until_nul;

void append_field(std::string& out, char code, std::string_view value) {
  out.push_back(code);
  append_string(out, value);
}

}  // namespace

std::string encode_error_response(const ErrorResponse& fields) {
  std::string out = begin_message(backend_msg::kErrorResponse);
  append_field(out, 'S', fields.severity);
  // 'V' is the non-localized severity (PostgreSQL 9.6+); pgnap never localizes, so the
  // two are the same.
  append_field(out, 'V', fields.severity);
  append_field(out, 'C', fields.sqlstate);
  append_field(out, 'M', fields.message);
  if (!until_nul(fields.detail).empty()) append_field(out, 'D', fields.detail);
  if (!until_nul(fields.hint).empty()) append_field(out, 'H', fields.hint);
  out.push_back('\0');  // end of the field list
  return end_message(std::move(out));
}

std::string encode_negotiate_protocol_version(std::uint16_t newest_minor,
                                              std::span<const std::string> unrecognized_options) {
  // Int32 newest minor version, Int32 number of options, then each option name as a String
  // (SendNegotiateProtocolVersion() in postmaster.c).
  std::string out = begin_message(backend_msg::kNegotiateProtocolVersion);
  append_u32(out, newest_minor);
  append_u32(out, static_cast<std::uint32_t>(unrecognized_options.size()));
  for (const auto& name : unrecognized_options) append_string(out, name);
  return end_message(std::move(out));
}

std::string encode_startup_message(const StartupMessage& msg) {
  std::string out;
  append_u32(out, 0);  // length, patched below
  append_u32(out, kProtocol3);
  for (const auto& [name, value] : msg.parameters) {
    // An empty name would read as the list terminator and shift everything after it; such a
    // parameter cannot be represented, and decode_startup() never produces one.
    if (until_nul(name).empty()) continue;
    append_string(out, name);
    append_string(out, value);
  }
  out.push_back('\0');
  put_u32(out, 0, static_cast<std::uint32_t>(out.size()));
  return out;
}

std::string encode_cancel_request(const CancelRequest& req) {
  std::string out;
  append_u32(out, kCancelRequestLength);
  append_u32(out, kCancelRequestCode);
  append_u32(out, req.process_id);
  append_u32(out, req.secret_key);
  return out;
}

NegotiatedStartup negotiate_startup(const StartupMessage& requested) {
  NegotiatedStartup out;
  out.forwarded.major = 3;
  out.forwarded.minor = 0;
  std::vector<std::string> unrecognized;
  for (const auto& [name, value] : requested.parameters) {
    if (name.starts_with("_pq_.")) {
      unrecognized.push_back(name);
    } else {
      out.forwarded.parameters.emplace_back(name, value);
    }
  }
  if (requested.minor > 0 || !unrecognized.empty()) {
    out.negotiate_message = encode_negotiate_protocol_version(0, unrecognized);
  }
  return out;
}

std::string encode_terminate() { return end_message(begin_message(frontend_msg::kTerminate)); }

}  // namespace pgnap::protocol
