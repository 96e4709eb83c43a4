// SCRAM-SHA-256 primitives (RFC 5802 section 3, RFC 7677) over OpenSSL 3, PostgreSQL's stored
// verifier (src/common/scram-common.c scram_build_secret(), src/backend/libpq/auth-scram.c
// parse_scram_secret()), and the tls-server-end-point channel binding data (RFC 5929
// section 4.1; be_tls_get_certificate_hash() in src/backend/libpq/be-secure-openssl.c).
// The messages are in scram_messages.cpp, the two sides in scram_server.cpp and scram_client.cpp.
#include "auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "auth/base64.h"
#include "auth/scram_detail.h"

namespace pgnap::auth {

namespace detail {

namespace {

// SHA-256 and HMAC-SHA-256 fail only when OpenSSL cannot allocate or has no provider for
// SHA-256 at all (every provider, FIPS included, has it). Going on with a made-up digest
// could turn a comparison that must fail into one that succeeds, so such a process stops.
[[noreturn]] void crypto_failed(const char* what) {
  std::fprintf(stderr, "pgnap: OpenSSL could not compute %s; stopping rather than authenticate wrongly\n", what);
  std::abort();
}

// OpenSSL treats a NULL key as "keep the previous key"; an empty view may have a NULL data().
const unsigned char* bytes_of(std::string_view s) {
  static const unsigned char kEmpty[1] = {0};
  return s.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

ScramKey sha256(std::string_view bytes) {
  ScramKey out{};
  if (SHA256(bytes_of(bytes), bytes.size(), out.data()) == nullptr) crypto_failed("SHA-256");
  return out;
}

ScramKey hmac_sha256(std::string_view key, std::string_view message) {
  ScramKey out{};
  unsigned int length = 0;
  if (key.size() > INT_MAX ||
      HMAC(EVP_sha256(), bytes_of(key), static_cast<int>(key.size()), bytes_of(message), message.size(), out.data(),
           &length) == nullptr ||
      length != out.size()) {
    crypto_failed("HMAC-SHA-256");
  }
  return out;
}

std::optional<ScramKey> salted_password(std::string_view password, std::string_view salt, int iterations) {
  ScramKey out{};
  if (password.size() > INT_MAX || salt.size() > INT_MAX || iterations < 1 ||
      PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(bytes_of(password)), static_cast<int>(password.size()),
                        bytes_of(salt), static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()), out.data()) != 1) {
    return std::nullopt;
  }
  return out;
}

ScramKey xor_keys(const ScramKey& a, const ScramKey& b) {
  ScramKey out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

bool equal_keys(const ScramKey& a, const ScramKey& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

bool equal_bytes(std::string_view a, std::string_view b) {
  // The lengths are public (the expected value's length is fixed); only the contents are secret.
  return a.size() == b.size() && CRYPTO_memcmp(bytes_of(a), bytes_of(b), a.size()) == 0;
}

std::string key_base64(const ScramKey& key) { return base64_encode(as_bytes(key)); }

std::string sanitize_char(std::string_view text, std::size_t pos) {
  const auto c = static_cast<unsigned char>(pos < text.size() ? text[pos] : '\0');
  char buf[8];
  if (c >= 0x21 && c <= 0x7e) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", c);
  }
  return buf;
}

std::string sanitize_str(std::string_view text) {
  std::string out(text.substr(0, 30));
  for (char& c : out) {
    if (c < 0x21 || c > 0x7e) c = '?';
  }
  return out;
}

bool is_scram_printable(std::string_view text) {
  for (const char c : text) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::optional<int> parse_positive_int(std::string_view text) {
  // Canonical only, so that format_scram_verifier() gives back the text it was parsed from.
  if (text.empty() || text.size() > 10 || text[0] == '0') return std::nullopt;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1) return std::nullopt;
  return value;
}

std::optional<PasswordKeys> password_keys(std::string_view password, std::string_view salt, int iterations) {
  // RFC 5802 section 3: SaltedPassword = Hi(Normalize(password), salt, i);
  // ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey);
  // ServerKey = HMAC(SaltedPassword, "Server Key").
  const auto salted = salted_password(password, salt, iterations);
  if (!salted) return std::nullopt;
  PasswordKeys keys;
  keys.client_key = hmac_sha256(*salted, "Client Key");
  keys.stored_key = sha256(as_bytes(keys.client_key));
  keys.server_key = hmac_sha256(*salted, "Server Key");
  return keys;
}

}  // namespace detail

namespace {

constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

std::optional<ScramKey> decode_key(std::string_view text) {
  const auto bytes = base64_decode(text);
  if (!bytes || bytes->size() != ScramKey().size()) return std::nullopt;
  ScramKey key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>((*bytes)[i]);
  return key;
}

}  // namespace

std::optional<ScramVerifier> parse_scram_verifier(std::string_view text) {
  // "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>". ':' and '$' are outside the
  // base64 alphabet, so the first of each after the prefix splits the fields unambiguously.
  if (!text.starts_with(kVerifierPrefix)) return std::nullopt;
  std::string_view rest = text.substr(kVerifierPrefix.size());
  const std::size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::size_t dollar = rest.find('$', colon + 1);
  if (dollar == std::string_view::npos) return std::nullopt;
  const std::size_t colon2 = rest.find(':', dollar + 1);
  if (colon2 == std::string_view::npos) return std::nullopt;

  const auto iterations = detail::parse_positive_int(rest.substr(0, colon));
  const auto salt = base64_decode(rest.substr(colon + 1, dollar - colon - 1));
  const auto stored_key = decode_key(rest.substr(dollar + 1, colon2 - dollar - 1));
  const auto server_key = decode_key(rest.substr(colon2 + 1));
  if (!iterations || !salt || salt->empty() || !stored_key || !server_key) return std::nullopt;
  return ScramVerifier{*iterations, *salt, *stored_key, *server_key};
}

std::string format_scram_verifier(const ScramVerifier& verifier) {
  return std::string(kVerifierPrefix) + std::to_string(verifier.iterations) + ":" + base64_encode(verifier.salt) + "$" +
         detail::key_base64(verifier.stored_key) + ":" + detail::key_base64(verifier.server_key);
}

ScramVerifier make_scram_verifier(std::string_view password, std::string_view salt, int iterations) {
  // pg_saslprep() (src/common/saslprep.c) returns a pure-ASCII password unchanged, so for
  // ASCII there is nothing to prepare; see scram.h for the rest.
  const auto keys = detail::password_keys(password, salt, iterations);
  // Where OpenSSL refuses PBKDF2 (iterations < 1, or a FIPS provider's limits), the result has
  // iterations 0: format_scram_verifier() then writes a verifier that does not parse, and
  // ScramServer runs a mock exchange for it, so no proof is ever accepted.
  if (!keys) return ScramVerifier{0, std::string(salt), {}, {}};
  return ScramVerifier{iterations, std::string(salt), keys->stored_key, keys->server_key};
}

std::optional<std::string> tls_server_end_point(std::string_view certificate_der, int signature_digest_nid) {
  // RFC 5929 section 4.1: "if the certificate's signatureAlgorithm uses a single hash
  // function and that hash function is either MD5 or SHA-1, then use SHA-256".
  const EVP_MD* md = nullptr;
  if (signature_digest_nid == NID_md5 || signature_digest_nid == NID_sha1) {
    md = EVP_sha256();
  } else if (signature_digest_nid != NID_undef) {
    md = EVP_get_digestbynid(signature_digest_nid);
  }
  // No digest (e.g. Ed25519 signs without a separate hash: RFC 5929 leaves it undefined, and
  // PostgreSQL then offers no channel binding), or an extendable-output one with no fixed size.
  if (md == nullptr || (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) != 0) return std::nullopt;

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(certificate_der.data(), certificate_der.size(), digest, &length, md, nullptr) != 1 || length == 0) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

}  // namespace pgnap::auth
