#include "daemon/client_auth.h"

#include <algorithm>

#include "auth/md5.h"
#include "daemon/random.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

namespace {

namespace sqlstate = protocol::sqlstate;
using Kind = ClientAuthFailure::Kind;

// PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH: the largest authentication message it reads.
constexpr std::uint32_t kMaxAuthMessage = 65535;

bool allows(const ClientAuthRequest& request, std::string_view method) {
  return std::find(request.methods.begin(), request.methods.end(), method) != request.methods.end();
}

ClientAuthFailure failure(Kind kind, std::string_view code, std::string message, std::string detail = {}) {
  return ClientAuthFailure{
      kind, protocol::ErrorResponse{"FATAL", std::string(code), std::move(message), std::move(detail), {}}};
}

ClientAuthFailure wrong_password(const std::string& user) {
  // PostgreSQL's own words, for a wrong password and for a role that does not exist alike:
  // the client learns nothing about which roles exist.
  return failure(Kind::kWrongPassword, sqlstate::kInvalidPassword,
                 "password authentication failed for user \"" + user + "\"");
}

ClientAuthFailure from_scram(const auth::ScramFailure& f) {
  const Kind kind = f.sqlstate == sqlstate::kInvalidPassword ? Kind::kWrongPassword : Kind::kProtocol;
  return failure(kind, f.sqlstate, f.message, f.detail);
}

// The next message of the exchange, which must be a 'p' (PasswordMessage, SASLInitialResponse
// or SASLResponse). `expected` names it in the error, as PostgreSQL does.
asio::awaitable<std::variant<std::string, ClientAuthFailure>> read_answer(
    MessageReader& reader, std::string_view expected, Clock::time_point deadline) {
  const auto read = co_await reader.next(deadline);
  switch (read.status) {
    case MessageReader::Status::kMessage: break;
    case MessageReader::Status::kClosed: co_return ClientAuthFailure{Kind::kGone, {}};
    case MessageReader::Status::kTimedOut:
      co_return failure(Kind::kTimedOut, sqlstate::kProtocolViolation,
                        "invalid startup packet: authentication not completed within login_timeout");
    case MessageReader::Status::kInvalid:
      co_return failure(Kind::kProtocol, sqlstate::kProtocolViolation, "invalid message from client: " + read.detail);
  }
  if (read.frame.type == protocol::frontend_msg::kTerminate) co_return ClientAuthFailure{Kind::kGone, {}};
  if (read.frame.type != protocol::frontend_msg::kPassword) {
    co_return failure(Kind::kProtocol, sqlstate::kProtocolViolation,
                      "expected " + std::string(expected) + " response, got message type " +
                          std::to_string(static_cast<unsigned char>(read.frame.type)));
  }
  co_return std::string(reinterpret_cast<const char*>(read.frame.body.data()), read.frame.body.size());
}

asio::awaitable<std::variant<ClientLogin, ClientAuthFailure>> run_scram(
    Stream& client, MessageReader& reader, const ClientAuthRequest& request, Clock::time_point deadline) {
  auth::ScramServer::Options options;
  options.user = request.user;
  if (request.credential && request.credential->scram) options.verifier = request.credential->scram;
  options.mock_secret = request.mock_secret;
  options.server_nonce = random_nonce();
  options.channel_binding_data = request.channel_binding;
  auth::ScramServer scram(std::move(options));

  const auto mechanisms = scram.mechanisms();
  if (co_await write_all(client, protocol::encode_authentication_sasl(mechanisms), deadline)) {
    co_return ClientAuthFailure{Kind::kGone, {}};
  }
  auto initial = co_await read_answer(reader, "SASL", deadline);
  if (auto* f = std::get_if<ClientAuthFailure>(&initial)) co_return std::move(*f);
  const auto& initial_body = std::get<std::string>(initial);
  const auto parsed = protocol::parse_sasl_initial_response(protocol::as_bytes(initial_body));
  if (!parsed || !parsed->data) {
    co_return failure(Kind::kProtocol, sqlstate::kProtocolViolation, "malformed SASLInitialResponse message");
  }
  auto server_first = scram.first(parsed->mechanism, *parsed->data);
  if (auto* f = std::get_if<auth::ScramFailure>(&server_first)) co_return from_scram(*f);
  const std::string cont = protocol::encode_authentication_sasl_continue(std::get<std::string>(server_first));
  if (co_await write_all(client, cont, deadline)) co_return ClientAuthFailure{Kind::kGone, {}};

  auto response = co_await read_answer(reader, "SASL", deadline);
  if (auto* f = std::get_if<ClientAuthFailure>(&response)) co_return std::move(*f);
  auto outcome = scram.final(std::get<std::string>(response));
  if (auto* f = std::get_if<auth::ScramFailure>(&outcome)) co_return from_scram(*f);
  auto& success = std::get<auth::ScramServer::Success>(outcome);
  if (co_await write_all(client, protocol::encode_authentication_sasl_final(success.server_final), deadline)) {
    co_return ClientAuthFailure{Kind::kGone, {}};
  }
  const bool plus = parsed->mechanism == auth::kScramSha256Plus;
  co_return ClientLogin{plus ? "scram-sha-256-plus" : "scram-sha-256", success.client_key};
}

asio::awaitable<std::variant<ClientLogin, ClientAuthFailure>> run_md5(
    Stream& client, MessageReader& reader, const ClientAuthRequest& request, Clock::time_point deadline) {
  auth::Md5Salt salt{};
  const std::string bytes = random_bytes(salt.size());
  std::copy(bytes.begin(), bytes.end(), salt.begin());
  if (co_await write_all(client, protocol::encode_authentication_md5(salt), deadline)) {
    co_return ClientAuthFailure{Kind::kGone, {}};
  }
  auto answer = co_await read_answer(reader, "password", deadline);
  if (auto* f = std::get_if<ClientAuthFailure>(&answer)) co_return std::move(*f);
  const auto& body = std::get<std::string>(answer);
  const auto response = protocol::parse_password_message(protocol::as_bytes(body));
  if (!response) co_return failure(Kind::kProtocol, sqlstate::kProtocolViolation, "invalid password packet size");
  // An unknown user is asked all the same and refused with the same words.
  if (!request.credential) co_return wrong_password(request.user);
  const std::string hash = request.credential->kind == auth::Credential::Kind::kMd5
                               ? request.credential->secret
                               : auth::md5_password_hash(request.credential->secret, request.user);
  if (!auth::md5_verify(hash, salt, *response)) co_return wrong_password(request.user);
  co_return ClientLogin{"md5", std::nullopt};
}

}  // namespace

std::string_view to_string(ClientAuthFailure::Kind kind) {
  switch (kind) {
    case Kind::kWrongPassword: return "wrong_password";
    case Kind::kProtocol: return "protocol_error";
    case Kind::kGone: return "gone";
    case Kind::kTimedOut: return "timeout";
  }
  return "?";
}

asio::awaitable<std::variant<ClientLogin, ClientAuthFailure>> authenticate_client(
    Stream& client, MessageReader& reader, const ClientAuthRequest& request, Clock::time_point deadline) {
  reader.set_max_length(kMaxAuthMessage);
  if (allows(request, "trust")) co_return ClientLogin{"trust", std::nullopt};
  const bool scram_ok = allows(request, "scram-sha-256");
  const bool md5_ok = allows(request, "md5");
  using CK = auth::Credential::Kind;
  const std::optional<CK> kind = request.credential ? std::optional(request.credential->kind) : std::nullopt;
  // As PostgreSQL's CheckPWChallengeAuth(): a SCRAM verifier is always checked with SCRAM
  // (an md5 pg_hba line included); an md5 hash only with md5; a password with SCRAM when
  // allowed. An md5 hash where only SCRAM is allowed gets the mock SCRAM exchange and the
  // same refusal as a wrong password.
  if (kind == CK::kScram && (scram_ok || md5_ok)) co_return co_await run_scram(client, reader, request, deadline);
  if (kind == CK::kPassword && scram_ok && request.credential->scram) {
    co_return co_await run_scram(client, reader, request, deadline);
  }
  if ((kind == CK::kMd5 || kind == CK::kPassword || !kind) && md5_ok && !scram_ok) {
    co_return co_await run_md5(client, reader, request, deadline);
  }
  if (kind == CK::kMd5 && md5_ok) co_return co_await run_md5(client, reader, request, deadline);
  if (kind == CK::kPassword && md5_ok) co_return co_await run_md5(client, reader, request, deadline);
  // An unknown user, or a credential the allowed methods cannot check: a mock SCRAM exchange
  // ending like a wrong password.
  ClientAuthRequest mock = request;
  mock.credential.reset();
  co_return co_await run_scram(client, reader, mock, deadline);
}

}  // namespace pgnap::daemon
