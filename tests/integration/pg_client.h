// PostgreSQL clients for the integration tests (pg_client.cpp): libpq with deadlines, the
// server's ErrorResponse taken apart, pgbench's summary, and a raw socket that speaks just
// enough of the wire protocol to send hostile bytes and read the ErrorResponse that comes back.
// (psql, the command-line client, is in process.h: a command like any other.)
//
// A client that cannot even connect where the test needs it (connect_or_throw, RawClient)
// throws std::runtime_error: GoogleTest reports the message as the test's failure. What a
// test checks is returned as values, for EXPECT/ASSERT.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/integration/process.h"  // Millis

namespace pgnap::it {

// ---- libpq -----------------------------------------------------------------------------------

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;
struct PgResultDeleter {
  void operator()(PGresult* res) const { PQclear(res); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// The fields of an ErrorResponse that the tests look at.
struct ServerError {
  std::string severity;  // FATAL, ERROR, ...
  std::string sqlstate;  // "" when the failure did not come from an ErrorResponse
  std::string message;
  std::string detail;
};

struct ConnectResult {
  PgConnPtr conn;      // set on success
  std::string error;   // PQerrorMessage on failure
  ServerError server;  // the server's ErrorResponse, when the failure was one
  Millis elapsed{0};
  [[nodiscard]] bool ok() const { return conn != nullptr; }
};

// Connects with a deadline of our own (PQconnectStart/PQconnectPoll), so a slow wake is
// waited for and a hung one is reported rather than hanging the test.
//
// A failed connection has no PGresult to ask for its SQLSTATE, so the connection's error
// verbosity is set to PQERRORS_VERBOSE before the first poll: libpq then formats the
// server's ErrorResponse as "FATAL:  57P03: message\nDETAIL:  ...\n" in PQerrorMessage,
// which parse_libpq_error() takes apart. (The raw-socket client below is the second,
// independent way, used where the bytes themselves are the point.)
[[nodiscard]] ConnectResult connect(const std::string& conninfo, Millis timeout = 60s);
// connect() or throw with the error.
[[nodiscard]] PgConnPtr connect_or_throw(const std::string& conninfo, Millis timeout = 60s);
// Finds "SEVERITY:  SQLSTATE: message" (and DETAIL) in a verbose libpq error message.
[[nodiscard]] ServerError parse_libpq_error(const std::string& text);

struct QueryResult {
  bool ok = false;
  std::string value;  // first column of the first row ("" if none)
  int rows = 0;
  ServerError error;  // from PQresultErrorField when !ok
};
[[nodiscard]] QueryResult query(PGconn* conn, const std::string& sql);
[[nodiscard]] ServerError result_error(const PGresult* res, PGconn* conn);

// What `pgbench` printed about its run (PostgreSQL 15 format).
struct PgbenchSummary {
  bool parsed = false;
  long processed = -1;  // "number of transactions actually processed: N"
  long failed = -1;     // "number of failed transactions: N" (0 when the line is absent)
  double tps = 0;
};
[[nodiscard]] PgbenchSummary parse_pgbench(const std::string& out);

// ---- Raw wire protocol, for bytes no well-behaved client sends -------------------------------

[[nodiscard]] std::string be32(std::uint32_t value);
// A StartupMessage: length, protocol version, name\0value\0 ..., final \0.
[[nodiscard]] std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                                         std::uint32_t version = 196608 /* 3.0 */);

struct BackendMessage {
  char type = 0;
  std::string body;
};
// Splits complete backend messages off the front of `bytes` (a trailing partial one is left).
[[nodiscard]] std::vector<BackendMessage> split_backend_messages(std::string_view bytes);
[[nodiscard]] std::optional<ServerError> decode_error_response(const BackendMessage& message);
// The first ErrorResponse in `bytes`, if any.
[[nodiscard]] std::optional<ServerError> first_error(std::string_view bytes);

// A blocking socket with deadlines on every operation. Throws if it cannot connect.
class RawClient {
 public:
  [[nodiscard]] static RawClient tcp(std::uint16_t port, Millis timeout = 5s);
  [[nodiscard]] static RawClient unix_socket(const std::string& path, Millis timeout = 5s);
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&&) = delete;
  RawClient(const RawClient&) = delete;
  ~RawClient();

  bool send(std::string_view bytes);  // false if the peer is gone
  struct Reply {
    std::string bytes;
    bool closed = false;  // the peer closed (or reset) the connection before the deadline
  };
  // Reads until the peer closes the connection or `timeout` passes.
  [[nodiscard]] Reply read_until_closed(Millis timeout);
  // Reads until `done(bytes so far)`, the peer closes, or `timeout` passes.
  [[nodiscard]] Reply read_until(const std::function<bool(std::string_view)>& done, Millis timeout);

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace pgnap::it
