// Encoders of the messages pgnap itself writes: ErrorResponse, NegotiateProtocolVersion,
// the startup packet it forwards, and the CancelRequest it relays.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "protocol/startup.h"

namespace pgnap::protocol {

// SQLSTATE codes pgnap emits (https://www.postgresql.org/docs/15/errcodes-appendix.html).
namespace sqlstate {
inline constexpr std::string_view kProtocolViolation = "08P01";
inline constexpr std::string_view kInvalidCatalogName = "3D000";  // unknown database
inline constexpr std::string_view kTooManyConnections = "53300";
inline constexpr std::string_view kCannotConnectNow = "57P03";
inline constexpr std::string_view kAdminShutdown = "57P01";
inline constexpr std::string_view kInvalidAuthorization = "28000";
inline constexpr std::string_view kInvalidPassword = "28P01";
inline constexpr std::string_view kQueryCanceled = "57014";
inline constexpr std::string_view kConfigurationLimitExceeded = "53400";
}  // namespace sqlstate

// What pgnap says in an ErrorResponse: the one error type that carries a refusal from where
// it is decided (an instance, the startup reader, the router) to the bytes on the wire.
struct ErrorResponse {
  std::string severity = "FATAL";  // 'S' and 'V'. FATAL ends the session, ERROR the query.
  std::string sqlstate;            // 'C'
  std::string message;             // 'M'
  std::string detail;              // 'D', omitted when empty
  std::string hint;                // 'H', omitted when empty
};

// A complete ErrorResponse ('E') message. Field values containing NUL bytes are cut at the
// NUL, so a detail quoted from a log cannot break the framing.
[[nodiscard]] std::string encode_error_response(const ErrorResponse& error);

// NegotiateProtocolVersion ('v'): the newest minor version of protocol 3 that pgnap supports,
// and the "_pq_." options it did not recognise.
[[nodiscard]] std::string encode_negotiate_protocol_version(std::uint16_t newest_minor,
                                                            std::span<const std::string> unrecognized_options);

// A protocol 3.0 StartupMessage with `msg`'s parameters (minor version is not copied:
// pgnap always speaks 3.0 to PostgreSQL).
[[nodiscard]] std::string encode_startup_message(const StartupMessage& msg);

[[nodiscard]] std::string encode_cancel_request(const CancelRequest& req);

// pgnap speaks protocol 3.0 to PostgreSQL. A client asking for 3.x with x > 0, or for
// "_pq_." protocol options, is answered by pgnap itself with NegotiateProtocolVersion (the
// message a 3.0-only server sends, postmaster.c SendNegotiateProtocolVersion()) before
// anything else reaches it; the startup forwarded is 3.0 without those options.
struct NegotiatedStartup {
  StartupMessage forwarded;
  std::optional<std::string> negotiate_message;  // for the client, when needed
};
[[nodiscard]] NegotiatedStartup negotiate_startup(const StartupMessage& requested);

// Terminate ('X'): sent to PostgreSQL when pgnap ends a session on its own.
[[nodiscard]] std::string encode_terminate();

}  // namespace pgnap::protocol
