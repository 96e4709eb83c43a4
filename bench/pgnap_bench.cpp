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
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
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

int usage() {
  std::fprintf(stderr,
               "usage: pgnap-bench first-row|start-to-first-row|burst|hold CONNINFO [options] (see the source)\n");
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
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::string last;
    while (Clock::now() < deadline) {
      auto clients = start_clients(conninfo, 1);
      run_clients(clients, t0, std::min(deadline, Clock::now() + std::chrono::seconds(2)), false);
      if (clients[0].phase == Client::kDone) {
        const double ms = clients[0].first_row_ms;
        int status = 0;
        waitpid(pid, &status, 0);
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
  return usage();
}
