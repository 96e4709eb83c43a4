// Faults pgnap must survive: PostgreSQL killed in the middle of a query, pgnap itself killed
// (while waking, while awake with sessions, while asleep) and restarted on the same ledger,
// clients that give up while they wait for a wake, and a flood of connections far beyond
// max_clients. Each time: clients get an answer, pgnap holds no socket or memory it should
// have given back, and the ledger never counts a second twice.
#include "tests/integration/harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "accounting/ledger.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

double now_unix() { return accounting::unix_now(); }

// One sample of pgnap's /metrics ("name{labels}" exactly as exposed); -1 if absent, -2 if
// the scrape failed.
double sample(const Gateway& gateway, const std::string& series) {
  return scrape_metric(gateway.metrics_port(), series);
}

std::string state_series(const std::string& state) {
  return "pgnap_instance_state{db_instance=\"main\",state=\"" + state + "\"}";
}

// VmRSS of `pid` in kB (0 if unreadable).
long rss_kb(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

// Kills the postmaster with SIGKILL and waits until it and its children are gone, reaped and
// all (until then PostgreSQL refuses to start again: see failures_test.cpp).
::testing::AssertionResult kill9_postmaster(const Cluster& cluster) {
  const pid_t postmaster = cluster.postmaster_pid();
  if (postmaster <= 0) return ::testing::AssertionFailure() << "no postmaster";
  auto processes = child_processes(postmaster);
  processes.push_back(postmaster);
  if (::kill(postmaster, SIGKILL) != 0) return ::testing::AssertionFailure() << "kill failed";
  const bool gone = wait_until(
      [&] { return std::all_of(processes.begin(), processes.end(), [](pid_t pid) { return process_gone(pid); }); },
      15s);
  if (!gone) return ::testing::AssertionFailure() << "the killed postmaster or its children were not reaped";
  return ::testing::AssertionSuccess();
}

struct Outcome {
  bool finished = false;  // a result (or an error) arrived before the deadline
  bool ok = false;
  std::string error;
  Millis elapsed{0};
};

// Waits for the result of a query sent with PQsendQuery, with a deadline of our own.
Outcome await_result(PGconn* conn, Millis timeout) {
  Outcome out;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  bool failed = false;
  for (;;) {
    if (PQconsumeInput(conn) == 0) failed = true;
    if (failed || PQisBusy(conn) == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) return out;
    pollfd p{PQsocket(conn), POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  out.finished = true;
  out.ok = !failed;
  while (PGresult* res = PQgetResult(conn)) {
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) out.ok = false;
    PQclear(res);
  }
  if (!out.ok) out.error = PQerrorMessage(conn);
  out.elapsed = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
  return out;
}

// ---- PostgreSQL killed in the middle of a query -------------------------------------------

// failures_test.cpp kills an idle cluster and lets the next client find out. Here a query is
// running: its client learns at once (not when pg_sleep would have ended), and pgnap marks
// the instance down then and there (log, metrics, ledger), so that the next client wakes it.
TEST(FaultsTest, ClusterKilledMidQueryFailsTheQueryAtOnceIsMarkedDownAndIsWokenAgain) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.metrics_listen = "127.0.0.1:0";
  options.gateway_extra = "ledger_heartbeat = \"1s\"\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto conn = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_EQ(query(conn.get(), "select 1").value, "1");
  ASSERT_EQ(sample(gateway, state_series("awake")), 1);
  ASSERT_EQ(PQsendQuery(conn.get(), "select pg_sleep(30)"), 1);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto r = psql(cluster.conninfo_direct(),
                            "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and "
                            "state = 'active'",
                            10s);
        return r.out == "1\n";
      },
      20s, 100ms))
      << "the query never started";

  ASSERT_TRUE(kill9_postmaster(cluster));
  const auto result = await_result(conn.get(), 25s);
  ASSERT_TRUE(result.finished) << "the query was still running 25 s after the kill";
  EXPECT_FALSE(result.ok) << "the query of a killed server succeeded";
  // pg_sleep(30) would have ended 30 s after it began: an answer within 10 s is the kill's.
  EXPECT_LT(result.elapsed, 10s) << result.error;

  // Marked down without waiting for another client: log, metrics and ledger.
  EXPECT_TRUE(gateway.wait_for_log("stopped without pgnap", 10s)) << gateway.log();
  EXPECT_EQ(count_lines_with_all(gateway.log(), {"stopped without pgnap", "instance=main"}), 1u) << gateway.log();
  EXPECT_EQ(sample(gateway, state_series("awake")), 0);
  EXPECT_EQ(sample(gateway, state_series("asleep")), 1);
  EXPECT_EQ(sample(gateway, "pgnap_instance_unexpected_stops_total{db_instance=\"main\"}"), 1);
  bool recorded = false;
  wait_until(
      [&] {
        for (const auto& t : accounting::read_ledger(gateway.ledger_path(), 0, 1e12, "main").transitions) {
          if (t.from == "awake" && t.to == "asleep" && t.reason.find("stopped without pgnap") != std::string::npos) {
            recorded = true;
          }
        }
        return recorded;
      },
      5s, 100ms);
  EXPECT_TRUE(recorded) << "the ledger has no awake -> asleep transition for the unexpected stop";

  // The next client wakes it again.
  const auto next = psql(gateway.conninfo(), "select 'woken again'");
  ASSERT_EQ(next.exit_code, 0) << next.describe();
  EXPECT_EQ(next.out, "woken again\n");
  EXPECT_EQ(cluster.ready_count(), 2);
  EXPECT_EQ(sample(gateway, state_series("awake")), 1);
}

// The same for a server an operator stops behind pgnap's back (pg_ctl stop -m fast) while a
// session is open: PostgreSQL ends the session with a FATAL 57P01, and pgnap follows the
// server through its shutdown (it answers 57P03 meanwhile) until nothing answers, then marks
// it down.
TEST(FaultsTest, ClusterStoppedByAnOperatorWithASessionOpenIsMarkedDownAndIsWokenAgain) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1m";
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  auto conn = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(conn.get(), "begin").ok);
  cluster.stop("fast");
  EXPECT_FALSE(query(conn.get(), "select 1").ok) << "the session outlived its server";

  EXPECT_TRUE(gateway.wait_for_log("stopped without pgnap", 10s)) << gateway.log();
  EXPECT_EQ(sample(gateway, state_series("asleep")), 1);
  EXPECT_EQ(sample(gateway, "pgnap_instance_unexpected_stops_total{db_instance=\"main\"}"), 1);

  const auto next = psql(gateway.conninfo(), "select 'woken again'");
  ASSERT_EQ(next.exit_code, 0) << next.describe();
  EXPECT_EQ(cluster.ready_count(), 2);
}

// ---- pgnap killed, and restarted on the same ledger ---------------------------------------

// pgnap is killed with SIGKILL three times: while a wake is in progress, while awake with a
// session open, and while asleep. Each restart adopts what is really there (a start the dead
// pgnap left running finishes on its own; a server is never stopped for being found), and
// the ledger holds one history without overlaps, nothing counted while no pgnap ran, and no
// more time than passed.
TEST(FaultsTest, Kill9WhileWakingAwakeAndAsleepRestartsAdoptRealityAndTheLedgerNeverOverlaps) {
  Cluster cluster;
  WrapperBinDir wrapper;
  TempDir keep(false);
  auto options = GatewayOptions::for_cluster(cluster);
  options.bin_dir = wrapper.path();
  options.ledger = keep.path() + "/ledger.db";
  options.idle_timeout = "1s";
  options.gateway_extra = "ledger_heartbeat = \"1s\"\n";
  struct Gap {
    double killed;
    double restarted;
  };
  std::vector<Gap> gaps;
  const double began = now_unix();

  // (a) While waking: the start command sleeps 3 s before the real pg_ctl start.
  wrapper.set_start_delay(3.0);
  {
    Gateway first(options, &cluster);
    ASSERT_TRUE(first.wait_for_log("adopted asleep", 10s)) << first.log();
    std::thread client([&] { (void)connect(first.conninfo(), 30s); });
    const bool waking = first.wait_for_log("waking (", 10s) &&
                        wait_until([&] { return wrapper.invocations("start") == 1; }, 10s);
    std::this_thread::sleep_for(1200ms);  // at least one heartbeat inside the wake
    gaps.push_back({now_unix(), 0});
    first.kill9();
    client.join();  // its connection died with pgnap
    ASSERT_TRUE(waking) << first.log();
  }
  // The start the dead pgnap began goes on without it: reality is "running" once it is done.
  ASSERT_TRUE(wait_until([&] { return cluster.ready_count() == 1; }, 30s)) << wrapper.invocation_log();
  wrapper.set_start_delay(0.0);

  // (b) Awake, with a session open in a transaction.
  gaps.back().restarted = now_unix();
  {
    Gateway second(options, &cluster);
    ASSERT_TRUE(second.wait_for_log("adopted", 10s)) << second.log();
    EXPECT_EQ(second.count_in_log("adopted awake"), 1u) << second.log();
    EXPECT_THAT(second.log(), HasSubstr("closed at their last heartbeat"));
    auto session = connect_or_throw(second.conninfo(), 30s);
    ASSERT_TRUE(query(session.get(), "begin").ok);
    ASSERT_EQ(query(session.get(), "select 'in a transaction'").value, "in a transaction");
    std::this_thread::sleep_for(1200ms);
    gaps.push_back({now_unix(), 0});
    second.kill9();
    EXPECT_FALSE(query(session.get(), "select 1").ok) << "the session outlived pgnap";
  }
  EXPECT_TRUE(cluster.is_running()) << "killing pgnap stopped the server";

  // (c) Adopted awake again, suspended after idle_timeout, then killed while asleep.
  gaps.back().restarted = now_unix();
  {
    Gateway third(options, &cluster);
    ASSERT_TRUE(third.wait_for_log("adopted", 10s)) << third.log();
    EXPECT_EQ(third.count_in_log("adopted awake"), 1u) << third.log();
    ASSERT_TRUE(third.wait_for_log("asleep (was awake", 30s)) << third.log();
    EXPECT_FALSE(cluster.is_running());
    std::this_thread::sleep_for(1500ms);
    gaps.push_back({now_unix(), 0});
    third.kill9();
  }

  // And a last run that adopts it asleep and stops cleanly.
  std::this_thread::sleep_for(500ms);
  gaps.back().restarted = now_unix();
  double stopped = 0;
  {
    Gateway fourth(options, &cluster);
    ASSERT_TRUE(fourth.wait_for_log("adopted", 10s)) << fourth.log();
    EXPECT_EQ(fourth.count_in_log("adopted asleep"), 1u) << fourth.log();
    std::this_thread::sleep_for(1s);
    ASSERT_EQ(fourth.terminate(), 0);
    stopped = now_unix();
  }
  EXPECT_EQ(cluster.ready_count(), 1) << "a restart started the server again";

  const auto data = accounting::read_ledger(options.ledger, 0, 1e12, "main");
  const auto& intervals = data.intervals;
  ASSERT_FALSE(intervals.empty());
  std::vector<std::string> states;
  double counted = 0;
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    const auto& iv = intervals[i];
    SCOPED_TRACE("interval " + std::to_string(i) + " (" + iv.state + ", " + iv.start_reason + " .. " + iv.end_reason +
                 ")");
    states.push_back(iv.state);
    EXPECT_FALSE(iv.open);
    EXPECT_LE(iv.start, iv.end);
    EXPECT_GE(iv.start, began - 0.05);
    EXPECT_LE(iv.end, stopped + 0.05);
    if (i > 0) {
      EXPECT_GE(iv.start, intervals[i - 1].end) << "overlaps the interval before it";
    }
    // Nothing is counted while no pgnap ran (a kill, until the next one started).
    for (const auto& gap : gaps) {
      const double overlap = std::min(iv.end, gap.restarted) - std::max(iv.start, gap.killed);
      EXPECT_LE(overlap, 0.05) << "counts " << overlap << " s of a time no pgnap ran";
    }
    counted += iv.end - iv.start;
  }
  EXPECT_LE(counted, stopped - began) << "more time counted than passed";
  // What each run saw: asleep then waking (killed); awake (killed); awake, suspending, asleep
  // (killed); asleep (stopped).
  EXPECT_EQ(states, (std::vector<std::string>{"asleep", "waking", "awake", "awake", "suspending", "asleep", "asleep"}));
}

// ---- Clients that give up while queued for a wake ------------------------------------------

// While a start hangs (released by the test), clients queue and then give up: raw sockets
// closed, psql with connect_timeout, libpq with a deadline of its own. Each leaves the
// queue as it goes (pgnap_waiting_clients follows), pgnap holds none of their sockets, and
// the wake nobody waits for any more still completes.
TEST(FaultsTest, ClientsGivingUpWhileQueuedLeaveNothingBehindAndTheWakeStillCompletes) {
  Cluster cluster;
  WrapperBinDir wrapper;
  wrapper.set_start_delay(std::nullopt);  // until the test kills the wrapper's sleep
  auto options = GatewayOptions::for_cluster(cluster);
  options.bin_dir = wrapper.path();
  options.idle_timeout = "1m";
  options.wake_timeout = "60s";
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  const std::size_t baseline = open_sockets(gateway.pid()).size();
  const std::string waiting = "pgnap_waiting_clients{db_instance=\"main\"}";

  constexpr int kRaw = 10;
  std::vector<RawClient> raw;
  for (int i = 0; i < kRaw; ++i) {
    raw.push_back(RawClient::tcp(gateway.port()));
    ASSERT_TRUE(raw.back().send(startup_packet({{"user", "postgres"}, {"database", "postgres"}})));
  }
  ASSERT_TRUE(wait_until([&] { return sample(gateway, waiting) == kRaw; }, 10s)) << sample(gateway, waiting);

  // Ten more that give up by themselves: psql after connect_timeout, libpq at our deadline.
  constexpr int kImpatient = 10;
  std::mutex mutex;
  std::vector<std::string> served_anyway;
  std::atomic<int> peak{0};
  std::thread watch([&] {
    for (int i = 0; i < 40; ++i) {
      peak = std::max(peak.load(), static_cast<int>(sample(gateway, waiting)));
      std::this_thread::sleep_for(50ms);
    }
  });
  run_in_parallel(kImpatient, [&](int i) {
    std::string outcome;
    if (i % 2 == 0) {
      const auto r = psql(gateway.conninfo() + " connect_timeout=2", "select 1", 30s);
      if (r.exit_code == 0) outcome = "psql: " + r.describe();
    } else {
      const auto c = connect(gateway.conninfo(), 1500ms);
      if (c.ok()) outcome = "libpq: connected";
    }
    if (!outcome.empty()) {
      std::lock_guard lock(mutex);
      served_anyway.push_back(outcome);
    }
  });
  watch.join();
  EXPECT_TRUE(served_anyway.empty()) << ::testing::PrintToString(served_anyway);
  EXPECT_GT(peak.load(), kRaw) << "the impatient clients never showed up in the queue";
  EXPECT_TRUE(wait_until([&] { return sample(gateway, waiting) == kRaw; }, 10s))
      << "the impatient clients did not leave the queue: " << sample(gateway, waiting);

  raw.clear();  // the raw clients hang up
  EXPECT_TRUE(wait_until([&] { return sample(gateway, waiting) == 0; }, 10s))
      << "clients that hung up are still counted as waiting: " << sample(gateway, waiting);
  std::size_t sockets = 0;
  EXPECT_TRUE(wait_until([&] { return (sockets = open_sockets(gateway.pid()).size()) == baseline; }, 10s))
      << "pgnap holds " << sockets << " sockets, " << baseline << " before";
  EXPECT_EQ(sample(gateway, state_series("waking")), 1) << "the wake did not survive its waiters leaving";

  // Release the start: the wake nobody waits for any more completes.
  ASSERT_EQ(wrapper.sleep_pids().size(), 1u) << wrapper.invocation_log();
  ASSERT_EQ(::kill(wrapper.sleep_pids()[0], SIGKILL), 0);
  EXPECT_TRUE(gateway.wait_for_log("ready after", 30s)) << gateway.log();
  EXPECT_TRUE(gateway.wait_for_log("0 client(s) waited", 1s)) << gateway.log();
  EXPECT_EQ(sample(gateway, state_series("awake")), 1);
  EXPECT_TRUE(cluster.is_running());
  EXPECT_EQ(sample(gateway, waiting), 0);
  EXPECT_EQ(wrapper.invocations("start"), 1) << "one wake for everyone";

  const auto r = psql(gateway.conninfo(), "select 'served after'");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "served after\n");
  EXPECT_TRUE(wait_until([&] { return (sockets = open_sockets(gateway.pid()).size()) == baseline; }, 10s))
      << "pgnap holds " << sockets << " sockets, " << baseline << " before";
}

// ---- A flood far beyond max_clients --------------------------------------------------------

// Reads the reply to a startup: complete at ReadyForQuery or an ErrorResponse.
bool startup_answered(std::string_view bytes) {
  for (const auto& m : split_backend_messages(bytes)) {
    if (m.type == 'Z' || m.type == 'E') return true;
  }
  return false;
}

// The soft "Max open files" of `pid`, from /proc/PID/limits (0 if unreadable).
rlim_t soft_descriptor_limit(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/limits"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream words(line.substr(14));
      std::string soft;
      words >> soft;
      return soft == "unlimited" ? RLIM_INFINITY : static_cast<rlim_t>(std::stoull(soft));
    }
  }
  return 0;
}

struct FloodResult {
  std::size_t served = 0;  // got ReadyForQuery after their startup
  int working = 0;         // of those, answered a query
  int refused = 0;         // FATAL 53300 "too many connections"
  std::vector<std::string> other;
  long peak_rss = 0;  // pgnap's VmRSS, sampled while it held the connections
  Millis took{0};
};

// Opens `n` connections to pgnap at once (all connected before the first startup is sent),
// sends each a startup, sorts the answers, runs a query on every session let in, then closes
// them all.
FloodResult flood(const Gateway& gateway, int n) {
  FloodResult r;
  const auto started = std::chrono::steady_clock::now();
  std::vector<RawClient> clients;
  clients.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) clients.push_back(RawClient::tcp(gateway.port(), 10s));
  const std::string startup = startup_packet({{"user", "postgres"}, {"database", "postgres"}});
  for (auto& c : clients) c.send(startup);

  std::vector<std::size_t> served;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    const auto reply = clients[i].read_until(startup_answered, std::max(left, Millis(100)));
    const auto messages = split_backend_messages(reply.bytes);
    if (const auto e = first_error(reply.bytes)) {
      if (e->severity == "FATAL" && e->sqlstate == "53300" && e->message == "too many connections") {
        ++r.refused;
      } else if (r.other.size() < 10) {
        r.other.push_back("#" + std::to_string(i) + ": " + e->severity + " " + e->sqlstate + " " + e->message);
      }
    } else if (!messages.empty() && messages.back().type == 'Z') {
      served.push_back(i);
    } else if (r.other.size() < 10) {
      r.other.push_back("#" + std::to_string(i) + ": " + std::to_string(reply.bytes.size()) + " bytes" +
                        (reply.closed ? ", closed" : ", no answer"));
    }
    if (i % 250 == 0) r.peak_rss = std::max(r.peak_rss, rss_kb(gateway.pid()));
  }
  r.served = served.size();

  // Every session that was let in works.
  const std::string select = "select 7";
  const std::string query_message = "Q" + be32(static_cast<std::uint32_t>(4 + select.size() + 1)) + select + '\0';
  for (std::size_t i : served) clients[i].send(query_message);
  for (std::size_t i : served) {
    const auto reply = clients[i].read_until(startup_answered, 30s);
    bool row = false;
    for (const auto& m : split_backend_messages(reply.bytes)) {
      row = row || (m.type == 'D' && m.body.find('7') != std::string::npos);
    }
    if (row && !first_error(reply.bytes)) ++r.working;
  }
  r.peak_rss = std::max(r.peak_rss, rss_kb(gateway.pid()));
  r.took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
  return r;  // the clients close here
}

// Under AddressSanitizer (make test-sanitize) memory pgnap frees waits in ASan's quarantine
// (256 MB) and ASan's allocator keeps its pages: pgnap's RSS then says nothing about pgnap, and
// the RSS bounds below are not checked. LeakSanitizer checks instead, at pgnap's exit (the
// harness ends it with SIGTERM), that the floods left nothing allocated.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsPgnaps = false;
#else
constexpr bool kRssIsPgnaps = true;
#endif

// 2000 connections opened at once against max_clients = 500: exactly 500 get a working
// session, the 1500 others FATAL 53300. Once all are closed pgnap is back to its idle
// sockets and (about) its idle memory, and a second flood costs nothing more.
TEST(FaultsTest, TwoThousandConnectionsAtOnceAgainstMaxClients500) {
  constexpr int kClients = 2000;
  constexpr int kMaxClients = 500;
  // The test holds 2000 sockets, pgnap (which inherits the limit) up to 2000 + 500.
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur < 8192 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 8192);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  ASSERT_GE(limit.rlim_cur, static_cast<rlim_t>(kClients + kMaxClients + 100))
      << "RLIMIT_NOFILE's hard limit is too low for this test";

  Cluster cluster;
  cluster.append_conf("max_connections = 520\n");
  auto options = GatewayOptions::for_cluster(cluster);
  options.gateway_extra = "max_clients = " + std::to_string(kMaxClients) + "\n";
  options.metrics_listen = "127.0.0.1:0";
  options.idle_timeout = "1m";
  options.login_timeout = "20s";
  options.max_waiting = 1000;
  // pgnap starts with the soft limit most shells and containers give (1024, too few for 500
  // sessions of two sockets each): it has to raise it to the hard limit itself.
  options.command_prefix = {"sh", "-c", "ulimit -S -n 1024 && exec \"$@\"", "pgnap-with-1024-descriptors"};
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  EXPECT_EQ(soft_descriptor_limit(gateway.pid()), limit.rlim_max) << "pgnap did not raise its soft RLIMIT_NOFILE";
  const std::size_t baseline = open_sockets(gateway.pid()).size();
  ASSERT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0);  // awake: the flood waits for no wake
  ASSERT_TRUE(wait_until([&] { return open_sockets(gateway.pid()).size() == baseline; }, 10s));
  const long idle_rss = rss_kb(gateway.pid());
  ASSERT_GT(idle_rss, 0);
  std::size_t sockets = 0;
  auto back_to_rest = [&] {
    return wait_until([&] { return (sockets = open_sockets(gateway.pid()).size()) == baseline; }, 30s);
  };

  const auto first = flood(gateway, kClients);
  EXPECT_EQ(first.served, static_cast<std::size_t>(kMaxClients));
  EXPECT_EQ(first.working, kMaxClients) << "a session let in did not answer its query";
  EXPECT_EQ(first.refused, kClients - kMaxClients);
  EXPECT_TRUE(first.other.empty()) << ::testing::PrintToString(first.other);
  EXPECT_EQ(sample(gateway, "pgnap_limit_hits_total{limit=\"max_clients\"}"), kClients - kMaxClients);
  EXPECT_TRUE(back_to_rest()) << "pgnap holds " << sockets << " sockets, " << baseline << " at rest";

  // The memory has to be given back, not to the byte: what stays is Asio's pool of
  // per-descriptor state (one entry, 168 bytes, for each of the 2500 sockets that were open
  // at once; reused, never freed) and the heap pages those entries pin, about 4 MB. 6 MB
  // leaves room for that while staying below the ~8 MB the flood costs at its peak: a pgnap
  // that keeps its high-water mark (freed memory never returned) fails here.
  // (Polled: pgnap gives its memory back just after it has closed the last socket.)
  constexpr long kMarginKb = 6 * 1024;
  long after_rss = 0;
  EXPECT_TRUE(!kRssIsPgnaps ||
              wait_until([&] { return (after_rss = rss_kb(gateway.pid())) <= idle_rss + kMarginKb; }, 5s))
      << "idle " << idle_rss << " kB, peak " << first.peak_rss << " kB, after " << after_rss << " kB";

  // A second flood reuses what the first left: a leak of 500 bytes per connection would add 1 MB.
  const auto second = flood(gateway, kClients);
  EXPECT_EQ(second.served, static_cast<std::size_t>(kMaxClients));
  EXPECT_EQ(second.working, kMaxClients);
  EXPECT_EQ(second.refused, kClients - kMaxClients);
  EXPECT_TRUE(second.other.empty()) << ::testing::PrintToString(second.other);
  EXPECT_TRUE(back_to_rest()) << "pgnap holds " << sockets << " sockets, " << baseline << " at rest";
  long after_second = 0;
  EXPECT_TRUE(!kRssIsPgnaps ||
              wait_until([&] { return (after_second = rss_kb(gateway.pid())) <= after_rss + 1024; }, 5s))
      << "the second flood left " << after_second - after_rss << " kB more";
  std::cout << "pgnap RSS: idle " << idle_rss << " kB; first flood (" << first.took.count() << " ms): peak "
            << first.peak_rss << " kB, after " << after_rss << " kB; second flood (" << second.took.count()
            << " ms): peak " << second.peak_rss << " kB, after " << after_second << " kB\n";

  EXPECT_EQ(psql(gateway.conninfo(), "select 1").exit_code, 0) << "the gateway stopped serving";
}

}  // namespace
}  // namespace pgnap::it
