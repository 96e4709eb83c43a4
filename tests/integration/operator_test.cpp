// The operator's surface end to end (docs/control.md, issue 16), in the transparent mode: what
// `pgnap status` says about each session and about a wake in progress, `pgnap wake --for`
// holding an instance past its idle_timeout, `pgnap sleep` refused while a session is in use
// and accepted once it is not, and a keep-warm window in a zone other than UTC waking the
// instance at its start. The ledger's report counts each wake under its cause.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

CommandResult pgnap(std::vector<std::string> args, Millis timeout = 60s) {
  args.insert(args.begin(), pgnap_binary());
  return run_command(args, timeout);
}

json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

// `pgnap status --format json`: the whole reply ({} when it failed).
json::object status_reply(const Gateway& gateway) {
  const auto r = pgnap({"status", "-c", gateway.config_path(), "--format", "json"}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  return parse_object(r.out);
}

// The status of instance "main" ({} when the reply has none).
json::object main_status(const Gateway& gateway) {
  const auto reply = status_reply(gateway);
  const auto* instances = reply.if_contains("instances");
  if (instances == nullptr || !instances->is_array()) return {};
  for (const auto& v : instances->as_array()) {
    if (v.is_object() && v.as_object().if_contains("name") && v.as_object().at("name") == "main") return v.as_object();
  }
  return {};
}

std::string text(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::optional<json::object> session_named(const json::object& instance, const std::string& application_name) {
  const auto* sessions = instance.if_contains("sessions");
  if (sessions == nullptr || !sessions->is_array()) return std::nullopt;
  for (const auto& v : sessions->as_array()) {
    if (v.is_object() && text(v.as_object(), "application_name") == application_name) return v.as_object();
  }
  return std::nullopt;
}

bool plans(const json::object& instance, const std::string& what) {
  const auto* next = instance.if_contains("next");
  if (next == nullptr || !next->is_array()) return false;
  for (const auto& v : next->as_array()) {
    if (v.is_object() && text(v.as_object(), "what") == what) return true;
  }
  return false;
}

// "127.0.0.1:PORT": the client side of a libpq connection, as pgnap sees it.
std::string client_address(PGconn* conn) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(PQsocket(conn), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(addr.sin_port));
}

// `pgnap report --format json`: instance "main"'s wake_causes ({} when missing).
json::object wake_causes(const Gateway& gateway) {
  const auto r = pgnap({"report", "-c", gateway.config_path(), "--format", "json"}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const auto report = parse_object(r.out);
  const auto* instances = report.if_contains("instances");
  if (instances == nullptr || !instances->is_array()) return {};
  for (const auto& v : instances->as_array()) {
    if (!v.is_object() || text(v.as_object(), "name") != "main") continue;
    const auto* causes = v.as_object().if_contains("wake_causes");
    if (causes != nullptr && causes->is_object()) return causes->as_object();
  }
  ADD_FAILURE() << "no wake_causes for main in " << r.out;
  return {};
}

std::int64_t count_of(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return -1;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return -1;
}

// The instance suspended: its cluster stopped, and pgnap has seen the stop finish (the
// postmaster is gone a moment before the stop command returns and the state is "asleep").
::testing::AssertionResult sleeps(const Cluster& cluster, const Gateway& gateway, Millis timeout = 30s) {
  // pgnap is asked only once the postmaster is gone.
  if (wait_until([&] { return !cluster.is_running() && text(main_status(gateway), "state") == "asleep"; }, timeout,
                 200ms)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "the instance did not suspend\n" << gateway.log();
}

// Waits (with a deadline of our own) for the result of a query sent with PQsendQuery.
PgResultPtr wait_result(PGconn* conn, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (PQconsumeInput(conn) == 0) break;
    if (PQisBusy(conn) == 0) return PgResultPtr(PQgetResult(conn));
    std::this_thread::sleep_for(20ms);
  }
  return nullptr;
}

TEST(OperatorTest, StatusNamesEachSessionItsStateAndWhetherItKeepsTheInstanceAwake) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "10m";
  options.instance_extra = "idle_session_timeout = \"2s\"\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 15s)) << gateway.log();

  // A wakes the instance, then runs a long query; B stays in a transaction; C idles.
  auto a = connect_or_throw(gateway.conninfo() + " application_name=a", 60s);
  const std::string a_address = client_address(a.get());
  ASSERT_TRUE(query(a.get(), "select 1").ok);
  auto b = connect_or_throw(gateway.conninfo() + " application_name=b", 60s);
  auto c = connect_or_throw(gateway.conninfo() + " application_name=c", 60s);
  ASSERT_EQ(PQsendQuery(a.get(), "select pg_sleep(30)"), 1);
  ASSERT_TRUE(query(b.get(), "begin").ok);
  ASSERT_TRUE(query(b.get(), "select 1").ok);
  ASSERT_TRUE(query(c.get(), "select 1").ok);
  std::this_thread::sleep_for(3s);  // past idle_session_timeout for C

  const auto main = main_status(gateway);
  ASSERT_FALSE(main.empty()) << "no status for main";
  EXPECT_EQ(text(main, "state"), "awake") << json::serialize(main);
  EXPECT_EQ(text(main, "mode"), "passthrough");
  ASSERT_TRUE(main.contains("sessions") && main.at("sessions").is_array()) << json::serialize(main);
  EXPECT_EQ(main.at("sessions").as_array().size(), 3u) << json::serialize(main);
  struct Expected {
    const char* app;
    PGconn* conn;
    const char* state;
    bool keeps_awake;
  };
  for (const Expected& e : {Expected{"a", a.get(), "active", true}, Expected{"b", b.get(), "idle in transaction", true},
                            Expected{"c", c.get(), "idle", false}}) {
    SCOPED_TRACE(e.app);
    const auto s = session_named(main, e.app);
    ASSERT_TRUE(s.has_value()) << json::serialize(main);
    EXPECT_EQ(text(*s, "user"), "postgres") << json::serialize(*s);
    EXPECT_EQ(text(*s, "database"), "postgres") << json::serialize(*s);
    EXPECT_EQ(text(*s, "client_address"), client_address(e.conn)) << json::serialize(*s);
    EXPECT_EQ(text(*s, "state"), e.state) << json::serialize(*s);
    ASSERT_TRUE(s->contains("keeps_awake") && s->at("keeps_awake").is_bool()) << json::serialize(*s);
    EXPECT_EQ(s->at("keeps_awake").as_bool(), e.keeps_awake) << json::serialize(*s);
    EXPECT_FALSE(text(*s, "why").empty()) << json::serialize(*s);
    EXPECT_GT(count_of(*s, "id"), 0) << json::serialize(*s);
  }
  // C has been idle for about 3 s; B's last traffic was about as long ago.
  if (const auto s = session_named(main, "c")) {
    EXPECT_GE(count_of(*s, "idle_for_ms"), 2000) << json::serialize(*s);
  }

  // The wake was the first client's.
  ASSERT_TRUE(main.contains("last_wake") && main.at("last_wake").is_object()) << json::serialize(main);
  const auto& wake = main.at("last_wake").as_object();
  EXPECT_EQ(text(wake, "cause"), "client") << json::serialize(wake);
  EXPECT_EQ(text(wake, "outcome"), "ok") << json::serialize(wake);
  ASSERT_TRUE(wake.contains("client") && wake.at("client").is_object()) << json::serialize(wake);
  const auto& client = wake.at("client").as_object();
  EXPECT_EQ(text(client, "user"), "postgres");
  EXPECT_EQ(text(client, "database"), "postgres");
  EXPECT_EQ(text(client, "application_name"), "a") << json::serialize(client);
  EXPECT_EQ(text(client, "address"), a_address) << json::serialize(client);
  EXPECT_EQ(cluster.ready_count(), 1);

  // A's query is cancelled; it answers 57014.
  PGcancel* cancel = PQgetCancel(a.get());
  char err[256];
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  const auto res = wait_result(a.get(), 30s);
  ASSERT_NE(res, nullptr) << "the cancelled query did not answer";
  EXPECT_STREQ(PQresultErrorField(res.get(), PG_DIAG_SQLSTATE), "57014");
  while (PGresult* more = PQgetResult(a.get())) PQclear(more);
}

TEST(OperatorTest, StatusDuringASlowWakeSaysWakingWithTheWaitingClient) {
  Cluster cluster;
  WrapperBinDir wrapper;
  wrapper.set_start_delay(3.0);
  auto options = GatewayOptions::for_cluster(cluster);
  options.bin_dir = wrapper.path();
  options.idle_timeout = "1m";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 15s)) << gateway.log();

  std::optional<ConnectResult> client;
  std::jthread connecting([&] {
    client = connect(gateway.conninfo() + " application_name=waiter", 60s);
    if (client->ok()) {
      EXPECT_EQ(query(client->conn.get(), "select 'served'").value, "served");
    }
  });
  json::object seen;
  const bool waking = wait_until(
      [&] {
        seen = main_status(gateway);
        return text(seen, "state") == "waking" && count_of(seen, "waiting") >= 1;
      },
      20s, 100ms);
  EXPECT_TRUE(waking) << "last status: " << json::serialize(seen) << "\n" << gateway.log();
  if (waking) {
    ASSERT_TRUE(seen.contains("last_wake") && seen.at("last_wake").is_object()) << json::serialize(seen);
    EXPECT_EQ(text(seen.at("last_wake").as_object(), "cause"), "client");
    EXPECT_EQ(text(seen.at("last_wake").as_object(), "outcome"), "running") << json::serialize(seen);
    EXPECT_EQ(text(seen.at("last_wake").as_object().at("client").as_object(), "application_name"), "waiter");
    // The waiting client is one of the instance's sessions, in the state "waiting", at some
    // point of the wake (docs/control.md: sessions[] is every client session).
    bool listed = false;
    json::object last = seen;
    while (text(last, "state") == "waking" && !listed) {
      const auto s = session_named(last, "waiter");
      listed = s.has_value() && text(*s, "state") == "waiting";
      if (!listed) last = main_status(gateway);
    }
    EXPECT_TRUE(listed) << "the waiting client was never listed in sessions[] while waking; last: "
                        << json::serialize(last);
  }
  connecting.join();
  ASSERT_TRUE(client.has_value());
  EXPECT_TRUE(client->ok()) << client->error;
  const auto after = main_status(gateway);
  EXPECT_EQ(text(after, "state"), "awake") << json::serialize(after);
  EXPECT_EQ(count_of(after, "waiting"), 0);
  // connected_for_ms counts from the client's connection, the 3 s of the wake included.
  if (const auto s = session_named(after, "waiter")) {
    EXPECT_GE(count_of(*s, "connected_for_ms"), 2500) << json::serialize(*s);
  } else {
    ADD_FAILURE() << "the served client is not listed: " << json::serialize(after);
  }
  EXPECT_EQ(wrapper.invocations("start"), 1);
}

TEST(OperatorTest, WakeForHoldsTheInstancePastIdleTimeoutThenItSuspends) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "2s";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 15s)) << gateway.log();
  ASSERT_FALSE(cluster.is_running());

  const auto asked = Clock::now();
  const auto r = pgnap({"wake", "main", "--for", "10s", "-c", gateway.config_path()}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.describe() << "\n" << gateway.log();
  EXPECT_THAT(r.out, HasSubstr("is awake; it stays awake"));
  EXPECT_TRUE(cluster.is_running());
  const auto awake = main_status(gateway);
  EXPECT_EQ(text(awake, "state"), "awake") << json::serialize(awake);
  EXPECT_TRUE(plans(awake, "stay awake until")) << json::serialize(awake);
  ASSERT_TRUE(awake.contains("last_wake") && awake.at("last_wake").is_object()) << json::serialize(awake);
  EXPECT_EQ(text(awake.at("last_wake").as_object(), "cause"), "manual");
  EXPECT_THAT(text(awake.at("last_wake").as_object(), "detail"), HasSubstr("uid 0"));

  // 5 s after the ask: past idle_timeout (2 s), within the hold (10 s).
  std::this_thread::sleep_until(asked + 5s);
  EXPECT_TRUE(cluster.is_running()) << "suspended inside the hold\n" << gateway.log();
  EXPECT_EQ(gateway.count_in_log("suspending"), 0u) << gateway.log();
  if (Clock::now() < asked + 8s) {
    const auto held = main_status(gateway);
    EXPECT_EQ(text(held, "state"), "awake") << json::serialize(held);
    EXPECT_TRUE(plans(held, "stay awake until")) << json::serialize(held);
  }
  // The hold ends at 10 s; idle_timeout then puts it to sleep.
  EXPECT_TRUE(sleeps(cluster, gateway, 25s));
  EXPECT_GE(Clock::now() - asked, 9s) << "suspended before the hold ended";
  EXPECT_EQ(text(main_status(gateway), "state"), "asleep");
  EXPECT_EQ(cluster.ready_count(), 1);

  const auto causes = wake_causes(gateway);
  EXPECT_EQ(count_of(causes, "manual"), 1) << json::serialize(causes);
  EXPECT_EQ(count_of(causes, "client"), 0) << json::serialize(causes);
  EXPECT_EQ(count_of(causes, "window"), 0) << json::serialize(causes);
}

TEST(OperatorTest, SleepIsRefusedNamingTheSessionInUseThenAcceptedOnceItIsIdle) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "10m";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 15s)) << gateway.log();

  auto conn = connect_or_throw(gateway.conninfo() + " application_name=blocker-app", 60s);
  ASSERT_TRUE(query(conn.get(), "begin").ok);
  ASSERT_TRUE(query(conn.get(), "select 1").ok);
  ASSERT_TRUE(cluster.is_running());
  const auto before = main_status(gateway);
  const auto session = session_named(before, "blocker-app");
  ASSERT_TRUE(session.has_value()) << json::serialize(before);
  const std::int64_t id = count_of(*session, "id");

  auto refused = pgnap({"sleep", "main", "-c", gateway.config_path()}, 30s);
  EXPECT_EQ(refused.exit_code, 1) << refused.describe();
  EXPECT_THAT(refused.err, HasSubstr("1 session(s) in use")) << refused.describe();
  EXPECT_THAT(refused.err, HasSubstr("sessions in use:")) << refused.describe();
  EXPECT_THAT(refused.err, HasSubstr("blocker-app")) << refused.describe();
  EXPECT_THAT(refused.err, HasSubstr("idle in transaction")) << refused.describe();
  EXPECT_THAT(refused.err, HasSubstr(" " + std::to_string(id) + " ")) << refused.describe();
  EXPECT_TRUE(gateway.wait_for_log("manual sleep refused: 1 session(s) in use", 5s)) << gateway.log();
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(cluster.is_running()) << "refused, yet it suspended\n" << gateway.log();
  // The transaction goes on, unharmed.
  const auto in_tx = query(conn.get(), "select 2");
  EXPECT_TRUE(in_tx.ok) << in_tx.error.message;

  ASSERT_TRUE(query(conn.get(), "commit").ok);
  const auto accepted = pgnap({"sleep", "main", "-c", gateway.config_path()}, 30s);
  EXPECT_EQ(accepted.exit_code, 0) << accepted.describe() << "\n" << gateway.log();
  EXPECT_THAT(accepted.out, HasSubstr("1 closed")) << accepted.describe();
  EXPECT_TRUE(sleeps(cluster, gateway, 30s));
  EXPECT_EQ(text(main_status(gateway), "state"), "asleep");
  // The idle session was closed with the FATAL of idle_timeout (57P01); libpq keeps it in
  // the connection's error message.
  const auto after = query(conn.get(), "select 3");
  EXPECT_FALSE(after.ok);
  EXPECT_THAT(std::string(PQerrorMessage(conn.get())),
              HasSubstr("terminating idle connection so that the database can sleep"));
  EXPECT_EQ(cluster.ready_count(), 1);
}

// UTC seconds → "HH:MM" in Asia/Kolkata (UTC+05:30, no DST).
std::string kolkata_hhmm(std::time_t utc) {
  const std::time_t local = utc + 5 * 3600 + 30 * 60;
  std::tm tm{};
  ::gmtime_r(&local, &tm);
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", tm.tm_hour, tm.tm_min);
  return buf;
}

TEST(OperatorTest, AKeepWarmWindowInKolkataWakesAtItsStartAndHoldsUntilPgnapSleep) {
  Cluster cluster;
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "2s";
  // The next minute at least 8 s ahead (Kolkata's minutes are UTC's: the offset is whole
  // minutes), for 3 minutes.
  const auto now_sys = std::chrono::system_clock::now();
  const std::time_t now = std::chrono::system_clock::to_time_t(now_sys);
  const std::time_t start = ((now + 8) / 60 + 1) * 60;
  const std::time_t end = start + 3 * 60;
  const std::string window = "daily " + kolkata_hhmm(start) + "-" + kolkata_hhmm(end);
  options.extra_toml = "[instances.main.wake]\nawake_during = [" + toml_quote(window) +
                       "]\ntime_zone = \"Asia/Kolkata\"\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 15s)) << gateway.log();
  const auto start_point = std::chrono::system_clock::from_time_t(start);

  const auto asleep = main_status(gateway);
  EXPECT_EQ(text(asleep, "state"), "asleep") << json::serialize(asleep);
  EXPECT_TRUE(plans(asleep, "keep-warm window starts")) << window << ": " << json::serialize(asleep);

  // Asleep until shortly before the start.
  while (std::chrono::system_clock::now() < start_point - 3s) {
    ASSERT_FALSE(cluster.is_running()) << "woken before the window " << window << "\n" << gateway.log();
    std::this_thread::sleep_for(250ms);
  }
  // Woken within 15 s of the start.
  const auto wake_deadline = std::chrono::duration_cast<Millis>(start_point + 15s - std::chrono::system_clock::now());
  ASSERT_TRUE(wait_until([&] { return cluster.is_running(); }, std::max(wake_deadline, Millis(0)), 200ms))
      << "not woken by the window " << window << "\n"
      << gateway.log();
  EXPECT_GE(std::chrono::system_clock::now(), start_point - 1s) << "woken before the window";
  const auto woke = main_status(gateway);
  ASSERT_TRUE(woke.contains("last_wake") && woke.at("last_wake").is_object()) << json::serialize(woke);
  EXPECT_EQ(text(woke.at("last_wake").as_object(), "cause"), "window") << json::serialize(woke);

  // Held past idle_timeout: nobody uses it.
  std::this_thread::sleep_for(5s);
  EXPECT_TRUE(cluster.is_running()) << "suspended inside the window\n" << gateway.log();
  const auto held = main_status(gateway);
  EXPECT_EQ(text(held, "state"), "awake") << json::serialize(held);
  EXPECT_TRUE(plans(held, "keep-warm window ends")) << json::serialize(held);

  // pgnap sleep ends it for this window: it is not woken again by it.
  const auto r = pgnap({"sleep", "main", "-c", gateway.config_path()}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_TRUE(sleeps(cluster, gateway, 30s));
  const int starts = cluster.ready_count();
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(250ms);
    ASSERT_FALSE(cluster.is_running()) << "the window woke it again after pgnap sleep\n" << gateway.log();
  }
  EXPECT_EQ(cluster.ready_count(), starts);
  EXPECT_EQ(starts, 1);
  EXPECT_EQ(text(main_status(gateway), "state"), "asleep");

  const auto causes = wake_causes(gateway);
  EXPECT_EQ(count_of(causes, "window"), 1) << json::serialize(causes);
  EXPECT_EQ(count_of(causes, "client"), 0) << json::serialize(causes);
}

}  // namespace
}  // namespace pgnap::it
