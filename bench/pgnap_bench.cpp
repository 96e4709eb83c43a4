// pgnap-bench: the load tool of bench/run.sh. One thread, libpq's asynchronous API, many
// connections at once; prints one line of key=value results.
//
//   pgnap-bench first-row CONNINFO [--timeout S]
//       one connection from connect to the first row of `select 1`: ms
//   pgnap-bench start-to-first-row CONNINFO --start "CMD ..." [--poll-ms N] [--timeout S]
//       runs CMD (through /bin/sh), then connects every N ms (default 5) until `select 1`
//       returns a row: ms from CMD's launch (PostgreSQL's own start-to-first-row)
//   pgnap-bench burst CONNINFO --clients N [--timeout S]
//       N connections opened at the same instant, each runs `select 1`: ok, failed, p50, p99,
//       max time to first row (ms), and the first error seen
//   pgnap-bench hold CONNINFO --clients N --seconds S
//       N sessions connected and idle (after one `select 1`) for S seconds; prints when ready
//   pgnap-bench connect CONNINFO [--query] [--keep-awake] [--cold] [--timeout S]
//       one connection: ms from PQconnectStart to ReadyForQuery (libpq's CONNECTION_OK), and
//       with --query to the first row of `select 1`. --keep-awake first wakes the instance
//       through a second session whose `select pg_sleep(3600)` stays in flight (so pgnap
//       cannot suspend it) during the timed connection, then cancels it. Unless --cold, a
//       SCRAM handshake with a stub server in this process comes first (stub_handshake),
//       twice: stub_ms is the second one's time, the client's own cost of the login
//   pgnap-bench idle-session CONNINFO [--timeout S]
//       connects (no query) and prints `connected rfq_ms=...`; holds the session idle until
//       stdin reaches EOF, watching whether the server says or closes anything; then runs
//       `select 1`: alive, ms to that first row
//   start-to-first-row --wait: connect only once CMD has exited (`pg_ctl start -w`); --warm:
//       the stub logins of `connect` first, before the clock starts
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Client {
  PGconn* conn = nullptr;
  enum Phase { kConnecting, kQuerying, kDone, kFailed } phase = kConnecting;
  PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
  double first_row_ms = 0;
  std::string error;
};

// Drives every client's connection and `select 1` to completion (or the deadline).
void run_clients(std::vector<Client>& clients, Clock::time_point t0, Clock::time_point deadline, bool keep_open) {
  std::size_t active = static_cast<std::size_t>(
      std::count_if(clients.begin(), clients.end(), [](const Client& c) { return c.phase != Client::kFailed; }));
  std::vector<pollfd> fds;
  std::vector<std::size_t> owners;
  while (active > 0 && Clock::now() < deadline) {
    fds.clear();
    owners.clear();
    for (std::size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      if (c.phase == Client::kDone || c.phase == Client::kFailed) continue;
      short events = POLLIN;
      if (c.phase == Client::kConnecting && c.poll == PGRES_POLLING_WRITING) events = POLLOUT;
      fds.push_back({PQsocket(c.conn), events, 0});
      owners.push_back(i);
    }
    const int left = static_cast<int>(
        std::max<long long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    if (::poll(fds.data(), fds.size(), std::min(left, 100)) < 0) continue;
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      Client& c = clients[owners[k]];
      if (c.phase == Client::kConnecting) {
        c.poll = PQconnectPoll(c.conn);
        if (c.poll == PGRES_POLLING_FAILED) {
          c.phase = Client::kFailed;
          c.error = PQerrorMessage(c.conn);
          --active;
        } else if (c.poll == PGRES_POLLING_OK) {
          if (!PQsendQuery(c.conn, "select 1")) {
            c.phase = Client::kFailed;
            c.error = PQerrorMessage(c.conn);
            --active;
          } else {
            c.phase = Client::kQuerying;
          }
        }
      } else if (c.phase == Client::kQuerying) {
        if (!PQconsumeInput(c.conn)) {
          c.phase = Client::kFailed;
          c.error = PQerrorMessage(c.conn);
          --active;
          continue;
        }
        while (!PQisBusy(c.conn)) {
          PGresult* r = PQgetResult(c.conn);
          if (r == nullptr) break;
          if (PQresultStatus(r) == PGRES_TUPLES_OK && c.first_row_ms == 0) c.first_row_ms = ms_since(t0);
          if (PQresultStatus(r) != PGRES_TUPLES_OK) c.error = PQresultErrorMessage(r);
          PQclear(r);
        }
        if (!PQisBusy(c.conn)) {
          c.phase = c.first_row_ms > 0 ? Client::kDone : Client::kFailed;
          --active;
        }
      }
    }
  }
  for (Client& c : clients) {
    if (c.phase == Client::kConnecting || c.phase == Client::kQuerying) {
      c.phase = Client::kFailed;
      c.error = "timed out";
    }
    if (!keep_open || c.phase == Client::kFailed) {
      PQfinish(c.conn);
      c.conn = nullptr;
    }
  }
}

std::vector<Client> start_clients(const std::string& conninfo, int n) {
  std::vector<Client> clients(static_cast<std::size_t>(n));
  for (Client& c : clients) {
    c.conn = PQconnectStart(conninfo.c_str());
    if (c.conn == nullptr || PQstatus(c.conn) == CONNECTION_BAD) {
      c.phase = Client::kFailed;
      c.error = c.conn ? PQerrorMessage(c.conn) : "out of memory";
    }
  }
  return clients;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p * static_cast<double>(v.size()))));
  return v[std::min(rank, v.size()) - 1];
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string option(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

bool read_full(int fd, char* buf, std::size_t n) {
  while (n > 0) {
    const ssize_t got = ::read(fd, buf, n);
    if (got <= 0) return false;
    buf += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

bool write_full(int fd, const std::string& bytes) {
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

std::string be32(std::uint32_t v) {
  const std::uint32_t n = htonl(v);
  return std::string(reinterpret_cast<const char*>(&n), 4);
}

std::uint32_t read_be32(const char* p) {
  std::uint32_t n;
  std::memcpy(&n, p, 4);
  return ntohl(n);
}

// One message from the client after the startup: its type and body, or false.
bool read_message(int fd, char& type, std::string& body) {
  char head[5];
  if (!read_full(fd, head, 5)) return false;
  type = head[0];
  const std::uint32_t len = read_be32(head + 1);
  if (len < 4 || len > 10000) return false;
  body.assign(len - 4, '\0');
  return read_full(fd, body.data(), body.size());
}

// The stub's side of a SCRAM-SHA-256 exchange, up to the client's proof, then a FATAL.
void stub_server(int listener) {
  const int fd = ::accept(listener, nullptr, nullptr);
  if (fd < 0) return;
  for (;;) {  // SSLRequest / GSSENCRequest are refused ('N'); then the StartupMessage
    char head[8];
    if (!read_full(fd, head, 8)) break;
    const std::uint32_t len = read_be32(head);
    const std::uint32_t code = read_be32(head + 4);
    if (len == 8 && (code == 80877103 || code == 80877104)) {
      if (!write_full(fd, "N")) break;
      continue;
    }
    if (len < 8 || len > 10000) break;
    std::string rest(len - 8, '\0');
    if (!read_full(fd, rest.data(), rest.size())) break;
    const std::string sasl = std::string("SCRAM-SHA-256") + '\0' + '\0';
    if (!write_full(fd, "R" + be32(static_cast<std::uint32_t>(8 + sasl.size())) + be32(10) + sasl)) break;
    char type = 0;
    std::string body;
    if (!read_message(fd, type, body) || type != 'p') break;
    const std::size_t r = body.find("r=");
    if (r == std::string::npos) break;
    const std::string first = "r=" + body.substr(r + 2) + "stubnonce,s=c2FsdHNhbHRzYWx0c2FsdA==,i=4096";
    if (!write_full(fd, "R" + be32(static_cast<std::uint32_t>(8 + first.size())) + be32(11) + first)) break;
    if (!read_message(fd, type, body)) break;  // the client's proof: the work is done
    const std::string error = std::string("SFATAL") + '\0' + "C28P01" + '\0' + "Mwarm-up only" + '\0' + '\0';
    write_full(fd, "E" + be32(static_cast<std::uint32_t>(4 + error.size())) + error);
    break;
  }
  ::close(fd);
}

// libpq pays some costs once per process: OpenSSL's configuration and algorithm fetches (its
// random numbers and SCRAM's HMAC), Kerberos' configuration for the GSSENC probe. A long-lived
// client (an application, a pool) has paid them before the connection that matters; a one-shot
// client (psql) pays them in it. A handshake with a stub server on a loopback port pays them
// here, without touching the server being measured. Returns the ms of one such handshake
// (negative if the stub could not listen): the client's own cost of a SCRAM login over TCP,
// the floor for any server.
double stub_handshake() {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (listener >= 0) ::close(listener);
    return -1;
  }
  std::thread server(stub_server, listener);
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(ntohs(addr.sin_port)) +
                               " user=warmup password=warmup dbname=warmup connect_timeout=5";
  const auto t0 = Clock::now();
  PQfinish(PQconnectdb(conninfo.c_str()));
  const double ms = ms_since(t0);
  server.join();
  ::close(listener);
  return ms;
}

bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

// One connection driven to ReadyForQuery: ms from PQconnectStart, or a negative number and
// `error`. The connection is left open in `conn` on success.
double timed_connect(const std::string& conninfo, Clock::time_point deadline, PGconn*& conn, std::string& error) {
  const auto t0 = Clock::now();
  conn = PQconnectStart(conninfo.c_str());
  if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) {
    error = conn ? PQerrorMessage(conn) : "out of memory";
    return -1;
  }
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) {
      error = PQerrorMessage(conn);
      return -1;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      error = "timed out";
      return -1;
    }
    pollfd fd{PQsocket(conn), static_cast<short>(st == PGRES_POLLING_WRITING ? POLLOUT : POLLIN), 0};
    if (::poll(&fd, 1, static_cast<int>(std::min<long long>(left, 1000))) < 0) continue;
    if (fd.revents != 0) st = PQconnectPoll(conn);
  }
  return ms_since(t0);
}

// `select 1` on an open connection: ms from sending it to its row (counted from `t0`), or a
// negative number and `error`.
double timed_select(PGconn* conn, Clock::time_point t0, Clock::time_point deadline, std::string& error) {
  if (!PQsendQuery(conn, "select 1")) {
    error = PQerrorMessage(conn);
    return -1;
  }
  double row_ms = -1;
  for (;;) {
    while (!PQisBusy(conn)) {
      PGresult* r = PQgetResult(conn);
      if (r == nullptr) {
        if (row_ms < 0 && error.empty()) error = "no row";
        return row_ms;
      }
      if (PQresultStatus(r) == PGRES_TUPLES_OK && row_ms < 0) row_ms = ms_since(t0);
      if (PQresultStatus(r) != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
      PQclear(r);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      error = "timed out";
      return -1;
    }
    pollfd fd{PQsocket(conn), POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(std::min<long long>(left, 1000))) < 0) continue;
    if (fd.revents != 0 && !PQconsumeInput(conn)) {
      error = PQerrorMessage(conn);
      return -1;
    }
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: pgnap-bench first-row|start-to-first-row|burst|hold|connect|idle-session CONNINFO [options] "
               "(see the source)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  const std::string conninfo = argv[2];
  const double timeout_s = std::atof(option(argc, argv, "--timeout", "120").c_str());
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));

  if (mode == "first-row") {
    auto clients = start_clients(conninfo, 1);
    run_clients(clients, t0, deadline, false);
    if (clients[0].phase != Client::kDone) {
      std::printf("ok=0 error=\"%s\"\n", one_line(clients[0].error).c_str());
      return 1;
    }
    std::printf("ok=1 ms=%.1f\n", clients[0].first_row_ms);
    return 0;
  }
  if (mode == "start-to-first-row") {
    const std::string command = option(argc, argv, "--start", "");
    const int poll_ms = std::atoi(option(argc, argv, "--poll-ms", "5").c_str());
    if (command.empty()) return usage();
    if (has_flag(argc, argv, "--warm")) {  // as `connect` does unless --cold
      stub_handshake();
      stub_handshake();
    }
    const auto launched = Clock::now();
    const auto until = launched + (deadline - t0);
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::string last;
    if (has_flag(argc, argv, "--wait")) {
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::printf("ok=0 error=\"the start command failed (status %d)\"\n", status);
        return 1;
      }
    }
    while (Clock::now() < until) {
      auto clients = start_clients(conninfo, 1);
      run_clients(clients, launched, std::min(until, Clock::now() + std::chrono::seconds(2)), false);
      if (clients[0].phase == Client::kDone) {
        const double ms = clients[0].first_row_ms;
        int status = 0;
        if (!has_flag(argc, argv, "--wait")) waitpid(pid, &status, 0);
        std::printf("ok=1 ms=%.1f\n", ms);
        return 0;
      }
      last = clients[0].error;
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
    }
    std::printf("ok=0 error=\"%s\"\n", one_line(last).c_str());
    return 1;
  }
  if (mode == "burst" || mode == "hold") {
    const int n = std::atoi(option(argc, argv, "--clients", "500").c_str());
    auto clients = start_clients(conninfo, n);
    run_clients(clients, t0, deadline, mode == "hold");
    std::vector<double> times;
    std::string first_error;
    for (const Client& c : clients) {
      if (c.phase == Client::kDone) times.push_back(c.first_row_ms);
      else if (first_error.empty()) first_error = c.error;
    }
    std::printf("ok=%zu failed=%zu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f error=\"%s\"\n", times.size(),
                clients.size() - times.size(), percentile(times, 0.50), percentile(times, 0.99),
                times.empty() ? 0.0 : *std::max_element(times.begin(), times.end()), one_line(first_error).c_str());
    std::fflush(stdout);
    if (mode == "hold") {
      const double seconds = std::atof(option(argc, argv, "--seconds", "10").c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long long>(seconds * 1000)));
      for (Client& c : clients) {
        if (c.conn) PQfinish(c.conn);
      }
    }
    return times.size() == clients.size() ? 0 : 1;
  }
  if (mode == "connect") {
    // Twice: the first pays the one-time costs, the second measures the client's own.
    const double stub_ms = has_flag(argc, argv, "--cold") ? 0 : (stub_handshake(), stub_handshake());
    std::string error;
    PGconn* keeper = nullptr;
    if (has_flag(argc, argv, "--keep-awake")) {
      const double ms = timed_connect(conninfo, deadline, keeper, error);
      if (ms < 0 || timed_select(keeper, Clock::now(), deadline, error) < 0 ||
          !PQsendQuery(keeper, "select pg_sleep(3600)")) {
        if (error.empty()) error = PQerrorMessage(keeper);
        std::printf("ok=0 error=\"keeping the instance awake: %s\"\n", one_line(error).c_str());
        PQfinish(keeper);
        return 1;
      }
    }
    PGconn* conn = nullptr;
    const auto t0 = Clock::now();
    const double rfq_ms = timed_connect(conninfo, deadline, conn, error);
    double row_ms = 0;
    if (rfq_ms >= 0 && has_flag(argc, argv, "--query")) row_ms = timed_select(conn, t0, deadline, error);
    PQfinish(conn);
    if (keeper != nullptr) {
      char buf[256];
      PGcancel* cancel = PQgetCancel(keeper);
      if (cancel != nullptr) {
        PQcancel(cancel, buf, sizeof buf);
        PQfreeCancel(cancel);
      }
      while (PGresult* r = PQgetResult(keeper)) PQclear(r);
      PQfinish(keeper);
    }
    if (rfq_ms < 0 || row_ms < 0) {
      std::printf("ok=0 error=\"%s\"\n", one_line(error).c_str());
      return 1;
    }
    std::printf("ok=1 rfq_ms=%.2f first_row_ms=%.2f stub_ms=%.2f\n", rfq_ms, row_ms, stub_ms);
    return 0;
  }
  if (mode == "idle-session") {
    std::string error;
    PGconn* conn = nullptr;
    const double rfq_ms = timed_connect(conninfo, deadline, conn, error);
    if (rfq_ms < 0) {
      std::printf("ok=0 error=\"%s\"\n", one_line(error).c_str());
      PQfinish(conn);
      return 1;
    }
    std::printf("connected rfq_ms=%.2f\n", rfq_ms);
    std::fflush(stdout);
    // Idle: no query, no traffic from us. Anything the server sends meanwhile (a FATAL that
    // closes an idle session, a notice) is consumed and noted.
    bool alive = true;
    int server_reads = 0;  // times the server sent something (or closed)
    for (;;) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {PQsocket(conn), POLLIN, 0}};
      if (::poll(fds, alive ? 2 : 1, -1) < 0) continue;
      if (fds[0].revents != 0) {
        char buf[64];
        if (::read(STDIN_FILENO, buf, sizeof buf) <= 0) break;
      }
      if (alive && fds[1].revents != 0) {
        ++server_reads;
        if (!PQconsumeInput(conn) || PQstatus(conn) == CONNECTION_BAD) {
          alive = false;
          error = PQerrorMessage(conn);
        }
      }
    }
    const auto t1 = Clock::now();
    const double row_ms = alive ? timed_select(conn, t1, t1 + std::chrono::seconds(120), error) : -1;
    PQfinish(conn);
    std::printf("ok=%d alive=%d server_reads=%d rfq_ms=%.2f first_row_ms=%.2f error=\"%s\"\n", row_ms >= 0 ? 1 : 0,
                alive ? 1 : 0, server_reads, rfq_ms, row_ms, one_line(error).c_str());
    return row_ms >= 0 ? 0 : 1;
  }
  return usage();
}
