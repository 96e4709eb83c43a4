// Non-template parts of MessageScanner and the decoders of the captured heads. Message
// layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include "protocol/message_scanner.h"

#include <utility>

#include "protocol/length_check.h"

namespace pgnap::protocol {

namespace {

// The type byte as it reads in an error message: 'D' when printable, 0x00 otherwise (a
// stream out of sync usually shows up as a non-letter type).
std::string describe_type(std::uint8_t type) {
  if (type >= 0x21 && type < 0x7f) return std::string("'") + static_cast<char>(type) + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[type >> 4] + kHex[type & 0xf];
}

bool is_sqlstate_char(std::uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); }

}  // namespace

namespace detail {

LengthCheck check_length(std::uint8_t type, std::uint32_t length, std::uint32_t max_length) {
  // The length word counts itself, so anything below 4 cannot be a message; a length above
  // the limit is refused before the relay buffers or forwards that much (PgBouncer's
  // get_header() does the same with cf_max_packet_size).
  if (length < 4) {
    return {ScanError::kLengthBelowMinimum, "message of type " + describe_type(type) + " claims invalid length " +
                                                std::to_string(length) + ", below the minimum of 4 bytes"};
  }
  if (length > max_length) {
    return {ScanError::kLengthAboveMaximum, "message of type " + describe_type(type) + " claims length " +
                                                std::to_string(length) + ", above the maximum of " +
                                                std::to_string(max_length) + " bytes"};
  }
  return {};
}

}  // namespace detail

MessageScanner::MessageScanner(std::uint32_t max_length, std::bitset<256> watched)
    : max_length_(max_length), watched_(watched) {}

std::size_t MessageScanner::take_header(Bytes input, std::size_t pos) {
  const std::size_t take = std::min(header_.size() - header_have_, input.size() - pos);
  std::copy_n(input.data() + pos, take, header_.data() + header_have_);
  header_have_ += take;
  pos += take;
  if (header_have_ < header_.size()) return pos;

  detail::LengthCheck check = detail::check_length(header_[0], read_u32(&header_[1]), max_length_);
  error_kind_ = check.kind;
  error_ = std::move(check.error);
  return pos;
}

std::optional<BackendKeyData> parse_backend_key_data(const ScannedMessage& m) {
  // BackendKeyData (B): Int32(12), Int32 process ID, Int32 secret key. Protocol 3.2 (PG 18)
  // allows longer keys; pgnap negotiates 3.0 with the server, so any other length is wrong.
  if (m.type != backend_msg::kBackendKeyData || m.length != 12 || m.head.size() < 8) return std::nullopt;
  return BackendKeyData{read_u32(m.head.data()), read_u32(m.head.data() + 4)};
}

std::optional<char> parse_ready_for_query(const ScannedMessage& m) {
  // ReadyForQuery (B): Int32(5), Byte1 status: 'I' idle, 'T' in a transaction block,
  // 'E' in a failed transaction block.
  if (m.type != backend_msg::kReadyForQuery || m.length != 5 || m.head.size() < 1) return std::nullopt;
  const char status = static_cast<char>(m.head[0]);
  if (status != 'I' && status != 'T' && status != 'E') return std::nullopt;
  return status;
}

std::optional<std::string> parse_error_sqlstate(const ScannedMessage& m) {
  // ErrorResponse and NoticeResponse share one body: fields of a Byte1 code and a String
  // value, ended by a zero byte (protocol-error-fields.html). Only fields wholly inside the
  // captured head can be read; the 'C' field is usually the third, after 'S' and 'V'.
  if (m.type != backend_msg::kErrorResponse && m.type != backend_msg::kNoticeResponse) return std::nullopt;
  const Bytes head = m.head;
  std::size_t pos = 0;
  while (pos < head.size()) {
    const std::uint8_t code = head[pos];
    if (code == 0) return std::nullopt;  // end of the fields: no SQLSTATE sent
    const std::size_t value = pos + 1;
    std::size_t end = value;
    while (end < head.size() && head[end] != 0) ++end;
    if (end == head.size()) return std::nullopt;  // the field runs past the capture
    if (code == 'C') {
      // A SQLSTATE is five digits or upper-case letters (errcodes-appendix.html). Anything
      // else is malformed, and must not reach a metric label as is.
      if (end - value != 5) return std::nullopt;
      for (std::size_t i = value; i < end; ++i) {
        if (!is_sqlstate_char(head[i])) return std::nullopt;
      }
      return std::string(reinterpret_cast<const char*>(head.data()) + value, end - value);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<std::int32_t> parse_authentication_code(const ScannedMessage& m) {
  // Authentication* (B): Int32 length, Int32 request code, then code-specific data.
  if (m.type != backend_msg::kAuthentication || m.length < 8 || m.head.size() < 4) return std::nullopt;
  return read_i32(m.head.data());
}

}  // namespace pgnap::protocol
