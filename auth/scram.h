// SCRAM-SHA-256 as PostgreSQL speaks it (RFC 5802, RFC 7677; PostgreSQL's
// src/backend/libpq/auth-scram.c and src/interfaces/libpq/fe-auth-scram.c;
// https://www.postgresql.org/docs/15/sasl-authentication.html), on both sides:
//
// - ScramServer: pgnap authenticating a client against a stored verifier, without the
//   password. A correct proof also yields the client's ClientKey (ClientProof XOR
//   HMAC(StoredKey, AuthMessage)), which is all pgnap needs to log in to PostgreSQL for the
//   client when PostgreSQL holds the same verifier (same salt and iteration count).
// - ScramClient: pgnap logging in to PostgreSQL on a client's behalf, with a password or with
//   that ClientKey (pass-through, as PgBouncer does with SCRAM secrets).
//
// Pure: messages in, messages out, no I/O. The random nonces are passed in. Crypto through
// OpenSSL (HMAC, SHA-256, PBKDF2). Every parser is strict, bounded and fuzzed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pgnap::auth {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr std::string_view kScramSha256Plus = "SCRAM-SHA-256-PLUS";
inline constexpr std::string_view kTlsServerEndPoint = "tls-server-end-point";
// PostgreSQL's default scram_iterations.
inline constexpr int kDefaultIterations = 4096;
// The most PBKDF2 iterations ScramClient computes for a password: the count comes from the
// server, and pgnap computes it on its event loop (4096 take about 1 ms; this, some 30 ms).
// PostgreSQL's scram_iterations is rarely raised beyond this.
inline constexpr int kMaxClientIterations = 100'000;

using ScramKey = std::array<std::uint8_t, 32>;

// What PostgreSQL stores in pg_authid.rolpassword:
// "SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>".
struct ScramVerifier {
  int iterations = 0;
  std::string salt;  // raw bytes
  ScramKey stored_key{};
  ScramKey server_key{};
  bool operator==(const ScramVerifier&) const = default;
};
// nullopt unless the text is exactly that form (iterations >= 1, salt non-empty, both keys
// 32 bytes, valid base64 everywhere).
[[nodiscard]] std::optional<ScramVerifier> parse_scram_verifier(std::string_view text);
[[nodiscard]] std::string format_scram_verifier(const ScramVerifier& verifier);
// The verifier PostgreSQL would store for `password` with this salt and count. The password
// is prepared as PostgreSQL's pg_saslprep() does for ASCII; a password with non-ASCII bytes
// is used as it is (PostgreSQL then normalizes valid UTF-8 with SASLprep: such a plaintext
// password in an auth_file may not match; docs/configuration.md says so).
[[nodiscard]] ScramVerifier make_scram_verifier(std::string_view password, std::string_view salt, int iterations);

// A failed exchange, as PostgreSQL reports it: 08P01 for a malformed or out-of-order
// message, 0A000 for an authorization identity or a mandatory extension, 28P01 for a wrong
// password, 28000 for a channel binding refused; on ScramClient's side also 28000 when
// PostgreSQL's verifier differs from pgnap's or the server's signature is wrong, and XX000
// for pgnap's own mistakes (an empty nonce, PBKDF2 refused by OpenSSL).
struct ScramFailure {
  std::string sqlstate;
  std::string message;  // e.g. "malformed SCRAM message", "password authentication failed for user \"x\""
  std::string detail;
};

// ---- message grammar (RFC 5802 section 7) ----

enum class ChannelBinding {
  kNone,     // gs2 flag "n": the client does not support channel binding
  kNotUsed,  // "y": the client supports it but thinks the server does not
  kUsed,     // "p=<name>": the client binds to the channel
};

struct ClientFirst {
  ChannelBinding binding = ChannelBinding::kNone;
  std::string binding_name;  // kUsed: the name after "p="
  std::string gs2_header;    // "n,,", "y,,", "p=tls-server-end-point,," (part of c= later)
  std::string bare;          // client-first-message-bare: "n=...,r=..."
  std::string nonce;         // r=
};
// Error texts as PostgreSQL's read_client_first_message().
[[nodiscard]] std::variant<ClientFirst, ScramFailure> parse_client_first(std::string_view message);

struct ClientFinal {
  std::string channel_binding;  // c=, decoded: gs2 header followed by the binding data
  std::string nonce;            // r=
  ScramKey proof{};             // p=, decoded
  std::string without_proof;    // client-final-message-without-proof
};
[[nodiscard]] std::variant<ClientFinal, ScramFailure> parse_client_final(std::string_view message);

struct ServerFirst {
  std::string nonce;   // r=: the client's nonce followed by the server's
  std::string salt;    // s=, decoded
  int iterations = 0;  // i=
};
[[nodiscard]] std::variant<ServerFirst, ScramFailure> parse_server_first(std::string_view message);
// "v=<signature>", or the server's "e=<error>" as a failure.
[[nodiscard]] std::variant<ScramKey, ScramFailure> parse_server_final(std::string_view message);

// ---- the server side ----

class ScramServer {
 public:
  struct Options {
    std::string user;                       // the startup packet's user (PostgreSQL ignores n=)
    std::optional<ScramVerifier> verifier;  // nullopt: unknown user, a mock exchange that fails
    std::string mock_secret;                // for an unknown user's mock salt, stable per user
    std::string server_nonce;               // random printable characters (18 random bytes, base64)
    // The client came over TLS: SCRAM-SHA-256-PLUS is offered, and this is the
    // tls-server-end-point binding data (the hash of the gateway's certificate).
    std::optional<std::string> channel_binding_data;
  };
  explicit ScramServer(Options options);

  // The mechanisms to offer in AuthenticationSASL, most preferred first.
  [[nodiscard]] std::vector<std::string> mechanisms() const;

  // SASLInitialResponse: the mechanism the client chose and its client-first-message.
  // Returns the server-first-message to send in AuthenticationSASLContinue.
  [[nodiscard]] std::variant<std::string, ScramFailure> first(std::string_view mechanism,
                                                              std::string_view client_first_message);

  struct Success {
    std::string server_final;  // for AuthenticationSASLFinal: "v=<ServerSignature>"
    ScramKey client_key{};     // recovered from the proof: keep in memory only
  };
  // SASLResponse: the client-final-message. Only after first() succeeded.
  [[nodiscard]] std::variant<Success, ScramFailure> final(std::string_view client_final_message);

 private:
  Options options_;
  ScramVerifier effective_;  // the user's, or the mock
  std::string mechanism_;
  ClientFirst client_first_;
  std::string server_first_;
  bool first_done_ = false;
  bool finished_ = false;
  bool doomed_ = false;  // no usable verifier: the exchange runs to its end, then fails
  [[nodiscard]] bool offers_plus() const;
};

// ---- the client side ----

class ScramClient {
 public:
  // With the password: a full client.
  static ScramClient with_password(std::string password, std::string client_nonce);
  // Pass-through: with the ClientKey recovered by ScramServer and the verifier it was checked
  // against. The server's salt and iteration count must be the verifier's (else a failure
  // saying the server's verifier differs from pgnap's); the server's signature is checked
  // with the verifier's ServerKey.
  static ScramClient with_client_key(ScramKey client_key, ScramVerifier verifier, std::string client_nonce);

  // "n,,n=,r=<nonce>" (no channel binding to the server; PostgreSQL ignores n=, as libpq sends it).
  [[nodiscard]] std::string client_first() const;
  // The client-final-message for the server-first-message, or why not.
  [[nodiscard]] std::variant<std::string, ScramFailure> handle_server_first(std::string_view server_first_message);
  // nullopt when the server's signature is right.
  [[nodiscard]] std::optional<ScramFailure> handle_server_final(std::string_view server_final_message) const;

 private:
  ScramClient() = default;
  std::optional<std::string> password_;
  std::optional<ScramKey> client_key_;
  std::optional<ScramVerifier> verifier_;
  std::string client_nonce_;
  std::string auth_message_;
  ScramKey server_key_{};
};

// The tls-server-end-point channel binding data for a DER certificate (RFC 5929 section 4.1):
// its hash with the certificate's signature hash algorithm, SHA-256 when that is MD5 or SHA-1.
// `signature_digest_nid` is OpenSSL's NID of that algorithm (X509_get_signature_info or
// OBJ_find_sigid_algs); nullopt when it cannot be hashed.
[[nodiscard]] std::optional<std::string> tls_server_end_point(std::string_view certificate_der,
                                                              int signature_digest_nid);

}  // namespace pgnap::auth
