// ScramClient: pgnap logging in to PostgreSQL for a client, as libpq's
// src/interfaces/libpq/fe-auth-scram.c does (without channel binding to the server: pgnap
// binds, if at all, in its own TLS link to PostgreSQL, which this exchange does not see).
//
// Pass-through (PgBouncer's auth with SCRAM secrets, src/scram.c): a proof needs ClientKey
// and StoredKey = H(ClientKey), and never the password, so the ClientKey recovered by
// ScramServer logs in wherever the same verifier is stored. "The same" matters: PostgreSQL
// sends its salt and iteration count, and if they are not the verifier's, the ClientKey is
// not the one PostgreSQL expects. That is refused here, before a proof is sent, with a
// message that says the two verifiers differ (a wrong proof would only say
// "password authentication failed", and count as a failed login in PostgreSQL's log).
#include <string>
#include <utility>

#include "auth/base64.h"
#include "auth/scram.h"
#include "auth/scram_detail.h"

namespace pgnap::auth {

namespace {

using detail::failure;
using detail::malformed;

constexpr std::string_view kVerifierDiffers = "the server's SCRAM verifier for this user differs from pgnap's";

}  // namespace

ScramClient ScramClient::with_password(std::string password, std::string client_nonce) {
  ScramClient client;
  client.password_ = std::move(password);
  client.client_nonce_ = std::move(client_nonce);
  return client;
}

ScramClient ScramClient::with_client_key(ScramKey client_key, ScramVerifier verifier, std::string client_nonce) {
  ScramClient client;
  client.client_key_ = client_key;
  client.verifier_ = std::move(verifier);
  client.client_nonce_ = std::move(client_nonce);
  return client;
}

std::string ScramClient::client_first() const {
  // gs2 header "n,,": no channel binding, no authzid; n= empty as libpq sends it (PostgreSQL
  // takes the user from the startup packet).
  return "n,,n=,r=" + client_nonce_;
}

std::variant<std::string, ScramFailure> ScramClient::handle_server_first(std::string_view server_first_message) {
  if (!auth_message_.empty()) return malformed("The server-first-message was already received.");
  if (client_nonce_.empty() || !detail::is_scram_printable(client_nonce_)) {
    return failure(detail::kInternalError, "invalid SCRAM client nonce");
  }
  auto parsed = parse_server_first(server_first_message);
  if (auto* bad = std::get_if<ScramFailure>(&parsed)) return std::move(*bad);
  const ServerFirst& server = std::get<ServerFirst>(parsed);

  // read_server_first_message(): the server's nonce must extend ours (RFC 5802 section 5.1:
  // the client nonce followed by the server's own, which must not be empty).
  if (!server.nonce.starts_with(client_nonce_) || server.nonce.size() == client_nonce_.size()) {
    return failure(detail::kProtocolViolation, "invalid SCRAM response",
                   "The server's nonce does not extend the client's.");
  }

  ScramKey client_key{};
  ScramKey stored_key{};
  if (password_) {
    // PBKDF2 with the server's iteration count, bounded: pgnap computes it on its event loop.
    if (server.iterations > kMaxClientIterations) {
      return failure(detail::kInvalidAuthorization, "the server's SCRAM iteration count is too high",
                     "PostgreSQL asks for " + std::to_string(server.iterations) +
                         " iterations; pgnap computes at most " + std::to_string(kMaxClientIterations) +
                         " for a password it holds in cleartext. Give pgnap the "
                         "user's verifier instead of the password.");
    }
    const auto keys = detail::password_keys(*password_, server.salt, server.iterations);
    if (!keys) return failure(detail::kInternalError, "could not compute the SCRAM salted password");
    client_key = keys->client_key;
    stored_key = keys->stored_key;
    server_key_ = keys->server_key;
  } else {
    const bool same_salt = server.salt == verifier_->salt;
    const bool same_iterations = server.iterations == verifier_->iterations;
    if (!same_salt || !same_iterations) {
      std::string detail;
      if (!same_salt) detail = "PostgreSQL's salt is not the one in pgnap's verifier. ";
      if (!same_iterations) {
        detail += "PostgreSQL's iteration count is " + std::to_string(server.iterations) + ", pgnap's " +
                  std::to_string(verifier_->iterations) + ". ";
      }
      detail += "Copy the user's verifier from pg_authid.rolpassword into pgnap's auth_file.";
      return failure(detail::kInvalidAuthorization, std::string(kVerifierDiffers), std::move(detail));
    }
    client_key = *client_key_;
    stored_key = detail::sha256(detail::as_bytes(client_key));
    server_key_ = verifier_->server_key;
  }

  // RFC 5802 section 3: AuthMessage = client-first-message-bare + "," + server-first-message
  // + "," + client-final-message-without-proof; ClientProof = ClientKey XOR
  // HMAC(StoredKey, AuthMessage). "biws" is base64("n,,").
  const std::string without_proof = "c=biws,r=" + server.nonce;
  auth_message_ = client_first().substr(3) + "," + std::string(server_first_message) + "," + without_proof;
  const ScramKey proof = detail::xor_keys(client_key, detail::hmac_sha256(stored_key, auth_message_));
  return without_proof + ",p=" + detail::key_base64(proof);
}

std::optional<ScramFailure> ScramClient::handle_server_final(std::string_view server_final_message) const {
  if (auth_message_.empty()) {
    return malformed("The server-final-message came before the server-first-message.");
  }
  auto parsed = parse_server_final(server_final_message);
  if (auto* bad = std::get_if<ScramFailure>(&parsed)) return std::move(*bad);
  // read_server_final_message() and verify_server_signature(): the server proves it holds
  // ServerKey, so that a server that merely accepted anything is not believed.
  const ScramKey expected = detail::hmac_sha256(server_key_, auth_message_);
  if (!detail::equal_keys(std::get<ScramKey>(parsed), expected)) {
    return failure(detail::kInvalidAuthorization, "the server's SCRAM signature is invalid",
                   "The server did not prove that it holds the user's SCRAM verifier.");
  }
  return std::nullopt;
}

}  // namespace pgnap::auth
