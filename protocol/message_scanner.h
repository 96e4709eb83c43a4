// Incremental framing of the typed messages that follow the startup phase, in either
// direction: a 1-byte type, then a 4-byte length that counts itself but not the type.
//
// The relay forwards bytes as they arrive; the scanner walks the same bytes beside it,
// across arbitrary read boundaries and without copying, and reports each message whose
// type the caller asked to see, with the first bytes of its body. That is all pgnap needs
// from the stream: BackendKeyData for cancel routing, ReadyForQuery for activity,
// ErrorResponse for counting, Terminate from the client.
//
// A length below 4 or above the configured maximum means the stream is out of sync or
// hostile; the scanner stops and the connection must be closed. It never guesses.
#pragma once

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/wire.h"

namespace pgnap::protocol {

// Bytes of body kept for inspected messages. Enough for BackendKeyData (8), ReadyForQuery
// (1), Authentication's code (4) and the leading fields of an ErrorResponse.
inline constexpr std::size_t kScanCaptureBytes = 64;

struct ScannedMessage {
  char type = 0;
  std::uint32_t length = 0;  // as on the wire: body length + 4
  // The first min(length - 4, kScanCaptureBytes) bytes of the body.
  Bytes head;
};

enum class ScanStatus { kOk, kInvalid };

// Why a stream became invalid: callers decide on this, never on the wording of error().
enum class ScanError {
  kNone,
  kLengthBelowMinimum,  // a length word below 4: the stream is out of sync
  kLengthAboveMaximum,  // above the configured maximum: the size limit
};

class MessageScanner {
 public:
  // `max_length`: the largest length word accepted (PostgreSQL's own limit for most
  // messages is 1 GiB, PQ_LARGE_MESSAGE_LIMIT). `watched`: the types reported to the callback.
  MessageScanner(std::uint32_t max_length, std::bitset<256> watched);

  // Walks `input`, the next bytes of the stream. For every watched message, calls
  // `on_message(const ScannedMessage&)` as soon as its header and captured head are
  // complete (which may be before the rest of its body has arrived). Returns kInvalid, and
  // keeps returning it, once a bad length is seen; `error()` says why.
  template <typename OnMessage>
  ScanStatus scan(Bytes input, OnMessage&& on_message);

  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] ScanError error_kind() const { return error_kind_; }
  // True when the bytes seen so far end exactly at a message boundary.
  [[nodiscard]] bool at_boundary() const { return header_have_ == 0 && body_remaining_ == 0 && !capturing_; }
  // Number of complete messages seen so far (watched or not). A message is counted when its
  // last byte has been seen, so inside on_message the one being reported is not yet counted.
  [[nodiscard]] std::uint64_t messages() const { return messages_; }

 private:
  // Consumes header bytes from `input` starting at `pos`; returns the new position.
  // Sets error_ on a bad length.
  std::size_t take_header(Bytes input, std::size_t pos);

  std::uint32_t max_length_;
  std::bitset<256> watched_;
  std::array<std::uint8_t, 5> header_{};
  std::size_t header_have_ = 0;
  std::uint32_t body_remaining_ = 0;  // body bytes of the current message not yet seen
  bool capturing_ = false;            // collecting the head of a watched message
  std::size_t capture_want_ = 0;
  std::size_t capture_have_ = 0;
  std::array<std::uint8_t, kScanCaptureBytes> capture_{};
  std::uint64_t messages_ = 0;
  ScanError error_kind_ = ScanError::kNone;
  std::string error_;
};

// Decoding of the captured heads the relay cares about.
struct BackendKeyData {
  std::uint32_t process_id = 0;
  std::uint32_t secret_key = 0;
};
// nullopt when the message is not a 12-byte protocol 3.0 BackendKeyData.
[[nodiscard]] std::optional<BackendKeyData> parse_backend_key_data(const ScannedMessage& m);
// The transaction status byte of ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' failed
// transaction; nullopt when malformed.
[[nodiscard]] std::optional<char> parse_ready_for_query(const ScannedMessage& m);
// The SQLSTATE ('C' field) of an ErrorResponse when it lies within the captured head.
[[nodiscard]] std::optional<std::string> parse_error_sqlstate(const ScannedMessage& m);
// The Authentication request code (0 = AuthenticationOk, 3 = cleartext, 5 = MD5, 10 = SASL...).
[[nodiscard]] std::optional<std::int32_t> parse_authentication_code(const ScannedMessage& m);

// ---- implementation of the template ----

template <typename OnMessage>
ScanStatus MessageScanner::scan(Bytes input, OnMessage&& on_message) {
  if (error_kind_ != ScanError::kNone) return ScanStatus::kInvalid;
  std::size_t pos = 0;
  const std::size_t n = input.size();
  while (pos < n) {
    if (capturing_) {
      const std::size_t take = std::min(capture_want_ - capture_have_, n - pos);
      for (std::size_t i = 0; i < take; ++i) capture_[capture_have_ + i] = input[pos + i];
      capture_have_ += take;
      body_remaining_ -= static_cast<std::uint32_t>(take);
      pos += take;
      if (capture_have_ == capture_want_) {
        capturing_ = false;
        ScannedMessage m{static_cast<char>(header_[0]), read_u32(&header_[1]), Bytes(capture_.data(), capture_have_)};
        on_message(m);
        if (body_remaining_ == 0) ++messages_;
      }
      continue;
    }
    if (body_remaining_ > 0) {
      const std::size_t skip = std::min<std::size_t>(body_remaining_, n - pos);
      body_remaining_ -= static_cast<std::uint32_t>(skip);
      pos += skip;
      if (body_remaining_ == 0) ++messages_;
      continue;
    }
    pos = take_header(input, pos);
    if (error_kind_ != ScanError::kNone) return ScanStatus::kInvalid;
    if (header_have_ < 5) continue;  // header still incomplete: input exhausted
    header_have_ = 0;
    const auto type = header_[0];
    const std::uint32_t body = read_u32(&header_[1]) - 4;
    body_remaining_ = body;
    if (watched_.test(type)) {
      capture_want_ = std::min<std::size_t>(body, kScanCaptureBytes);
      capture_have_ = 0;
      if (capture_want_ == 0) {
        ScannedMessage m{static_cast<char>(type), 4, Bytes()};
        on_message(m);
      } else {
        capturing_ = true;
        continue;
      }
    }
    if (body_remaining_ == 0) ++messages_;
  }
  return ScanStatus::kOk;
}

}  // namespace pgnap::protocol
