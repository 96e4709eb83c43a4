#include "daemon/server_login.h"

#include <algorithm>

#include "auth/base64.h"
#include "auth/md5.h"
#include "daemon/message_reader.h"
#include "daemon/random.h"
#include "protocol/messages.h"

namespace pgnap::daemon {

namespace {

namespace sqlstate = protocol::sqlstate;
namespace msg = protocol::backend_msg;

// Messages of the login are small; an ErrorResponse with a long detail is the largest.
constexpr std::uint32_t kMaxLoginMessage = 1 << 20;

LoginFailure broken(std::string why) {
  return LoginFailure{
      LoginFailure::Kind::kBroken,
      protocol::ErrorResponse{
          "FATAL", std::string(sqlstate::kCannotConnectNow), "could not log in to the instance", std::move(why), {}},
      {},
      {}};
}

LoginFailure unsupported(std::string message, std::string detail) {
  return LoginFailure{LoginFailure::Kind::kUnsupported,
                      protocol::ErrorResponse{"FATAL", std::string(sqlstate::kInvalidAuthorization), std::move(message),
                                              std::move(detail),
                                              "Give pgnap the verifier PostgreSQL holds for this user (auth.query, "
                                              "or its rolpassword in auth.file), or the password itself."},
                      {},
                      {}};
}

std::string_view as_text(protocol::Bytes bytes) { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }

// One authentication exchange with PostgreSQL: answers each request of the server from the
// secret it was given. nullopt while the exchange goes on; a failure ends it.
class Authenticator {
 public:
  Authenticator(const LoginSecret& secret, std::string user) : secret_(secret), user_(std::move(user)) {}

  // The answer to send for an Authentication message (empty for AuthenticationOk and
  // SASLFinal, which need none), or why pgnap cannot give one.
  std::variant<std::string, LoginFailure> answer(const protocol::Authentication& request) {
    namespace code = protocol::auth_code;
    const auth::Credential* credential = secret_.credential ? &*secret_.credential : nullptr;
    switch (request.code) {
      case code::kOk: return std::string();
      case code::kCleartextPassword:
        if (credential != nullptr && credential->kind == auth::Credential::Kind::kPassword) {
          return protocol::encode_password_message(credential->secret);
        }
        return unsupported("the instance asks for the password of user \"" + user_ + "\" in cleartext",
                           "pgnap holds " + holds() + " for this user, not the password.");
      case code::kMd5Password: {
        if (request.payload.size() != 4) return broken("malformed AuthenticationMD5Password");
        auth::Md5Salt salt{};
        std::copy(request.payload.begin(), request.payload.end(), salt.begin());
        if (credential != nullptr && credential->kind == auth::Credential::Kind::kMd5) {
          return protocol::encode_password_message(auth::md5_response(credential->secret, salt));
        }
        if (credential != nullptr && credential->kind == auth::Credential::Kind::kPassword) {
          return protocol::encode_password_message(
              auth::md5_response(auth::md5_password_hash(credential->secret, user_), salt));
        }
        return unsupported("the instance asks for an md5 password for user \"" + user_ + "\"",
                           "pgnap holds " + holds() + " for this user, which cannot answer an md5 challenge.");
      }
      case code::kSasl: return start_scram(request.payload);
      case code::kSaslContinue: {
        if (!scram_) return broken("AuthenticationSASLContinue before AuthenticationSASL");
        auto final = scram_->handle_server_first(as_text(request.payload));
        if (auto* failure = std::get_if<auth::ScramFailure>(&final)) {
          // PostgreSQL's salt or iteration count is not pgnap's: the password changed or the
          // role is gone (PostgreSQL then runs a mock exchange). Finish the exchange with a
          // proof that cannot pass, so the client gets PostgreSQL's own verdict — what a
          // direct connection with this password would get — and say why in the log.
          const auto first = auth::parse_server_first(as_text(request.payload));
          if (!std::holds_alternative<auth::ServerFirst>(first)) {
            return broken("malformed AuthenticationSASLContinue: " + failure->message);
          }
          mismatch_ = failure->message + (failure->detail.empty() ? "" : ": " + failure->detail);
          const std::string zero_proof(32, '\0');
          return protocol::encode_sasl_response("c=biws,r=" + std::get<auth::ServerFirst>(first).nonce +
                                                ",p=" + auth::base64_encode(zero_proof));
        }
        return protocol::encode_sasl_response(std::get<std::string>(final));
      }
      case code::kSaslFinal:
        if (!scram_ || !mismatch_.empty()) return broken("AuthenticationSASLFinal out of turn");
        if (auto failure = scram_->handle_server_final(as_text(request.payload))) {
          return broken("the instance's SCRAM signature does not verify: " + failure->message);
        }
        return std::string();
      default:
        return unsupported("the instance asks for an authentication method pgnap does not support (code " +
                               std::to_string(request.code) + ")",
                           "pgnap answers trust, password, md5 and SCRAM-SHA-256.");
    }
  }

 private:
  std::variant<std::string, LoginFailure> start_scram(protocol::Bytes payload) {
    const auto mechanisms = protocol::parse_sasl_mechanisms(payload);
    if (!mechanisms) return broken("malformed AuthenticationSASL");
    if (std::find(mechanisms->begin(), mechanisms->end(), auth::kScramSha256) == mechanisms->end()) {
      return unsupported("the instance offers no SASL mechanism pgnap supports", "pgnap speaks SCRAM-SHA-256.");
    }
    const auth::Credential* credential = secret_.credential ? &*secret_.credential : nullptr;
    if (secret_.client_key && credential != nullptr && credential->scram) {
      scram_ = auth::ScramClient::with_client_key(*secret_.client_key, *credential->scram, random_nonce());
    } else if (credential != nullptr && credential->kind == auth::Credential::Kind::kPassword) {
      scram_ = auth::ScramClient::with_password(credential->secret, random_nonce());
    } else {
      return unsupported("the instance asks for SCRAM-SHA-256 for user \"" + user_ + "\"",
                         "pgnap holds " + holds() + " for this user, which cannot answer a SCRAM exchange.");
    }
    return protocol::encode_sasl_initial_response(auth::kScramSha256, scram_->client_first());
  }

  [[nodiscard]] std::string holds() const {
    if (!secret_.credential) return "no password";
    switch (secret_.credential->kind) {
      case auth::Credential::Kind::kPassword: return "the password";
      case auth::Credential::Kind::kMd5: return "an md5 hash";
      case auth::Credential::Kind::kScram:
        return secret_.client_key ? "a SCRAM verifier" : "a SCRAM verifier but no proof from the client";
    }
    return "nothing usable";
  }

  const LoginSecret& secret_;
  std::string user_;
  std::optional<auth::ScramClient> scram_;

 public:
  // Why pgnap's SCRAM answer could not be right (the verifiers differ), for the log.
  std::string mismatch_;
};

}  // namespace

asio::awaitable<std::variant<ServerSession, LoginFailure>> login_to_server(ServerConnection connection,
                                                                           const protocol::StartupMessage& startup,
                                                                           const LoginSecret& secret,
                                                                           Clock::time_point deadline) {
  ServerSession session{std::move(connection), {}, {}};
  Stream& server = session.connection.stream;
  const auto negotiated = protocol::negotiate_startup(startup);
  const std::string packet = protocol::encode_startup_message(negotiated.forwarded);
  if (const auto ec = co_await write_all(server, packet, deadline); ec) {
    co_return broken("sending the startup packet failed: " + ec.message());
  }
  MessageReader reader(server, kMaxLoginMessage);
  Authenticator authenticator(secret, std::string(startup.user()));
  bool have_key = false;
  for (;;) {
    const auto read = co_await reader.next(deadline);
    switch (read.status) {
      case MessageReader::Status::kMessage: break;
      case MessageReader::Status::kTimedOut: co_return broken("the instance did not finish the login in time");
      case MessageReader::Status::kClosed: co_return broken("the instance closed the connection during the login");
      case MessageReader::Status::kInvalid: co_return broken("invalid message from the instance: " + read.detail);
    }
    const protocol::Frame& frame = read.frame;
    switch (frame.type) {
      case msg::kAuthentication: {
        const auto request = protocol::parse_authentication(frame.body);
        if (!request) co_return broken("malformed Authentication message");
        auto answer = authenticator.answer(*request);
        if (auto* failure = std::get_if<LoginFailure>(&answer)) co_return std::move(*failure);
        const auto& bytes = std::get<std::string>(answer);
        if (!bytes.empty()) {
          if (const auto ec = co_await write_all(server, bytes, deadline); ec) {
            co_return broken("sending the authentication answer failed: " + ec.message());
          }
        }
        break;
      }
      case msg::kParameterStatus:
        if (auto parameter = protocol::parse_parameter_status(frame.body)) {
          session.parameters.push_back(std::move(*parameter));
        }
        break;
      case msg::kBackendKeyData:
        if (auto key = protocol::parse_backend_key_data_body(frame.body)) {
          session.key = *key;
          have_key = true;
        }
        break;
      case msg::kReadyForQuery:
        if (!have_key) co_return broken("the instance sent no BackendKeyData");
        if (reader.buffered() > 0) co_return broken("the instance sent data after ReadyForQuery");
        co_return session;
      case msg::kErrorResponse: {
        LoginFailure refused{
            LoginFailure::Kind::kRefused, {}, std::string(reader.last_message()), authenticator.mismatch_};
        refused.error =
            protocol::parse_error_response(frame.body)
                .value_or(protocol::ErrorResponse{
                    "FATAL", std::string(sqlstate::kCannotConnectNow), "the instance refused the login", {}, {}});
        co_return refused;
      }
      case msg::kNoticeResponse:
      case msg::kNegotiateProtocolVersion: break;
      default: co_return broken(std::string("unexpected message type '") + frame.type + "' during the login");
    }
  }
}

}  // namespace pgnap::daemon
