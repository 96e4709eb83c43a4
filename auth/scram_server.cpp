// ScramServer: pgnap authenticating a client against a stored verifier, as PostgreSQL 15's
// src/backend/libpq/auth-scram.c does (scram_get_mechanisms(), scram_init(),
// scram_exchange()), with the same SQLSTATEs, messages and details, so that a client cannot
// tell pgnap from PostgreSQL by its errors.
//
// Security decisions, each as PostgreSQL makes it:
// - An unknown user (or one whose verifier is unusable) gets a mock verifier with a salt that
//   is stable per user, and the whole exchange, proof check included, runs before it fails
//   like a wrong password: neither the messages nor the time taken tell whether a user exists.
// - The proof is checked in constant time (CRYPTO_memcmp).
// - A client that could bind to the TLS channel but believes the server cannot ("y") is
//   refused when the server can: a man in the middle may have stripped the PLUS mechanism
//   (RFC 5802 section 6).
#include <string>
#include <utility>

#include "auth/base64.h"
#include "auth/scram.h"
#include "auth/scram_detail.h"

namespace pgnap::auth {

namespace {

using detail::failure;
using detail::malformed;

constexpr std::size_t kMockSaltLength = 16;  // SCRAM_DEFAULT_SALT_LEN

bool usable(const ScramVerifier& verifier) { return verifier.iterations >= 1 && !verifier.salt.empty(); }

// auth-scram.c mock_scram_secret() and scram_mock_salt(): the salt is derived from a secret
// and the user name, so it is the same at every attempt (a salt that changed would give the
// unknown user away) and differs between users, and it cannot be predicted without the
// secret. The keys are never matched: the exchange is doomed whatever the proof.
ScramVerifier mock_verifier(const std::string& secret, const std::string& user) {
  ScramVerifier mock;
  mock.iterations = kDefaultIterations;
  mock.salt = std::string(detail::as_bytes(detail::sha256(secret + user)).substr(0, kMockSaltLength));
  mock.stored_key = detail::hmac_sha256(secret, "mock StoredKey " + user);
  mock.server_key = detail::hmac_sha256(secret, "mock ServerKey " + user);
  return mock;
}

}  // namespace

ScramServer::ScramServer(Options options) : options_(std::move(options)) {
  doomed_ = !options_.verifier || !usable(*options_.verifier);
  effective_ = doomed_ ? mock_verifier(options_.mock_secret, options_.user) : *options_.verifier;
}

bool ScramServer::offers_plus() const {
  // Binding data that is missing or empty (the certificate could not be hashed) means the
  // PLUS variant is not offered, as PostgreSQL built without be_tls_get_certificate_hash().
  return options_.channel_binding_data.has_value() && !options_.channel_binding_data->empty();
}

std::vector<std::string> ScramServer::mechanisms() const {
  // scram_get_mechanisms(): most preferred first, so the channel-binding variant leads.
  if (offers_plus()) return {std::string(kScramSha256Plus), std::string(kScramSha256)};
  return {std::string(kScramSha256)};
}

std::variant<std::string, ScramFailure> ScramServer::first(std::string_view mechanism,
                                                           std::string_view client_first_message) {
  if (finished_) return malformed("The SCRAM exchange is over.");
  if (first_done_) {
    finished_ = true;
    return malformed("The client-first-message was already received.");
  }
  // Whatever happens next, a failure ends the exchange: nothing may be retried on it.
  finished_ = true;

  // scram_init(): PLUS only where it was offered.
  bool plus = false;
  if (mechanism == kScramSha256Plus && offers_plus()) {
    plus = true;
  } else if (mechanism != kScramSha256) {
    return failure(detail::kProtocolViolation, "client selected an invalid SASL authentication mechanism");
  }
  // The nonce is the caller's (random bytes, base64): a bad one is pgnap's bug, not the client's.
  if (options_.server_nonce.empty() || !detail::is_scram_printable(options_.server_nonce)) {
    return failure(detail::kInternalError, "invalid SCRAM server nonce");
  }

  auto parsed = parse_client_first(client_first_message);
  if (auto* bad = std::get_if<ScramFailure>(&parsed)) return std::move(*bad);
  ClientFirst& client = std::get<ClientFirst>(parsed);

  // read_client_first_message(): the gs2 flag must agree with the mechanism and the offer.
  switch (client.binding) {
    case ChannelBinding::kNone:
    case ChannelBinding::kNotUsed:
      if (plus) {
        return malformed(
            "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding "
            "data.");
      }
      if (client.binding == ChannelBinding::kNotUsed && offers_plus()) {
        return failure(detail::kInvalidAuthorization, "SCRAM channel binding negotiation error",
                       "The client supports SCRAM channel binding but thinks the server does not.  However, this "
                       "server does support channel binding.");
      }
      break;
    case ChannelBinding::kUsed:
      if (!plus) {
        return malformed(
            "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel "
            "binding data.");
      }
      // PostgreSQL, and so pgnap, binds to the certificate only (see auth-scram.c's header
      // comment for why not tls-unique).
      if (client.binding_name != kTlsServerEndPoint) {
        return failure(detail::kProtocolViolation,
                       "unsupported SCRAM channel-binding type \"" + detail::sanitize_str(client.binding_name) + "\"");
      }
      break;
  }

  // build_server_first_message().
  server_first_ = "r=" + client.nonce + options_.server_nonce + ",s=" + base64_encode(effective_.salt) +
                  ",i=" + std::to_string(effective_.iterations);
  mechanism_ = std::string(mechanism);
  client_first_ = std::move(client);
  first_done_ = true;
  finished_ = false;
  return server_first_;
}

std::variant<ScramServer::Success, ScramFailure> ScramServer::final(std::string_view client_final_message) {
  if (finished_) return malformed("The SCRAM exchange is over.");
  finished_ = true;
  if (!first_done_) return malformed("The client-final-message came before the client-first-message.");

  auto parsed = parse_client_final(client_final_message);
  if (auto* bad = std::get_if<ScramFailure>(&parsed)) return std::move(*bad);
  const ClientFinal& client = std::get<ClientFinal>(parsed);

  // read_client_final_message(): c= repeats the gs2 header, followed by the binding data
  // when the client bound to the channel. A mismatch there means the client saw another
  // certificate than ours: a man in the middle.
  if (client_first_.binding == ChannelBinding::kUsed) {
    if (client.channel_binding != client_first_.gs2_header + *options_.channel_binding_data) {
      return failure(detail::kInvalidAuthorization, "SCRAM channel binding check failed");
    }
  } else if (client.channel_binding != client_first_.gs2_header) {
    return failure(detail::kProtocolViolation, "unexpected SCRAM channel-binding attribute in client-final-message");
  }
  // verify_final_nonce().
  if (client.nonce != client_first_.nonce + options_.server_nonce) {
    return failure(detail::kProtocolViolation, "invalid SCRAM response", "Nonce does not match.");
  }

  // verify_client_proof(): ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage) must hash
  // to StoredKey. Computed for the mock too, before `doomed_` decides (timing).
  const std::string auth_message = client_first_.bare + "," + server_first_ + "," + client.without_proof;
  const ScramKey client_signature = detail::hmac_sha256(effective_.stored_key, auth_message);
  const ScramKey client_key = detail::xor_keys(client.proof, client_signature);
  const bool proof_ok = detail::equal_keys(detail::sha256(detail::as_bytes(client_key)), effective_.stored_key);
  if (!proof_ok || doomed_) {
    // The message of auth.c's auth_failed() for uaSCRAM, whatever the reason.
    return failure(detail::kInvalidPassword, "password authentication failed for user \"" + options_.user + "\"");
  }

  // build_server_final_message(): v= ServerSignature = HMAC(ServerKey, AuthMessage).
  Success success;
  success.server_final = "v=" + detail::key_base64(detail::hmac_sha256(effective_.server_key, auth_message));
  success.client_key = client_key;
  return success;
}

}  // namespace pgnap::auth
