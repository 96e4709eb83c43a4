// The authenticating mode's metrics move as its sessions do: logins by method and outcome,
// the cause of a wake, what is queued while the instance wakes (counted, and given back when
// the session is attached), and a cancel answered by pgnap for a query still queued.
//
// The wake is held by the pg_ctl wrapper (a start that sleeps until the test lets it go), so
// that what is queued meanwhile is read while it is queued, whatever the machine's speed.
#include <libpq-fe.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "tests/integration/auth_fixture.h"

namespace pgnap::it {
namespace {

std::string authentications(const std::string& method, const std::string& outcome) {
  return "pgnap_authentications_total{db_instance=\"main\",method=\"" + method + "\",outcome=\"" + outcome + "\"}";
}
const std::string kQueuedBytes = "pgnap_queued_bytes{db_instance=\"main\"}";
const std::string kQueuedMessages = "pgnap_queued_messages_total{db_instance=\"main\"}";
const std::string kQueuedCancelled = "pgnap_queued_queries_cancelled_total{db_instance=\"main\"}";
const std::string kQueryWakes = "pgnap_instance_wake_causes_total{db_instance=\"main\",cause=\"query\"}";
const std::string kLoginWakes = "pgnap_instance_wake_causes_total{db_instance=\"main\",cause=\"login\"}";
const std::string kQueuedCancels = "pgnap_cancel_requests_total{outcome=\"queued\"}";

// The size of the Query message libpq sends for `sql`: type, length word, text and its NUL.
std::size_t query_size(const std::string& sql) { return 1 + 4 + sql.size() + 1; }

TEST(GatewayAuthMetricsTest, LoginsWakesQueuedMessagesAndCancelsOfQueuedQueriesAreCounted) {
  AuthCluster ac;
  WrapperBinDir bin;
  auto options = ac.file_options();
  options.bin_dir = bin.path();
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  auto metric = [&](const std::string& series) { return scrape_metric(gateway.metrics_port(), series); };

  // A first login is a real one (a wake for the login), then the instance sleeps.
  log_in_once_then_sleep(gateway, "alice", kAlicePassword);
  EXPECT_EQ(metric(authentications("scram-sha-256", "ok")), 1);
  EXPECT_EQ(metric(kLoginWakes), 1);
  EXPECT_EQ(metric(kQueryWakes), -1) << "no query has woken the instance yet";

  // A wrong password: counted without a method (the exchange did not succeed).
  const auto wrong = connect(password_conninfo(gateway, "alice", "wrong"), 30s);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.server.sqlstate, "28P01") << wrong.error;
  EXPECT_EQ(metric(authentications("-", "wrong_password")), 1);
  EXPECT_EQ(metric(authentications("scram-sha-256", "wrong_password")), -1);

  // A session answered at once while the instance sleeps; its first query queues and wakes
  // the instance, whose start is held.
  bin.set_start_delay(std::nullopt);
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  EXPECT_EQ(metric(authentications("scram-sha-256", "ok")), 2);
  EXPECT_EQ(metric(kQueuedMessages), 0);
  EXPECT_EQ(metric(kQueuedBytes), 0);
  const std::string cancelled_sql = "create table cancelled_before_sent (x int)";
  ASSERT_EQ(PQsendQuery(conn.get(), cancelled_sql.c_str()), 1);
  ASSERT_TRUE(gateway.wait_for_log("waking (", 10s, 2)) << gateway.log();
  EXPECT_EQ(metric(kQueryWakes), 1);
  EXPECT_EQ(metric(kQueuedMessages), 1);
  EXPECT_EQ(metric(kQueuedBytes), static_cast<double>(query_size(cancelled_sql)));

  // A cancel of the queued query: answered by pgnap, and nothing stays queued.
  PGcancel* cancel = PQgetCancel(conn.get());
  ASSERT_NE(cancel, nullptr);
  char err[256];
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PgResultPtr res(PQgetResult(conn.get()));
  ASSERT_NE(res, nullptr);
  EXPECT_STREQ(PQresultErrorField(res.get(), PG_DIAG_SQLSTATE), "57014");
  while (PGresult* more = PQgetResult(conn.get())) PQclear(more);
  EXPECT_EQ(metric(kQueuedCancels), 1);
  EXPECT_EQ(metric(kQueuedCancelled), 1);
  EXPECT_EQ(metric(kQueuedBytes), 0) << "the cancelled query's bytes are still counted";

  // A second query queues behind the same held wake.
  const std::string answered_sql = "select 'answered after the wake'";
  ASSERT_EQ(PQsendQuery(conn.get(), answered_sql.c_str()), 1);
  ASSERT_TRUE(wait_until([&] { return metric(kQueuedMessages) == 2; }, 10s)) << metric(kQueuedMessages);
  EXPECT_EQ(metric(kQueuedBytes), static_cast<double>(query_size(answered_sql)));

  // The start is let go: the session is attached, its queue replayed and given back.
  ASSERT_TRUE(wait_until([&] { return bin.sleep_pids().size() == 1; }, 10s)) << bin.invocation_log();
  bin.set_start_delay(0.0);
  ASSERT_EQ(::kill(bin.sleep_pids()[0], SIGKILL), 0);
  PgResultPtr answer(PQgetResult(conn.get()));
  ASSERT_NE(answer, nullptr);
  ASSERT_EQ(PQresultStatus(answer.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(answer.get());
  EXPECT_STREQ(PQgetvalue(answer.get(), 0, 0), "answered after the wake");
  while (PGresult* more = PQgetResult(conn.get())) PQclear(more);
  EXPECT_EQ(metric(kQueuedBytes), 0) << "bytes still counted as queued after the session was attached";
  EXPECT_EQ(metric(kQueuedMessages), 2);
  EXPECT_EQ(metric(kQueryWakes), 1) << "one wake for both queries";
  EXPECT_EQ(metric(kLoginWakes), 1);
  EXPECT_EQ(metric(kQueuedCancelled), 1);

  // The cancelled query never reached the server.
  EXPECT_EQ(query(conn.get(), "select count(*) from pg_class where relname = 'cancelled_before_sent'").value, "0");
}

// A query that finds its instance stopping waits for the stop, then wakes it: a wake caused by
// a query all the same (docs: cause "connect" is a relayed connection's).
TEST(GatewayAuthMetricsTest, AQueryArrivingWhileTheInstanceSuspendsCountsItsWakeAsCausedByAQuery) {
  AuthCluster ac;
  WrapperBinDir bin;
  auto options = ac.file_options();
  options.bin_dir = bin.path();
  options.metrics_listen = "127.0.0.1:0";
  Gateway gateway(options, &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  auto metric = [&](const std::string& series) { return scrape_metric(gateway.metrics_port(), series); };
  log_in_once_then_sleep(gateway, "alice", kAlicePassword);

  // A query wakes the instance; once its session has gone, the suspend is held in pg_ctl stop.
  bin.set_stop_delay(1e6);
  {
    auto first = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
    ASSERT_TRUE(query(first.get(), "select 1").ok);
  }
  EXPECT_EQ(metric(kQueryWakes), 1);
  ASSERT_TRUE(gateway.wait_for_log("with no sessions, suspending", 30s, 2)) << gateway.log();
  ASSERT_TRUE(wait_until([&] { return bin.sleep_pids().size() == 1; }, 10s)) << bin.invocation_log();

  // Logged in at once while it stops; the query waits for the stop.
  auto conn = connect_or_throw(password_conninfo(gateway, "alice", kAlicePassword), 30s);
  ASSERT_EQ(PQsendQuery(conn.get(), "select 'after the stop'"), 1);
  ASSERT_TRUE(wait_until([&] { return metric("pgnap_waiting_clients{db_instance=\"main\"}") == 1; }, 10s))
      << gateway.log();
  bin.set_stop_delay(0.0);
  ASSERT_EQ(::kill(bin.sleep_pids()[0], SIGKILL), 0);
  PgResultPtr answer(PQgetResult(conn.get()));
  ASSERT_NE(answer, nullptr);
  ASSERT_EQ(PQresultStatus(answer.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(answer.get());
  EXPECT_STREQ(PQgetvalue(answer.get(), 0, 0), "after the stop");
  while (PGresult* more = PQgetResult(conn.get())) PQclear(more);

  EXPECT_EQ(metric(kQueryWakes), 2) << "the wake after the stop was not counted as a query's";
  EXPECT_EQ(metric("pgnap_instance_wake_causes_total{db_instance=\"main\",cause=\"connect\"}"), -1)
      << "no relayed connection here: every client of this instance is authenticated by pgnap";
  EXPECT_EQ(metric(kLoginWakes), 1);
}

}  // namespace
}  // namespace pgnap::it
