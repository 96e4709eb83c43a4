// Hostile input for the messages the authenticating mode (auth.mode = "gateway") reads itself
// after the StartupMessage, where pgnap, not PostgreSQL, is the server: the
// SASLInitialResponse and SASLResponse of SCRAM-SHA-256, md5's PasswordMessage, and what an
// authenticated client sends while its instance sleeps. Each is refused with a FATAL
// ErrorResponse carrying PostgreSQL's SQLSTATE (auth-scram.c, auth.c), the connection is
// closed, the instance is never woken for it, and the next client is served.
//
// The bytes are built here, apart from pgnap's own codec and SCRAM code: the client side of
// SCRAM-SHA-256 follows RFC 5802 section 3 with OpenSSL's primitives, md5 follows
// PostgreSQL's "md5" + md5(md5(password + user) + salt).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/auth_fixture.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

// ---- Frontend messages, byte by byte (protocol-message-formats.html) ------------------------

std::string message(char type, const std::string& body) {
  return std::string(1, type) + be32(static_cast<std::uint32_t>(4 + body.size())) + body;
}
// SASLInitialResponse: the mechanism, then the client-first-message's length (-1: none) and
// the message.
std::string sasl_initial(const std::string& mechanism, const std::optional<std::string>& data) {
  std::string body = mechanism + '\0';
  body += data ? be32(static_cast<std::uint32_t>(data->size())) + *data : be32(0xffffffffu);
  return message('p', body);
}
std::string sasl_response(const std::string& data) { return message('p', data); }
std::string password_message(const std::string& text) { return message('p', text + '\0'); }
std::string query_message(const std::string& sql) { return message('Q', sql + '\0'); }
std::string terminate_message() { return message('X', ""); }

// ---- The client's side of SCRAM-SHA-256 and md5 ----------------------------------------------

std::string digest(const EVP_MD* md, std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &length, md, nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out.data(), &length) == nullptr) {
    throw std::runtime_error("HMAC failed");
  }
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

// "r=<nonce>,s=<salt>,i=<iterations>" (RFC 5802 section 7).
struct ServerFirst {
  std::string text;
  std::string nonce;
  std::string salt;
  int iterations = 0;
};
std::optional<ServerFirst> parse_server_first(const std::string& text) {
  ServerFirst out;
  out.text = text;
  const auto s = text.find(",s=");
  const auto i = text.find(",i=");
  if (text.rfind("r=", 0) != 0 || s == std::string::npos || i == std::string::npos || i < s) return std::nullopt;
  out.nonce = text.substr(2, s - 2);
  const auto salt = unbase64(text.substr(s + 3, i - s - 3));
  if (!salt) return std::nullopt;
  out.salt = *salt;
  out.iterations = std::stoi(text.substr(i + 3));
  return out;
}

// What a client proves with `password` (RFC 5802 section 3), for the client-first-message-bare
// it sent and the server-first-message it got; `nonce` is what r= says in the final message.
struct ScramFinal {
  std::string without_proof;
  std::string proof;             // base64
  std::string server_signature;  // base64: what the server's v= must say
  [[nodiscard]] std::string message() const { return without_proof + ",p=" + proof; }
};
ScramFinal scram_final(const std::string& password, const std::string& client_first_bare, const ServerFirst& server,
                       const std::string& nonce) {
  std::array<unsigned char, 32> salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(server.salt.data()),
                        static_cast<int>(server.salt.size()), server.iterations, EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1) {
    throw std::runtime_error("PBKDF2 failed");
  }
  const std::string salted_password(reinterpret_cast<const char*>(salted.data()), salted.size());
  const std::string client_key = hmac_sha256(salted_password, "Client Key");
  const std::string stored_key = digest(EVP_sha256(), client_key);
  const std::string server_key = hmac_sha256(salted_password, "Server Key");
  ScramFinal out;
  out.without_proof = "c=" + base64("n,,") + ",r=" + nonce;
  const std::string auth_message = client_first_bare + "," + server.text + "," + out.without_proof;
  const std::string client_signature = hmac_sha256(stored_key, auth_message);
  std::string proof = client_key;
  for (std::size_t k = 0; k < proof.size(); ++k) proof[k] = static_cast<char>(proof[k] ^ client_signature[k]);
  out.proof = base64(proof);
  out.server_signature = base64(hmac_sha256(server_key, auth_message));
  return out;
}

// PostgreSQL's md5 answer: "md5" + md5(md5(password + user) + salt), in hex.
std::string md5_answer(const std::string& password, const std::string& user, const std::string& salt) {
  return "md5" + hex(digest(EVP_md5(), hex(digest(EVP_md5(), password + user)) + salt));
}

// ---- One client connection, spoken byte by byte -----------------------------------------------

struct AuthRequest {
  std::int32_t code = -1;  // 5 md5, 10 SASL, 11 SASLContinue, 12 SASLFinal, 0 Ok
  std::string payload;
};

std::vector<std::string> sasl_mechanisms(const std::string& payload) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < payload.size() && payload[at] != '\0') {
    const auto end = payload.find('\0', at);
    if (end == std::string::npos) break;
    out.push_back(payload.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

class RawLogin {
 public:
  // Connects and sends the StartupMessage for `user` to the database postgres.
  RawLogin(const Gateway& gateway, const std::string& user) : raw_(RawClient::tcp(gateway.port())) {
    if (!raw_.send(startup_packet({{"user", user}, {"database", "postgres"}}))) {
      throw std::runtime_error("could not send the startup packet");
    }
  }

  bool send(const std::string& bytes) { return raw_.send(bytes); }

  // The next backend message; nullopt when none came within `timeout` or the connection closed.
  std::optional<BackendMessage> next(Millis timeout = 10s) {
    if (split_backend_messages(pending_).empty()) {
      const auto reply = raw_.read_until(
          [this](std::string_view more) { return !split_backend_messages(pending_ + std::string(more)).empty(); },
          timeout);
      pending_ += reply.bytes;
    }
    auto messages = split_backend_messages(pending_);
    if (messages.empty()) return std::nullopt;
    pending_.erase(0, 5 + messages.front().body.size());
    return messages.front();
  }

  // The next message as an authentication request (code -1 if it was something else).
  AuthRequest next_request(Millis timeout = 10s) {
    const auto m = next(timeout);
    if (!m || m->type != 'R' || m->body.size() < 4) return {};
    const auto* b = reinterpret_cast<const unsigned char*>(m->body.data());
    return {static_cast<std::int32_t>((std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                      (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]}),
            m->body.substr(4)};
  }

  // Everything until pgnap closes the connection (or `timeout` passes).
  RawClient::Reply rest(Millis timeout = 10s) {
    auto reply = raw_.read_until_closed(timeout);
    reply.bytes = pending_ + reply.bytes;
    pending_.clear();
    return reply;
  }

 private:
  RawClient raw_;
  std::string pending_;
};

// A SCRAM login as alice up to the server-first-message, with `client_first_bare` after the
// "n,," gs2 header. Returns the parsed server-first-message (nullopt: pgnap did not answer with one).
std::optional<ServerFirst> scram_until_server_first(RawLogin& login, const std::string& client_first_bare) {
  const auto sasl = login.next_request();
  if (sasl.code != 10) return std::nullopt;
  login.send(sasl_initial("SCRAM-SHA-256", "n,," + client_first_bare));
  const auto cont = login.next_request();
  if (cont.code != 11) return std::nullopt;
  return parse_server_first(cont.payload);
}

// What pgnap must answer to a hostile message: one FATAL ErrorResponse and nothing else,
// then the close.
void expect_refusal(RawLogin& login, const std::string& hostile, std::string_view sqlstate,
                    std::string_view message_part, std::string_view detail_part = {}) {
  ASSERT_TRUE(login.send(hostile)) << "pgnap closed before the hostile message was sent";
  const auto reply = login.rest();
  EXPECT_TRUE(reply.closed) << "the connection was left open";
  const auto messages = split_backend_messages(reply.bytes);
  ASSERT_EQ(messages.size(), 1u) << "expected one ErrorResponse, got " << messages.size() << " message(s) in "
                                 << reply.bytes.size() << " bytes";
  const auto error = decode_error_response(messages.front());
  ASSERT_TRUE(error.has_value()) << "expected an ErrorResponse, got a message of type '" << messages.front().type
                                 << "'";
  EXPECT_EQ(error->severity, "FATAL");
  EXPECT_EQ(error->sqlstate, sqlstate) << error->message << " / " << error->detail;
  EXPECT_THAT(error->message, HasSubstr(std::string(message_part)));
  EXPECT_THAT(error->detail, HasSubstr(std::string(detail_part)));
}

// Long enough for any of these exchanges on a loaded machine: only the test of silence waits
// for it to pass (with its own, short, value).
GatewayOptions hostile_options(AuthCluster& ac, const std::string& more_auth_toml = {}) {
  auto options = ac.file_options(more_auth_toml);
  options.login_timeout = "20s";
  options.metrics_listen = "127.0.0.1:0";
  return options;
}

// Nothing before woke the instance (beyond `starts` real starts and `wakes` wakes), and a
// well-behaved client with the right password is served now.
void expect_not_woken_and_still_serving(AuthCluster& ac, const Gateway& gateway, int starts = 0,
                                        std::size_t wakes = 0) {
  EXPECT_EQ(gateway.count_in_log("waking ("), wakes) << "a refused client woke the instance";
  EXPECT_EQ(ac.starts(), starts) << "a refused client started the database";
  const auto r = psql(password_conninfo(gateway, "alice", kAlicePassword), "select current_user");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "alice\n");
}

// "" while pgnap runs; otherwise how it ended, for the failure message.
std::string how_pgnap_ended(Gateway& gateway) {
  if (gateway.running()) return "";
  const int code = gateway.wait_exit(0ms);
  return "pgnap exited with status " + std::to_string(code) +
         (code > 128 ? " (killed by signal " + std::to_string(code - 128) + ")" : "");
}

double metric(const Gateway& gateway, const std::string& series) {
  return scrape_metric(gateway.metrics_port(), series);
}

std::string authentications(const std::string& method, const std::string& outcome) {
  return "pgnap_authentications_total{db_instance=\"main\",method=\"" + method + "\",outcome=\"" + outcome + "\"}";
}

// ---- The SASLInitialResponse ------------------------------------------------------------------

TEST(GatewayAuthHostileTest, ASaslInitialResponseCutShortByTheClientsCloseEndsTheSessionQuietly) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  {
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    // The length word claims 100 bytes; 20 come, then the close.
    const std::string whole = sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + std::string(70, 'x'));
    ASSERT_GT(whole.size(), 25u);
    ASSERT_TRUE(login.send(whole.substr(0, 20)));
  }
  EXPECT_TRUE(wait_until([&] { return metric(gateway, authentications("-", "gone")) == 1; }, 10s))
      << "the client's close was not counted as a client gone: " << metric(gateway, authentications("-", "gone"));
  EXPECT_EQ(how_pgnap_ended(gateway), "");
  expect_not_woken_and_still_serving(ac, gateway);
}

TEST(GatewayAuthHostileTest, ASaslInitialResponseCutShortThenSilenceIsRefusedWith08P01AtLoginTimeout) {
  AuthCluster ac;
  auto options = hostile_options(ac);
  options.login_timeout = "2s";
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  RawLogin login(gateway, "alice");
  ASSERT_EQ(login.next_request().code, 10);
  const std::string whole = sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + std::string(70, 'x'));
  // Nothing after the first 20 bytes: pgnap's login_timeout (2 s) ends the wait; 30 s only
  // bounds a broken gateway.
  ASSERT_TRUE(login.send(whole.substr(0, 20)));
  const auto reply = login.rest(30s);
  EXPECT_TRUE(reply.closed) << "the silent client was never dropped";
  const auto error = first_error(reply.bytes);
  ASSERT_TRUE(error.has_value()) << "no ErrorResponse in " << reply.bytes.size() << " bytes";
  EXPECT_EQ(error->severity, "FATAL");
  EXPECT_EQ(error->sqlstate, "08P01");
  EXPECT_THAT(error->message, HasSubstr("login_timeout"));
  EXPECT_EQ(metric(gateway, authentications("-", "timeout")), 1);
  EXPECT_EQ(metric(gateway, "pgnap_limit_hits_total{limit=\"login_timeout\"}"), 1);
  expect_not_woken_and_still_serving(ac, gateway);
}

// PostgreSQL reads at most PG_MAX_AUTH_TOKEN_LENGTH (65535) bytes of an authentication message;
// pgnap refuses a longer one from its length word, before it reads (or waits for) the body.
TEST(GatewayAuthHostileTest, AnAuthenticationMessageAbove65535BytesIsRefusedFromItsHeaderWith08P01) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  for (const std::uint32_t length : {100000u, 65536u}) {
    SCOPED_TRACE("a 'p' message claiming " + std::to_string(length) + " bytes");
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    expect_refusal(login, "p" + be32(length), "08P01", "above the maximum of 65535 bytes");
  }

  // 65535 bytes exactly is read: a client-first-message with a nonce that fills it gets its
  // server-first-message.
  RawLogin login(gateway, "alice");
  ASSERT_EQ(login.next_request().code, 10);
  const std::string prefix = "n,,n=,r=";
  const std::size_t data_size = 65535 - 4 - (std::string("SCRAM-SHA-256").size() + 1) - 4;
  const std::string initial = sasl_initial("SCRAM-SHA-256", prefix + std::string(data_size - prefix.size(), 'x'));
  ASSERT_EQ(initial.size(), 65536u);  // the type byte and a length word of 65535
  ASSERT_TRUE(login.send(initial));
  const auto cont = login.next_request();
  EXPECT_EQ(cont.code, 11) << "a message of 65535 bytes was not read";
  EXPECT_THAT(cont.payload, HasSubstr(",s="));
  ASSERT_TRUE(login.send(terminate_message()));
  expect_not_woken_and_still_serving(ac, gateway);
}

TEST(GatewayAuthHostileTest, AMessageOtherThanASaslInitialResponseIsRefusedWith08P01) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  {
    SCOPED_TRACE("a Query");
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    expect_refusal(login, query_message("select 1"), "08P01", "expected SASL response, got message type 81");
  }
  {
    SCOPED_TRACE("a cleartext PasswordMessage");
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    expect_refusal(login, password_message(kAlicePassword), "08P01", "malformed SASLInitialResponse message");
  }
  {
    SCOPED_TRACE("a SASLInitialResponse without its data (length -1)");
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    expect_refusal(login, sasl_initial("SCRAM-SHA-256", std::nullopt), "08P01",
                   "malformed SASLInitialResponse message");
  }
  {
    SCOPED_TRACE("a SASLInitialResponse whose data length claims more than the message holds");
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    expect_refusal(login, message('p', std::string("SCRAM-SHA-256") + '\0' + be32(50) + "n,,n=,r=abc"), "08P01",
                   "malformed SASLInitialResponse message");
  }
  expect_not_woken_and_still_serving(ac, gateway);
}

TEST(GatewayAuthHostileTest, AnUnknownMechanismAndScramSha256PlusOverPlaintextAreRefusedWith08P01) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  {
    SCOPED_TRACE("SCRAM-SHA-1");
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    expect_refusal(login, sasl_initial("SCRAM-SHA-1", "n,,n=,r=abc"), "08P01",
                   "client selected an invalid SASL authentication mechanism");
  }
  {
    SCOPED_TRACE("SCRAM-SHA-256-PLUS over plaintext");
    RawLogin login(gateway, "alice");
    const auto sasl = login.next_request();
    ASSERT_EQ(sasl.code, 10);
    // Without TLS there is no channel to bind to: only the plain mechanism is offered.
    EXPECT_EQ(sasl_mechanisms(sasl.payload), std::vector<std::string>{"SCRAM-SHA-256"});
    expect_refusal(login, sasl_initial("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc"), "08P01",
                   "client selected an invalid SASL authentication mechanism");
  }
  expect_not_woken_and_still_serving(ac, gateway);
}

// Errors as PostgreSQL 15's read_client_first_message() reports them.
TEST(GatewayAuthHostileTest, MalformedClientFirstMessagesAreRefusedWithPostgresqlsSqlstates) {
  struct Case {
    std::string name;
    std::string client_first;
    std::string sqlstate;
    std::string message;
  };
  const std::vector<Case> cases{
      {"no gs2 header", "n=,r=abc", "08P01", "malformed SCRAM message"},
      {"an unknown channel-binding flag", "x,,n=,r=abc", "08P01", "malformed SCRAM message"},
      {"an authorization identity", "n,a=bob,n=,r=abc", "0A000",
       "client uses authorization identity, but it is not supported"},
      {"an empty message", "", "08P01", "malformed SCRAM message"},
      {"an empty nonce", "n,,n=,r=", "08P01", "malformed SCRAM message"},
      {"no nonce", "n,,n=", "08P01", "malformed SCRAM message"},
      {"a mandatory extension", "n,,m=ext,n=,r=abc", "0A000", "client requires an unsupported SCRAM extension"},
      {"channel binding data with the plain mechanism", "p=tls-server-end-point,,n=,r=abc", "08P01",
       "malformed SCRAM message"},
      {"a NUL inside", std::string("n,,n=,r=ab\0c", 12), "08P01", "malformed SCRAM message"},
      {"a nonce with a non-printable character",
       "n,,n=,r=ab\x01"
       "c",
       "08P01", "non-printable characters in SCRAM nonce"},
  };
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawLogin login(gateway, "alice");
    ASSERT_EQ(login.next_request().code, 10);
    expect_refusal(login, sasl_initial("SCRAM-SHA-256", c.client_first), c.sqlstate, c.message);
  }
  expect_not_woken_and_still_serving(ac, gateway);
}

// ---- The SASLResponse (client-final-message) --------------------------------------------------

TEST(GatewayAuthHostileTest, MalformedClientFinalMessagesAreRefusedWith08P01) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const std::string client_nonce = "rOprNGfwEbeRWgbNEkqO";
  const std::string bare = "n=,r=" + client_nonce;
  // Each gets the nonce pgnap chose for its connection, and a proof of the right length unless
  // the case is about the proof.
  struct Case {
    std::string name;
    std::function<std::string(const ServerFirst&)> final_message;
    std::string detail;
  };
  const std::string some_proof = base64(std::string(32, 'p'));
  const std::vector<Case> cases{
      {"bad base64 in p=", [&](const ServerFirst& s) { return "c=biws,r=" + s.nonce + ",p=not*base64!"; },
       "Malformed proof in client-final-message."},
      {"a proof of 31 bytes",
       [&](const ServerFirst& s) { return "c=biws,r=" + s.nonce + ",p=" + base64(std::string(31, 'p')); },
       "Malformed proof in client-final-message."},
      {"a proof of 33 bytes",
       [&](const ServerFirst& s) { return "c=biws,r=" + s.nonce + ",p=" + base64(std::string(33, 'p')); },
       "Malformed proof in client-final-message."},
      {"no proof", [&](const ServerFirst& s) { return "c=biws,r=" + s.nonce; }, ""},
      {"the client's nonce alone", [&](const ServerFirst&) { return "c=biws,r=" + client_nonce + ",p=" + some_proof; },
       "Nonce does not match."},
      {"a server nonce changed by one character",
       [&](const ServerFirst& s) {
         std::string nonce = s.nonce;
         nonce.back() = nonce.back() == 'A' ? 'B' : 'A';
         return "c=biws,r=" + nonce + ",p=" + some_proof;
       },
       "Nonce does not match."},
      {"another channel-binding header than the client-first's (y,,)",
       [&](const ServerFirst& s) { return "c=" + base64("y,,") + ",r=" + s.nonce + ",p=" + some_proof; }, ""},
      {"garbage after the proof",
       [&](const ServerFirst& s) { return "c=biws,r=" + s.nonce + ",p=" + some_proof + ",x=1"; }, ""},
      {"an empty message", [&](const ServerFirst&) { return std::string(); }, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawLogin login(gateway, "alice");
    const auto server_first = scram_until_server_first(login, bare);
    ASSERT_TRUE(server_first.has_value());
    ASSERT_EQ(server_first->nonce.rfind(client_nonce, 0), 0u) << server_first->text;
    ASSERT_GT(server_first->nonce.size(), client_nonce.size()) << server_first->text;
    expect_refusal(login, sasl_response(c.final_message(*server_first)), "08P01", "", c.detail);
  }
  expect_not_woken_and_still_serving(ac, gateway);
}

TEST(GatewayAuthHostileTest, AWellFormedProofOfAnotherPasswordIsRefusedWith28P01) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const std::string bare = "n=,r=fyko+d2lbbFgONRv9qkxdawL";
  RawLogin login(gateway, "alice");
  const auto server_first = scram_until_server_first(login, bare);
  ASSERT_TRUE(server_first.has_value());
  const auto wrong = scram_final("not-alice-pw", bare, *server_first, server_first->nonce);
  expect_refusal(login, sasl_response(wrong.message()), "28P01", "password authentication failed for user \"alice\"");
  EXPECT_EQ(metric(gateway, authentications("-", "wrong_password")), 1);
  expect_not_woken_and_still_serving(ac, gateway);
}

// A client-final-message captured from a successful login proves nothing on another
// connection: its r= carries the first connection's server nonce, and pgnap picks a new one
// each time.
TEST(GatewayAuthHostileTest, AReplayedClientFinalMessageIsRefusedWith08P01ForItsNonce) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  // The first login of alice is a real one: after it, hers are answered without a server.
  log_in_once_then_sleep(gateway, "alice", kAlicePassword);
  const int starts = ac.starts();
  const std::size_t wakes = gateway.count_in_log("waking (");

  const std::string bare = "n=,r=fyko+d2lbbFgONRv9qkxdawL";
  std::string recorded_final;
  std::string recorded_nonce;
  {
    RawLogin login(gateway, "alice");
    const auto server_first = scram_until_server_first(login, bare);
    ASSERT_TRUE(server_first.has_value());
    const auto right = scram_final(kAlicePassword, bare, *server_first, server_first->nonce);
    ASSERT_TRUE(login.send(sasl_response(right.message())));
    const auto sasl_final = login.next_request();
    ASSERT_EQ(sasl_final.code, 12) << "the right proof was not accepted";
    EXPECT_EQ(sasl_final.payload, "v=" + right.server_signature) << "pgnap's signature is not the server's";
    EXPECT_EQ(login.next_request().code, 0) << "no AuthenticationOk";
    bool ready = false;
    while (const auto m = login.next()) {
      if (m->type == 'Z') {
        ready = true;
        break;
      }
    }
    EXPECT_TRUE(ready) << "no ReadyForQuery after the login";
    ASSERT_TRUE(login.send(terminate_message()));
    recorded_final = right.message();
    recorded_nonce = server_first->nonce;
  }

  for (const std::string& replay_bare : {bare, std::string("n=,r=another-client-nonce")}) {
    SCOPED_TRACE("replayed after the client-first-message " + replay_bare);
    RawLogin login(gateway, "alice");
    const auto server_first = scram_until_server_first(login, replay_bare);
    ASSERT_TRUE(server_first.has_value());
    EXPECT_NE(server_first->nonce, recorded_nonce) << "pgnap chose the same server nonce twice";
    expect_refusal(login, sasl_response(recorded_final), "08P01", "invalid SCRAM response", "Nonce does not match.");
  }
  EXPECT_EQ(metric(gateway, authentications("scram-sha-256", "ok")), 2) << "the warm-up and the recorded login";
  EXPECT_EQ(metric(gateway, authentications("-", "protocol_error")), 2);
  expect_not_woken_and_still_serving(ac, gateway, starts, wakes);
}

// ---- md5's PasswordMessage --------------------------------------------------------------------

TEST(GatewayAuthHostileTest, MalformedMd5PasswordMessagesAreRefusedWith08P01AndAWrongAnswerWith28P01) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  struct Case {
    std::string name;
    std::function<std::string(const std::string& salt)> answer;
    std::string sqlstate;
    std::string message;
  };
  const std::vector<Case> cases{
      {"no NUL terminator", [](const std::string& salt) { return message('p', md5_answer(kBobPassword, "bob", salt)); },
       "08P01", "invalid password packet size"},
      {"bytes after the NUL terminator",
       [](const std::string& salt) { return message('p', md5_answer(kBobPassword, "bob", salt) + '\0' + "x"); },
       "08P01", "invalid password packet size"},
      {"an empty body", [](const std::string&) { return message('p', ""); }, "08P01", "invalid password packet size"},
      {"a SASLInitialResponse", [](const std::string&) { return sasl_initial("SCRAM-SHA-256", "n,,n=,r=abc"); },
       "08P01", "invalid password packet size"},
      {"a Query", [](const std::string&) { return query_message("select 1"); }, "08P01",
       "expected password response, got message type 81"},
      {"an answer too short to be md5", [](const std::string&) { return password_message("md5abc"); }, "28P01",
       "password authentication failed for user \"bob\""},
      {"the cleartext password", [](const std::string&) { return password_message(kBobPassword); }, "28P01",
       "password authentication failed for user \"bob\""},
      {"the answer for another password",
       [](const std::string& salt) { return password_message(md5_answer("not-bob-pw", "bob", salt)); }, "28P01",
       "password authentication failed for user \"bob\""},
      {"the answer for another salt",
       [](const std::string& salt) {
         std::string other = salt;
         other[0] = static_cast<char>(other[0] ^ 1);
         return password_message(md5_answer(kBobPassword, "bob", other));
       },
       "28P01", "password authentication failed for user \"bob\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawLogin login(gateway, "bob");
    const auto request = login.next_request();
    ASSERT_EQ(request.code, 5) << "bob is not asked for md5";
    ASSERT_EQ(request.payload.size(), 4u);
    expect_refusal(login, c.answer(request.payload), c.sqlstate, c.message);
  }
  EXPECT_EQ(gateway.count_in_log("waking ("), 0u);
  EXPECT_EQ(ac.starts(), 0);

  // The same bytes with the right password and this connection's salt get in.
  RawLogin login(gateway, "bob");
  const auto request = login.next_request();
  ASSERT_EQ(request.code, 5);
  ASSERT_TRUE(login.send(password_message(md5_answer(kBobPassword, "bob", request.payload))));
  EXPECT_EQ(login.next_request(30s).code, 0) << "the right md5 answer was refused";
}

// ---- After the login, while the instance sleeps -----------------------------------------------

// Logs in as alice with SCRAM and reads the greeting up to ReadyForQuery.
void scram_login(RawLogin& login) {
  const std::string bare = "n=,r=queue-limit-client-nonce";
  const auto server_first = scram_until_server_first(login, bare);
  ASSERT_TRUE(server_first.has_value());
  ASSERT_TRUE(
      login.send(sasl_response(scram_final(kAlicePassword, bare, *server_first, server_first->nonce).message())));
  for (;;) {
    const auto m = login.next();
    ASSERT_TRUE(m.has_value()) << "the login did not end in ReadyForQuery";
    ASSERT_NE(m->type, 'E') << "the login was refused";
    if (m->type == 'Z') return;
  }
}

TEST(GatewayAuthHostileTest, AMessageAboveQueueLimitWhileTheInstanceSleepsIsRefusedWith53400WithoutAWake) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac, "queue_limit = \"64kB\""), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  log_in_once_then_sleep(gateway, "alice", kAlicePassword);
  const int starts = ac.starts();
  const std::size_t wakes = gateway.count_in_log("waking (");

  RawLogin login(gateway, "alice");
  ASSERT_NO_FATAL_FAILURE(scram_login(login));
  // The header of a Query of 100 000 bytes: refused from it, before anything is queued.
  expect_refusal(login, "Q" + be32(100000), "53400", "too much data queued while instance \"main\" starts", "100000");
  EXPECT_EQ(metric(gateway, "pgnap_limit_hits_total{limit=\"queue_limit\"}"), 1);
  EXPECT_EQ(metric(gateway, "pgnap_queued_bytes{db_instance=\"main\"}"), 0);
  EXPECT_EQ(how_pgnap_ended(gateway), "");
  expect_not_woken_and_still_serving(ac, gateway, starts, wakes);
}

// The stream is out of sync once a length word is below 4: the session ends with 08P01.
TEST(GatewayAuthHostileTest, AMessageWithALengthBelow4AfterTheLoginWhileTheInstanceSleepsIsRefusedWith08P01) {
  AuthCluster ac;
  Gateway gateway(hostile_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  log_in_once_then_sleep(gateway, "alice", kAlicePassword);
  const int starts = ac.starts();
  const std::size_t wakes = gateway.count_in_log("waking (");

  RawLogin login(gateway, "alice");
  ASSERT_NO_FATAL_FAILURE(scram_login(login));
  expect_refusal(login, "Q" + be32(3), "08P01", "invalid message from client", "");
  EXPECT_EQ(metric(gateway, authentications("scram-sha-256", "ok")), 2) << "the warm-up and this login";
  EXPECT_EQ(how_pgnap_ended(gateway), "");
  expect_not_woken_and_still_serving(ac, gateway, starts, wakes);
}

TEST(GatewayAuthHostileTest, MessagesQueuedBeyondQueueLimitWhileTheInstanceWakesAreRefusedWith53400) {
  AuthCluster ac;
  WrapperBinDir bin;
  auto options = hostile_options(ac, "queue_limit = \"64kB\"");
  options.bin_dir = bin.path();
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  log_in_once_then_sleep(gateway, "alice", kAlicePassword);
  const int starts = ac.starts();
  const int start_calls = bin.invocations("start");
  bin.set_start_delay(std::nullopt);  // the wake the first query starts cannot finish

  RawLogin login(gateway, "alice");
  ASSERT_NO_FATAL_FAILURE(scram_login(login));
  // Eight queries of 9 000 bytes: the eighth takes the queue past 65 536 bytes, and is the
  // last byte sent (so pgnap's close resets nothing unread).
  const std::string one = query_message("select '" + std::string(9000 - 5 - 10, 'q') + "'");
  ASSERT_EQ(one.size(), 9000u);
  std::string eight;
  for (int i = 0; i < 8; ++i) eight += one;
  expect_refusal(login, eight, "53400", "too much data queued while instance \"main\" starts",
                 "This session queued more than auth.queue_limit.");
  EXPECT_EQ(metric(gateway, "pgnap_limit_hits_total{limit=\"queue_limit\"}"), 1);
  EXPECT_EQ(how_pgnap_ended(gateway), "");
  EXPECT_TRUE(wait_until([&] { return metric(gateway, "pgnap_queued_bytes{db_instance=\"main\"}") == 0; }, 10s))
      << "the closed session's queue is still counted: " << metric(gateway, "pgnap_queued_bytes{db_instance=\"main\"}");
  EXPECT_EQ(ac.starts(), starts) << "the start cannot have finished";

  // The wake the first query started goes on without the session (others may wait for it):
  // one start, and once it finishes, others are served.
  ASSERT_TRUE(wait_until([&] { return bin.sleep_pids().size() == 1; }, 10s)) << bin.invocation_log();
  EXPECT_EQ(bin.invocations("start"), start_calls + 1) << bin.invocation_log();
  bin.set_start_delay(0.0);
  ASSERT_EQ(::kill(bin.sleep_pids()[0], SIGKILL), 0);
  const auto r = psql(password_conninfo(gateway, "alice", kAlicePassword), "select 'still serving'");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "still serving\n");
  EXPECT_EQ(ac.starts(), starts + 1);
}

}  // namespace
}  // namespace pgnap::it
