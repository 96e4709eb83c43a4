// Clients of the integration-test harness (pg_client.h): libpq with deadlines, pgbench output,
// and a raw socket that speaks just enough of the wire protocol to send hostile bytes and
// read the ErrorResponse that comes back.
#include "tests/integration/pg_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace pgnap::it {

using Clock = std::chrono::steady_clock;

namespace {

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1000));
}

}  // namespace

// ---- libpq -----------------------------------------------------------------------------------

ConnectResult connect(const std::string& conninfo, Millis timeout) {
  ConnectResult result;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  PgConnPtr conn(PQconnectStart(conninfo.c_str()));
  auto failed = [&](std::string why) {
    result.error = std::move(why);
    result.server = parse_libpq_error(result.error);
    result.elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start);
    return std::move(result);
  };
  if (!conn) return failed("PQconnectStart: out of memory");
  // Before the first poll, so an ErrorResponse during the startup is formatted with its
  // SQLSTATE (see pg_client.h).
  PQsetErrorVerbosity(conn.get(), PQERRORS_VERBOSE);
  if (PQstatus(conn.get()) == CONNECTION_BAD) return failed(PQerrorMessage(conn.get()));

  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED) return failed(PQerrorMessage(conn.get()));
    pollfd p{PQsocket(conn.get()), static_cast<short>(status == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    int ready = 0;
    while (ready == 0) {
      if (Clock::now() >= deadline) {
        return failed("harness: connection not established within " + std::to_string(timeout.count()) + " ms");
      }
      ready = ::poll(&p, 1, remaining_ms(deadline));
      if (ready < 0 && errno == EINTR) ready = 0;
    }
    status = PQconnectPoll(conn.get());
  }
  PQsetErrorVerbosity(conn.get(), PQERRORS_DEFAULT);
  result.conn = std::move(conn);
  result.elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start);
  return result;
}

PgConnPtr connect_or_throw(const std::string& conninfo, Millis timeout) {
  auto r = connect(conninfo, timeout);
  if (!r.ok()) throw std::runtime_error("cannot connect to \"" + conninfo + "\": " + r.error);
  return std::move(r.conn);
}

ServerError parse_libpq_error(const std::string& text) {
  // libpq (verbose): "...failed: FATAL:  57P03: instance \"main\" could not be started\n"
  //                  "DETAIL:  <detail, possibly several lines>\nHINT:  ...\nLOCATION:  ...\n"
  // When libpq tried more than once (SSL, then not), the last attempt's error comes last.
  static const std::regex head(R"((PANIC|FATAL|ERROR|WARNING):  ([0-9A-Z]{5}): ([^\n]*))");
  ServerError e;
  std::size_t detail_from = std::string::npos;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), head); it != std::sregex_iterator(); ++it) {
    e.severity = (*it)[1].str();
    e.sqlstate = (*it)[2].str();
    e.message = (*it)[3].str();
    detail_from = static_cast<std::size_t>(it->position(0) + it->length(0));
  }
  if (detail_from == std::string::npos) {
    e.message = text;
    return e;
  }
  const std::string rest = text.substr(detail_from);
  const std::string marker = "\nDETAIL:  ";
  const auto d = rest.find(marker);
  if (d == std::string::npos) return e;
  std::size_t end = rest.size();
  for (const char* next : {"\nHINT:  ", "\nLOCATION:  ", "\nCONTEXT:  "}) {
    const auto n = rest.find(next, d + marker.size());
    if (n != std::string::npos) end = std::min(end, n);
  }
  e.detail = rest.substr(d + marker.size(), end - d - marker.size());
  while (!e.detail.empty() && e.detail.back() == '\n') e.detail.pop_back();
  return e;
}

ServerError result_error(const PGresult* res, PGconn* conn) {
  ServerError e;
  auto field = [&](int code) {
    const char* v = res != nullptr ? PQresultErrorField(res, code) : nullptr;
    return v != nullptr ? std::string(v) : std::string();
  };
  e.severity = field(PG_DIAG_SEVERITY_NONLOCALIZED);
  e.sqlstate = field(PG_DIAG_SQLSTATE);
  e.message = field(PG_DIAG_MESSAGE_PRIMARY);
  e.detail = field(PG_DIAG_MESSAGE_DETAIL);
  if (e.message.empty()) {
    // libpq's own errors (connection lost, ...) have no fields, only the text.
    e.message = res != nullptr && *PQresultErrorMessage(res) != '\0' ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  }
  return e;
}

QueryResult query(PGconn* conn, const std::string& sql) {
  QueryResult q;
  PgResultPtr res(PQexec(conn, sql.c_str()));
  const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
    q.ok = true;
    q.rows = PQntuples(res.get());
    if (q.rows > 0 && PQnfields(res.get()) > 0) q.value = PQgetvalue(res.get(), 0, 0);
    return q;
  }
  q.error = result_error(res.get(), conn);
  return q;
}

PgbenchSummary parse_pgbench(const std::string& out) {
  PgbenchSummary s;
  static const std::regex processed(R"(number of transactions actually processed: ([0-9]+))");
  static const std::regex failed(R"(number of failed transactions: ([0-9]+))");
  static const std::regex tps(R"(tps = ([0-9.]+))");
  std::smatch m;
  if (std::regex_search(out, m, processed)) {
    s.parsed = true;
    s.processed = std::stol(m[1].str());
  }
  s.failed = std::regex_search(out, m, failed) ? std::stol(m[1].str()) : 0;
  if (std::regex_search(out, m, tps)) s.tps = std::stod(m[1].str());
  return s;
}

// ---- Raw wire protocol -----------------------------------------------------------------------

std::string be32(std::uint32_t value) {
  const std::uint32_t n = htonl(value);
  return std::string(reinterpret_cast<const char*>(&n), 4);
}

std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params, std::uint32_t version) {
  std::string body = be32(version);
  for (const auto& [name, value] : params) {
    body += name;
    body += '\0';
    body += value;
    body += '\0';
  }
  body += '\0';
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

std::vector<BackendMessage> split_backend_messages(std::string_view bytes) {
  // Each backend message: type byte, int32 length counting itself, body.
  std::vector<BackendMessage> out;
  while (bytes.size() >= 5) {
    std::uint32_t len = 0;
    std::memcpy(&len, bytes.data() + 1, 4);
    len = ntohl(len);
    if (len < 4 || bytes.size() - 1 < len) break;
    out.push_back({bytes[0], std::string(bytes.substr(5, len - 4))});
    bytes.remove_prefix(1 + len);
  }
  return out;
}

std::optional<ServerError> decode_error_response(const BackendMessage& message) {
  if (message.type != 'E') return std::nullopt;
  // Fields: a code byte and a NUL-terminated string each, then a final NUL.
  // https://www.postgresql.org/docs/15/protocol-error-fields.html
  ServerError e;
  std::string localized_severity;
  std::string_view body = message.body;
  while (!body.empty() && body[0] != '\0') {
    const char code = body[0];
    const auto end = body.find('\0', 1);
    if (end == std::string_view::npos) return std::nullopt;
    const std::string value(body.substr(1, end - 1));
    switch (code) {
      case 'S': localized_severity = value; break;
      case 'V': e.severity = value; break;
      case 'C': e.sqlstate = value; break;
      case 'M': e.message = value; break;
      case 'D': e.detail = value; break;
      default: break;
    }
    body.remove_prefix(end + 1);
  }
  if (e.severity.empty()) e.severity = localized_severity;
  return e;
}

std::optional<ServerError> first_error(std::string_view bytes) {
  for (const auto& m : split_backend_messages(bytes)) {
    if (auto e = decode_error_response(m)) return e;
  }
  return std::nullopt;
}

namespace {

int connect_socket(int family, const sockaddr* addr, socklen_t len, Millis timeout, const std::string& what) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  if (::connect(fd, addr, len) != 0 && errno != EINPROGRESS) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error("connect " + what + ": " + std::strerror(err));
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t err_len = sizeof err;
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0) {
    ::close(fd);
    throw std::runtime_error("connect " + what + ": " + (err != 0 ? std::strerror(err) : "timed out"));
  }
  return fd;
}

}  // namespace

RawClient RawClient::tcp(std::uint16_t port, Millis timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return RawClient(connect_socket(AF_INET, reinterpret_cast<sockaddr*>(&addr), sizeof addr, timeout,
                                  "127.0.0.1:" + std::to_string(port)));
}

RawClient RawClient::unix_socket(const std::string& path, Millis timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return RawClient(connect_socket(AF_UNIX, reinterpret_cast<sockaddr*>(&addr), sizeof addr, timeout, path));
}

RawClient::RawClient(RawClient&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::send(std::string_view bytes) {
  const auto deadline = Clock::now() + 5s;
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd_, POLLOUT, 0};
      if (Clock::now() >= deadline) return false;
      ::poll(&p, 1, remaining_ms(deadline));
    } else {
      return false;
    }
  }
  return true;
}

RawClient::Reply RawClient::read_until_closed(Millis timeout) {
  return read_until([](std::string_view) { return false; }, timeout);
}

RawClient::Reply RawClient::read_until(const std::function<bool(std::string_view)>& done, Millis timeout) {
  Reply reply;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && !done(reply.bytes)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) continue;
    char buf[8192];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      reply.bytes.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      reply.closed = true;  // orderly close, or reset
      break;
    }
  }
  return reply;
}

}  // namespace pgnap::it
