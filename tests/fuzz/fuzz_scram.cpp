// libFuzzer target for auth/'s SCRAM code and base64. The input is read three ways:
//
// - whole, by every parser (parse_client_first/final, parse_server_first/final,
//   parse_scram_verifier, base64_decode): what parses must write back to the same text, and
//   a refusal must be a short printable error with one of the expected SQLSTATEs;
// - as "<mechanism>\0<client-first>\0<client-final>" (the SASLInitialResponse's mechanism,
//   then the two client messages), driving ScramServers for three users (one whose password
//   the corpus knows, one whose password it cannot know, an unknown user) with and without
//   TLS: only the first may ever succeed, and only with the proof computed from its password;
// - as "<ignored>\0<server-first>\0<server-final>", driving pass-through ScramClients: one
//   holding the known user's ClientKey and verifier, which may accept a server-final only if
//   it carries the right signature, and one whose ServerKey cannot be known, which never may.
//
// The expected values are computed here with OpenSSL directly, not through auth/.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "auth/base64.h"
#include "auth/scram.h"

using namespace pgnap::auth;

namespace {

void check(bool ok, int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_scram.cpp:%d: invariant broken\n", line);
  std::abort();
}

// RFC 7677 section 3's salt, client nonce and server nonce: the checked-in exchanges use them.
const std::string kSalt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").value();
const std::string kClientNonce = "rOprNGfwEbeRWgbNEkqO";
const std::string kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const std::string kUser = "user";
// The channel binding data of the TLS servers: SHA-256("pgnap test certificate").
const std::string kBindingData = [] {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  const std::string cert = "pgnap test certificate";
  SHA256(reinterpret_cast<const unsigned char*>(cert.data()), cert.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}();

std::string_view bytes(const ScramKey& key) { return {reinterpret_cast<const char*>(key.data()), key.size()}; }

ScramKey hmac(std::string_view key, std::string_view message) {
  ScramKey out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), out.data(), &length);
  return out;
}

ScramKey sha256(std::string_view data) {
  ScramKey out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

ScramKey xor_keys(const ScramKey& a, const ScramKey& b) {
  ScramKey out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

// The known user: password "pencil" (RFC 7677), so the corpus can hold a successful exchange.
struct KnownUser {
  ScramVerifier verifier;
  ScramKey client_key{};
};
const KnownUser& known() {
  static const KnownUser k = [] {
    KnownUser u;
    u.verifier = make_scram_verifier("pencil", kSalt, 4096);
    // ClientKey = HMAC(SaltedPassword, "Client Key"), SaltedPassword with PBKDF2 (RFC 5802).
    unsigned char salted[32];
    PKCS5_PBKDF2_HMAC("pencil", 6, reinterpret_cast<const unsigned char*>(kSalt.data()), static_cast<int>(kSalt.size()),
                      4096, EVP_sha256(), sizeof salted, salted);
    u.client_key = hmac(std::string_view(reinterpret_cast<const char*>(salted), sizeof salted), "Client Key");
    check(sha256(bytes(u.client_key)) == u.verifier.stored_key);
    return u;
  }();
  return k;
}

// A user whose password appears in no input: its verifier's keys cannot be derived from
// anything the fuzzer sees (the password only ever reaches OpenSSL, which is not instrumented).
const ScramVerifier& secret_verifier() {
  static const ScramVerifier v = make_scram_verifier("a password fuzz_scram never shows", kSalt, 4096);
  return v;
}

bool printable(std::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// What a client or a log line gets: short, printable, with a SQLSTATE pgnap means.
void check_failure(const ScramFailure& f) {
  check(f.sqlstate == "08P01" || f.sqlstate == "0A000" || f.sqlstate == "28000" || f.sqlstate == "28P01" ||
        f.sqlstate == "XX000");
  check(!f.message.empty() && f.message.size() <= 200 && printable(f.message));
  check(f.detail.size() <= 300 && printable(f.detail));
}

template <class T>
const T* ok_or_checked(const std::variant<T, ScramFailure>& result) {
  if (const auto* f = std::get_if<ScramFailure>(&result)) {
    check_failure(*f);
    return nullptr;
  }
  return &std::get<T>(result);
}
// A pointer into a temporary would dangle: keep the result in a variable first.
template <class T>
const T* ok_or_checked(std::variant<T, ScramFailure>&& result) = delete;

void parse_everything(std::string_view text) {
  const bool has_nul = text.find('\0') != std::string_view::npos;
  const auto client_first = parse_client_first(text);
  if (const auto* m = ok_or_checked(client_first)) {
    check(!has_nul);
    check(m->gs2_header + m->bare == text);
    check(!m->nonce.empty() && m->nonce.find(',') == std::string::npos && printable(m->nonce));
    switch (m->binding) {
      case ChannelBinding::kNone: check(m->gs2_header == "n,," && m->binding_name.empty()); break;
      case ChannelBinding::kNotUsed: check(m->gs2_header == "y,," && m->binding_name.empty()); break;
      case ChannelBinding::kUsed: check(m->gs2_header == "p=" + m->binding_name + ",,"); break;
    }
  }
  const auto client_final = parse_client_final(text);
  if (const auto* m = ok_or_checked(client_final)) {
    check(!has_nul);
    check(m->without_proof + ",p=" + base64_encode(bytes(m->proof)) == text);
    check(m->without_proof.starts_with("c=" + base64_encode(m->channel_binding) + ",r=" + m->nonce));
  }
  const auto server_first = parse_server_first(text);
  if (const auto* m = ok_or_checked(server_first)) {
    check(!has_nul && m->iterations >= 1 && !m->salt.empty());
    check("r=" + m->nonce + ",s=" + base64_encode(m->salt) + ",i=" + std::to_string(m->iterations) == text);
  }
  const auto server_final = parse_server_final(text);
  if (const auto* m = ok_or_checked(server_final)) {
    check("v=" + base64_encode(bytes(*m)) == text);
  } else if (std::get<ScramFailure>(server_final).sqlstate == "28000") {
    check(text.starts_with("e="));
  }
  if (const auto v = parse_scram_verifier(text)) {
    check(v->iterations >= 1 && !v->salt.empty());
    check(format_scram_verifier(*v) == text);
  }
  if (const auto decoded = base64_decode(text)) check(base64_encode(*decoded) == text);
  check(base64_decode(base64_encode(text)) == std::string(text));
}

enum class Who { kKnown, kSecret, kUnknown };

void drive_server(Who who, bool tls, std::string_view mechanism, std::string_view first, std::string_view final) {
  ScramServer::Options o;
  o.user = kUser;
  if (who == Who::kKnown) o.verifier = known().verifier;
  if (who == Who::kSecret) o.verifier = secret_verifier();
  o.mock_secret = "fuzz_scram's mock secret";
  o.server_nonce = kServerNonce;
  if (tls) o.channel_binding_data = kBindingData;
  ScramServer server(o);
  check(server.mechanisms().size() == (tls ? 2u : 1u));

  const auto first_result = server.first(mechanism, first);
  const auto* server_first = ok_or_checked(first_result);
  if (server_first == nullptr) {
    check_failure(std::get<ScramFailure>(server.final(final)));  // the exchange is over
    return;
  }
  // pgnap's own message must parse, and carry the client's nonce, then the server's.
  const auto client_first = std::get<ClientFirst>(parse_client_first(first));
  const auto parsed_first = std::get<ServerFirst>(parse_server_first(*server_first));
  check(parsed_first.nonce == client_first.nonce + kServerNonce);
  if (who != Who::kUnknown) check(parsed_first.salt == kSalt && parsed_first.iterations == 4096);
  check(mechanism == kScramSha256 || (tls && mechanism == kScramSha256Plus));

  const auto result = server.final(final);
  const auto* success = ok_or_checked(result);
  if (success == nullptr) return;
  // Only the user whose password is known can be authenticated, and only by a proof made
  // from that password's ClientKey over this very AuthMessage.
  check(who == Who::kKnown);
  const auto client_final = std::get<ClientFinal>(parse_client_final(final));
  const std::string auth_message = client_first.bare + "," + *server_first + "," + client_final.without_proof;
  const ScramKey& client_key = known().client_key;
  check(client_final.proof == xor_keys(client_key, hmac(bytes(known().verifier.stored_key), auth_message)));
  check(success->client_key == client_key);
  check(success->server_final == "v=" + base64_encode(bytes(hmac(bytes(known().verifier.server_key), auth_message))));
  check(client_final.nonce == client_first.nonce + kServerNonce);
  const std::string binding_data = client_first.binding == ChannelBinding::kUsed ? kBindingData : "";
  check(client_final.channel_binding == client_first.gs2_header + binding_data);
  if (client_first.binding == ChannelBinding::kNotUsed) check(!tls);
  check(std::holds_alternative<ScramFailure>(server.final(final)));  // no second success
}

void drive_clients(std::string_view server_first, std::string_view server_final) {
  {
    ScramClient client = ScramClient::with_client_key(known().client_key, known().verifier, kClientNonce);
    const auto result = client.handle_server_first(server_first);
    const auto* client_final = ok_or_checked(result);
    if (client_final != nullptr) {
      const auto parsed = std::get<ServerFirst>(parse_server_first(server_first));
      check(parsed.salt == kSalt && parsed.iterations == 4096);
      check(parsed.nonce.starts_with(kClientNonce) && parsed.nonce.size() > kClientNonce.size());
      const std::string without_proof = "c=biws,r=" + parsed.nonce;
      const std::string auth_message = "n=,r=" + kClientNonce + "," + std::string(server_first) + "," + without_proof;
      const ScramKey proof = xor_keys(known().client_key, hmac(bytes(known().verifier.stored_key), auth_message));
      check(*client_final == without_proof + ",p=" + base64_encode(bytes(proof)));
      const auto refused = client.handle_server_final(server_final);
      if (refused) {
        check_failure(*refused);
      } else {
        check(server_final == "v=" + base64_encode(bytes(hmac(bytes(known().verifier.server_key), auth_message))));
      }
    }
  }
  {
    ScramClient client = ScramClient::with_client_key(known().client_key, secret_verifier(), kClientNonce);
    const auto result = client.handle_server_first(server_first);
    if (ok_or_checked(result) != nullptr) {
      const auto refused = client.handle_server_final(server_final);
      check(refused.has_value());
      check_failure(*refused);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  parse_everything(input);

  const std::size_t nul1 = input.find('\0');
  if (nul1 == std::string_view::npos) return 0;
  const std::size_t nul2 = input.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos) return 0;
  const std::string_view part0 = input.substr(0, nul1);
  const std::string_view part1 = input.substr(nul1 + 1, nul2 - nul1 - 1);
  const std::string_view part2 = input.substr(nul2 + 1);
  parse_everything(part1);
  parse_everything(part2);

  for (const Who who : {Who::kKnown, Who::kSecret, Who::kUnknown}) {
    for (const bool tls : {false, true}) drive_server(who, tls, part0, part1, part2);
  }
  drive_clients(part1, part2);
  return 0;
}
