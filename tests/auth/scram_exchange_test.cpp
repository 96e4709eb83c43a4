// Whole SCRAM exchanges: RFC 7677 section 3's test vector through ScramServer and ScramClient,
// pass-through with the recovered ClientKey, the unknown user's mock exchange, every refusal
// of the server with PostgreSQL's SQLSTATE, and channel binding.
//
// RFC 7677's client sends "n=user"; ScramClient sends "n=" as libpq does, and the user name is
// part of the signed AuthMessage, so ScramClient's proof for the same nonces, salt and
// password differs from the RFC's: that one was computed with Python's hashlib (hmac,
// pbkdf2_hmac), as were the PLUS exchange's values. The server is checked against the RFC's
// own messages.
#include <openssl/obj_mac.h>

#include <gtest/gtest.h>

#include <string>

#include "auth/base64.h"
#include "auth/scram.h"
#include "scram_test_util.h"

namespace pgnap::auth {
namespace {

using testing::failure_of;
using testing::key_string;
using testing::value_of;

const std::string kSaltBase64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
const std::string kClientNonce = "rOprNGfwEbeRWgbNEkqO";
const std::string kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const std::string kNonce = kClientNonce + kServerNonce;
const std::string kServerFirst = "r=" + kNonce + ",s=" + kSaltBase64 + ",i=4096";
// ClientKey for "pencil" with that salt (hashlib).
const std::string kPencilClientKey = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";

const ScramVerifier& pencil() {
  static const ScramVerifier v = make_scram_verifier("pencil", base64_decode(kSaltBase64).value(), 4096);
  return v;
}

ScramKey key_from_base64(const std::string& text) {
  const std::string bytes = base64_decode(text).value();
  ScramKey key{};
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

ScramServer::Options options(std::optional<ScramVerifier> verifier = pencil(), std::string user = "user") {
  ScramServer::Options o;
  o.user = std::move(user);
  o.verifier = std::move(verifier);
  o.mock_secret = "the gateway's mock secret";
  o.server_nonce = kServerNonce;
  return o;
}

// The certificate's hash as the channel binding data (tls-server-end-point over some bytes).
std::string certificate_hash(const std::string& certificate) {
  return tls_server_end_point(certificate, NID_sha256).value();
}

ScramServer::Options tls_options(const std::string& certificate = "pgnap test certificate") {
  ScramServer::Options o = options();
  o.channel_binding_data = certificate_hash(certificate);
  return o;
}

void expect_failure(const ScramFailure& f, const std::string& sqlstate, const std::string& message,
                    const std::string& detail = "") {
  EXPECT_EQ(f.sqlstate, sqlstate);
  EXPECT_EQ(f.message, message);
  EXPECT_EQ(f.detail, detail);
}

// ---- RFC 7677 section 3 ----

TEST(ScramRfc7677, ServerAcceptsTheRfcExchange) {
  ScramServer server(options());
  EXPECT_EQ(value_of(server.first(kScramSha256, "n,,n=user,r=" + kClientNonce)), kServerFirst);
  const auto success = value_of(server.final("c=biws,r=" + kNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
  EXPECT_EQ(success.server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  EXPECT_EQ(base64_encode(key_string(success.client_key)), kPencilClientKey);
}

TEST(ScramRfc7677, ClientWithThePasswordComputesTheProofAndChecksTheSignature) {
  ScramClient client = ScramClient::with_password("pencil", kClientNonce);
  EXPECT_EQ(client.client_first(), "n,,n=,r=" + kClientNonce);
  EXPECT_EQ(value_of(client.handle_server_first(kServerFirst)),
            "c=biws,r=" + kNonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=");
  EXPECT_EQ(client.handle_server_final("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="), std::nullopt);
}

TEST(ScramRfc7677, ClientAndServerTogether) {
  ScramClient client = ScramClient::with_password("pencil", kClientNonce);
  ScramServer server(options());
  const std::string server_first = value_of(server.first(kScramSha256, client.client_first()));
  EXPECT_EQ(server_first, kServerFirst);
  const auto success = value_of(server.final(value_of(client.handle_server_first(server_first))));
  EXPECT_EQ(client.handle_server_final(success.server_final), std::nullopt);
  EXPECT_EQ(base64_encode(key_string(success.client_key)), kPencilClientKey);
}

// ---- pass-through ----

TEST(ScramPassThrough, TheRecoveredClientKeyLogsInWhereTheSameVerifierIsStored) {
  // The client logs in to pgnap...
  ScramClient client = ScramClient::with_password("pencil", kClientNonce);
  ScramServer gateway(options());
  const auto at_gateway = value_of(gateway.final(
      value_of(client.handle_server_first(value_of(gateway.first(kScramSha256, client.client_first()))))));
  // ...and pgnap logs in to "PostgreSQL" (another server with the same verifier and its own
  // nonce) with what it recovered, without the password.
  ScramServer::Options postgres_options = options();
  postgres_options.server_nonce = "PostgreSQLsOwnNonce+/=";
  ScramServer postgres(postgres_options);
  ScramClient pgnap = ScramClient::with_client_key(at_gateway.client_key, pencil(), "pgnapNonce");
  const std::string server_first = value_of(postgres.first(kScramSha256, pgnap.client_first()));
  const auto at_postgres = value_of(postgres.final(value_of(pgnap.handle_server_first(server_first))));
  EXPECT_EQ(pgnap.handle_server_final(at_postgres.server_final), std::nullopt);
  EXPECT_EQ(at_postgres.client_key, at_gateway.client_key);
}

TEST(ScramPassThrough, ServerWithAnotherSaltIsReportedBeforeAnyProof) {
  ScramClient pgnap = ScramClient::with_client_key(key_from_base64(kPencilClientKey), pencil(), "pgnapNonce");
  // PostgreSQL holds a verifier for the same password, made with another salt.
  ScramServer::Options o = options(make_scram_verifier("pencil", "another salt....", 4096));
  ScramServer postgres(o);
  const std::string server_first = value_of(postgres.first(kScramSha256, pgnap.client_first()));
  const ScramFailure f = failure_of(pgnap.handle_server_first(server_first));
  EXPECT_EQ(f.sqlstate, "28000");
  EXPECT_EQ(f.message, "the server's SCRAM verifier for this user differs from pgnap's");
  EXPECT_NE(f.detail.find("salt"), std::string::npos) << f.detail;
  EXPECT_EQ(f.detail.find("iteration"), std::string::npos) << f.detail;
}

TEST(ScramPassThrough, ServerWithAnotherIterationCountIsReported) {
  ScramClient pgnap = ScramClient::with_client_key(key_from_base64(kPencilClientKey), pencil(), "pgnapNonce");
  const ScramFailure f = failure_of(pgnap.handle_server_first("r=pgnapNonceServer,s=" + kSaltBase64 + ",i=10000"));
  EXPECT_EQ(f.sqlstate, "28000");
  EXPECT_EQ(f.message, "the server's SCRAM verifier for this user differs from pgnap's");
  EXPECT_NE(f.detail.find("iteration count is 10000, pgnap's 4096"), std::string::npos) << f.detail;
}

TEST(ScramPassThrough, AServerKeyThatDiffersFailsTheServersSignature) {
  ScramVerifier mine = pencil();
  mine.server_key[0] ^= 1;
  ScramClient pgnap = ScramClient::with_client_key(key_from_base64(kPencilClientKey), mine, "pgnapNonce");
  ScramServer postgres(options());
  const std::string server_first = value_of(postgres.first(kScramSha256, pgnap.client_first()));
  const auto success = value_of(postgres.final(value_of(pgnap.handle_server_first(server_first))));
  const auto f = pgnap.handle_server_final(success.server_final);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->sqlstate, "28000");
  EXPECT_EQ(f->message, "the server's SCRAM signature is invalid");
}

// ---- ScramClient's refusals ----

TEST(ScramClient, RefusesANonceThatDoesNotExtendItsOwn) {
  for (const std::string& nonce : {std::string("someoneElsesNonce"), kClientNonce, kClientNonce.substr(1) + "x"}) {
    ScramClient client = ScramClient::with_password("pencil", kClientNonce);
    const ScramFailure f = failure_of(client.handle_server_first("r=" + nonce + ",s=" + kSaltBase64 + ",i=4096"));
    expect_failure(f, "08P01", "invalid SCRAM response", "The server's nonce does not extend the client's.");
  }
}

TEST(ScramClient, MalformedServerFirst) {
  ScramClient client = ScramClient::with_password("pencil", kClientNonce);
  expect_failure(failure_of(client.handle_server_first("r=" + kNonce + ",s=" + kSaltBase64)), "08P01",
                 "malformed SCRAM message", "Expected attribute \"i\" but found \"0x00\".");
}

TEST(ScramClient, ServerErrorAndWrongSignature) {
  ScramClient client = ScramClient::with_password("pencil", kClientNonce);
  ASSERT_TRUE(std::holds_alternative<std::string>(client.handle_server_first(kServerFirst)));
  const auto error = client.handle_server_final("e=other-error");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->sqlstate, "28000");
  EXPECT_EQ(error->message, "error received from server in SCRAM exchange: other-error");
  // RFC 7677's signature is for "n=user": not ours.
  const auto wrong = client.handle_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->sqlstate, "28000");
  EXPECT_EQ(wrong->message, "the server's SCRAM signature is invalid");
}

TEST(ScramClient, OutOfOrder) {
  ScramClient client = ScramClient::with_password("pencil", kClientNonce);
  const auto early = client.handle_server_final("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->sqlstate, "08P01");
  ASSERT_TRUE(std::holds_alternative<std::string>(client.handle_server_first(kServerFirst)));
  EXPECT_EQ(failure_of(client.handle_server_first(kServerFirst)).sqlstate, "08P01");
}

// ---- ScramServer ----

TEST(ScramServer, OffersPlusOnlyWithChannelBindingData) {
  EXPECT_EQ(ScramServer(options()).mechanisms(), std::vector<std::string>{"SCRAM-SHA-256"});
  EXPECT_EQ(ScramServer(tls_options()).mechanisms(), (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
  ScramServer::Options empty = options();
  empty.channel_binding_data = "";
  EXPECT_EQ(ScramServer(empty).mechanisms(), std::vector<std::string>{"SCRAM-SHA-256"});
}

TEST(ScramServer, RefusesAMechanismItDidNotOffer) {
  for (const std::string mechanism : {"SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "scram-sha-256", "", "PLAIN"}) {
    ScramServer server(options());
    expect_failure(failure_of(server.first(mechanism, "n,,n=,r=abc")), "08P01",
                   "client selected an invalid SASL authentication mechanism");
  }
}

TEST(ScramServer, WrongPassword) {
  ScramClient client = ScramClient::with_password("pencil2", kClientNonce);
  ScramServer server(options(pencil(), "alice"));
  const std::string server_first = value_of(server.first(kScramSha256, client.client_first()));
  expect_failure(failure_of(server.final(value_of(client.handle_server_first(server_first)))), "28P01",
                 "password authentication failed for user \"alice\"");
}

TEST(ScramServer, TamperedProofOrSignedPartFails) {
  const std::string good = "c=biws,r=" + kNonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=";
  for (const std::string& bad : {
           "c=biws,r=" + kNonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9g=",      // last bits flipped
           "c=biws,r=" + kNonce + ",x=1,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=",  // not what was signed
       }) {
    ScramServer server(options());
    ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=" + kClientNonce)));
    expect_failure(failure_of(server.final(bad)), "28P01", "password authentication failed for user \"user\"");
  }
  ScramServer server(options());
  ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=" + kClientNonce)));
  EXPECT_TRUE(std::holds_alternative<ScramServer::Success>(server.final(good)));
}

TEST(ScramServer, NonceMismatch) {
  for (const std::string& nonce :
       {kClientNonce, kNonce + "x", kNonce.substr(0, kNonce.size() - 1) + "1", "x" + kNonce.substr(1)}) {
    ScramServer server(options());
    ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=" + kClientNonce)));
    expect_failure(failure_of(server.final("c=biws,r=" + nonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=")),
                   "08P01", "invalid SCRAM response", "Nonce does not match.");
  }
}

TEST(ScramServer, ChannelBindingAttributeMustRepeatTheGs2Header) {
  ScramServer server(options());
  ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=" + kClientNonce)));
  expect_failure(failure_of(server.final("c=eSws,r=" + kNonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=")),
                 "08P01", "unexpected SCRAM channel-binding attribute in client-final-message");
}

TEST(ScramServer, ClientThatSupportsBindingButThinksTheServerDoesNot) {
  // "y" without TLS is fine: the server indeed offers no binding.
  ScramServer server(options());
  ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "y,,n=,r=" + kClientNonce)));
  EXPECT_TRUE(std::holds_alternative<ScramServer::Success>(
      server.final("c=eSws,r=" + kNonce + ",p=VpuC5DGQa5ro9tXE9MnKs69NH1nxnuregZZcclqIGfM=")));
}

TEST(ScramServer, MalformedMessagesKeepTheirSqlstate) {
  {
    ScramServer server(options());
    expect_failure(failure_of(server.first(kScramSha256, "")), "08P01", "malformed SCRAM message",
                   "The message is empty.");
  }
  {
    ScramServer server(options());
    EXPECT_EQ(failure_of(server.first(kScramSha256, "n,a=x,n=,r=abc")).sqlstate, "0A000");
  }
  {
    ScramServer server(options());
    ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=" + kClientNonce)));
    expect_failure(failure_of(server.final("c=biws,r=" + kNonce + ",p=AAAA")), "08P01", "malformed SCRAM message",
                   "Malformed proof in client-final-message.");
  }
}

TEST(ScramServer, CallsOutOfOrder) {
  {
    ScramServer server(options());
    expect_failure(failure_of(server.final("c=biws,r=abc,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=")), "08P01",
                   "malformed SCRAM message", "The client-final-message came before the client-first-message.");
    // And the exchange is over.
    EXPECT_EQ(failure_of(server.first(kScramSha256, "n,,n=,r=abc")).detail, "The SCRAM exchange is over.");
  }
  {
    ScramServer server(options());
    ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=abc")));
    expect_failure(failure_of(server.first(kScramSha256, "n,,n=,r=abc")), "08P01", "malformed SCRAM message",
                   "The client-first-message was already received.");
  }
  {
    // A failed first() cannot be retried.
    ScramServer server(options());
    EXPECT_EQ(failure_of(server.first(kScramSha256, "x")).sqlstate, "08P01");
    EXPECT_EQ(failure_of(server.first(kScramSha256, "n,,n=,r=abc")).detail, "The SCRAM exchange is over.");
  }
  {
    // Nor a successful final() replayed.
    ScramServer server(options());
    ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=" + kClientNonce)));
    const std::string final = "c=biws,r=" + kNonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=";
    EXPECT_TRUE(std::holds_alternative<ScramServer::Success>(server.final(final)));
    EXPECT_EQ(failure_of(server.final(final)).detail, "The SCRAM exchange is over.");
  }
}

TEST(ScramServer, InvalidServerNonceIsAnInternalError) {
  for (const std::string nonce : {"", "with space", "with,comma"}) {
    ScramServer::Options o = options();
    o.server_nonce = nonce;
    ScramServer server(o);
    EXPECT_EQ(failure_of(server.first(kScramSha256, "n,,n=,r=abc")).sqlstate, "XX000");
  }
}

// ---- the unknown user ----

ServerFirst mock_server_first(const std::string& user, const std::string& secret = "the gateway's mock secret") {
  ScramServer::Options o = options(std::nullopt, user);
  o.mock_secret = secret;
  ScramServer server(o);
  return value_of(parse_server_first(value_of(server.first(kScramSha256, "n,,n=,r=" + kClientNonce))));
}

TEST(ScramServer, UnknownUserFailsLikeAWrongPasswordAfterAWellFormedExchange) {
  ScramClient client = ScramClient::with_password("pencil", kClientNonce);
  ScramServer server(options(std::nullopt, "ghost"));
  const std::string server_first = value_of(server.first(kScramSha256, client.client_first()));
  const std::string client_final = value_of(client.handle_server_first(server_first));
  expect_failure(failure_of(server.final(client_final)), "28P01", "password authentication failed for user \"ghost\"");
}

TEST(ScramServer, MockSaltIsStablePerUserAndDiffersBetweenUsers) {
  const ServerFirst ghost = mock_server_first("ghost");
  EXPECT_EQ(ghost.salt.size(), 16u);  // like PostgreSQL's SCRAM_DEFAULT_SALT_LEN
  EXPECT_EQ(ghost.iterations, 4096);  // and SCRAM_DEFAULT_ITERATIONS
  EXPECT_EQ(mock_server_first("ghost").salt, ghost.salt);
  EXPECT_NE(mock_server_first("phantom").salt, ghost.salt);
  EXPECT_NE(mock_server_first("ghost", "another gateway's secret").salt, ghost.salt);
}

TEST(ScramServer, AnUnusableVerifierIsTreatedAsAnUnknownUser) {
  // make_scram_verifier's result when PBKDF2 was refused: iterations 0.
  ScramVerifier broken = pencil();
  broken.iterations = 0;
  ScramServer server(options(broken));
  const ServerFirst first = value_of(parse_server_first(value_of(server.first(kScramSha256, "n,,n=,r=abc"))));
  EXPECT_EQ(first.iterations, 4096);
  EXPECT_NE(first.salt, pencil().salt);
}

// ---- channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point) ----

const std::string kPlusFirst = "p=tls-server-end-point,,n=,r=" + kClientNonce;
const std::string kPlusFinal = "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws9bcRWoX7T9Aozkg8J/EGrbvNG0TPq5x6i2zu5NQDYmc=,r=" +
                               kNonce + ",p=wCIWjM5HlmP24u3hfv6q7GXHVbw1QjpX+WbTZMyYs68=";

TEST(ScramChannelBinding, PlusWithTheServersCertificateHash) {
  ScramServer server(tls_options());
  EXPECT_EQ(value_of(server.first(kScramSha256Plus, kPlusFirst)), kServerFirst);
  const auto success = value_of(server.final(kPlusFinal));
  EXPECT_EQ(success.server_final, "v=nN75B6fNVs1PFgAwn8AT1dTm6mooYcHa8RZFAAnnYV0=");
  EXPECT_EQ(base64_encode(key_string(success.client_key)), kPencilClientKey);
}

TEST(ScramChannelBinding, AnotherCertificateFailsTheCheck) {
  // The client hashed the certificate it saw: a man in the middle's, not ours.
  ScramServer server(tls_options("the gateway's real certificate"));
  ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256Plus, kPlusFirst)));
  expect_failure(failure_of(server.final(kPlusFinal)), "28000", "SCRAM channel binding check failed");
}

TEST(ScramChannelBinding, BindingDataMissingFromTheFinalMessage) {
  ScramServer server(tls_options());
  ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256Plus, kPlusFirst)));
  expect_failure(failure_of(server.final("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" + kNonce +
                                         ",p=wCIWjM5HlmP24u3hfv6q7GXHVbw1QjpX+WbTZMyYs68=")),
                 "28000", "SCRAM channel binding check failed");
}

TEST(ScramChannelBinding, PlusChosenWithoutBinding) {
  for (const std::string& first : {"n,,n=,r=" + kClientNonce, "y,,n=,r=" + kClientNonce}) {
    ScramServer server(tls_options());
    expect_failure(failure_of(server.first(kScramSha256Plus, first)), "08P01", "malformed SCRAM message",
                   "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding "
                   "data.");
  }
}

TEST(ScramChannelBinding, ClientThatThinksTheServerCannotBindIsRefusedWhenItCan) {
  ScramServer server(tls_options());
  expect_failure(failure_of(server.first(kScramSha256, "y,,n=,r=" + kClientNonce)), "28000",
                 "SCRAM channel binding negotiation error",
                 "The client supports SCRAM channel binding but thinks the server does not.  However, this server "
                 "does support channel binding.");
}

TEST(ScramChannelBinding, BindingWithThePlainMechanism) {
  for (const auto& o : {options(), tls_options()}) {
    ScramServer server(o);
    expect_failure(failure_of(server.first(kScramSha256, kPlusFirst)), "08P01", "malformed SCRAM message",
                   "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes "
                   "channel binding data.");
  }
}

TEST(ScramChannelBinding, OnlyTlsServerEndPoint) {
  ScramServer server(tls_options());
  expect_failure(failure_of(server.first(kScramSha256Plus, "p=tls-unique,,n=,r=" + kClientNonce)), "08P01",
                 "unsupported SCRAM channel-binding type \"tls-unique\"");
}

TEST(ScramChannelBinding, ClientWithoutBindingSupportOverTls) {
  // "n": the client cannot bind at all (say, an old libpq): allowed, as by PostgreSQL.
  ScramServer server(tls_options());
  ASSERT_TRUE(std::holds_alternative<std::string>(server.first(kScramSha256, "n,,n=,r=" + kClientNonce)));
  EXPECT_TRUE(std::holds_alternative<ScramServer::Success>(
      server.final("c=biws,r=" + kNonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=")));
}

}  // namespace
}  // namespace pgnap::auth
