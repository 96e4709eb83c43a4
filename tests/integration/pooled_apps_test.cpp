// Pooled applications: a session that is only open (at rest, no traffic) does not keep its
// instance awake. After idle_session_timeout + idle_timeout pgnap closes such sessions with
// 57P01 and suspends; a session in a transaction, or one that ran LISTEN, keeps it awake.
// Real pools (psycopg 3's ConnectionPool and SQLAlchemy, both from Debian) recover with the
// settings docs/pooled-apps.md recommends, without restarting the application.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

constexpr const char* kIdleMessage = "terminating idle connection so that the database can sleep";

GatewayOptions pooled(const Cluster& cluster, const std::string& extra = "") {
  auto options = GatewayOptions::for_cluster(cluster);
  options.idle_timeout = "1s";
  options.min_awake = "0s";
  options.instance_extra = "idle_session_timeout = \"1s\"\n" + extra;
  options.metrics_listen = "127.0.0.1:0";
  return options;
}

TEST(PooledAppsTest, AnIdleSessionIsClosedWith57P01AndTheInstanceSleeps) {
  Cluster cluster;
  Gateway gateway(pooled(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();

  // psql itself, left idle between two commands.
  TempDir dir(false);
  const std::string script = "select 'first';\n\\! sleep 6\nselect 'second';\n";
  write_file(dir.path() + "/session.sql", script);
  const auto r = run_command({"psql", "-X", "-At", "-f", dir.path() + "/session.sql", gateway.conninfo()}, 60s);
  EXPECT_THAT(r.out, HasSubstr("first"));
  EXPECT_THAT(r.err, HasSubstr(kIdleMessage)) << r.describe();
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("second")));
  EXPECT_TRUE(wait_until([&] { return !cluster.is_running(); }, 10s, 100ms)) << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("closed 1 idle session(s) so that it can sleep"));

  // libpq sees the same FATAL, with SQLSTATE 57P01 and the hint; the next connection wakes it.
  auto conn = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(conn.get(), "select 1").ok);
  ASSERT_TRUE(wait_until([&] { return !cluster.is_running(); }, 10s, 100ms)) << gateway.log();
  const auto after = query(conn.get(), "select 2");
  EXPECT_FALSE(after.ok);
  EXPECT_THAT(std::string(PQerrorMessage(conn.get())), HasSubstr(kIdleMessage));
  const auto next = psql(gateway.conninfo(), "select 'awake again'");
  ASSERT_EQ(next.exit_code, 0) << next.describe();
  EXPECT_EQ(next.out, "awake again\n");
  EXPECT_EQ(cluster.ready_count(), 3);

  const auto m = http_get(gateway.metrics_port(), "/metrics");
  EXPECT_THAT(m.body, HasSubstr("pgnap_idle_sessions_closed_total{db_instance=\"main\"} 2\n")) << m.body;
}

TEST(PooledAppsTest, ATransactionOrAListenerKeepsTheInstanceAwake) {
  Cluster cluster;
  Gateway gateway(pooled(cluster), &cluster);
  auto idle = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(idle.get(), "select 1").ok);
  auto in_transaction = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(in_transaction.get(), "begin").ok);
  ASSERT_TRUE(query(in_transaction.get(), "select 1").ok);

  // Several times idle_session_timeout + idle_timeout: an absence cannot be polled for.
  std::this_thread::sleep_for(5s);
  EXPECT_TRUE(cluster.is_running());
  EXPECT_THAT(gateway.log(), ::testing::Not(HasSubstr("idle session(s)")));
  EXPECT_TRUE(query(in_transaction.get(), "commit").ok);
  EXPECT_TRUE(query(idle.get(), "select 'still relayed'").ok);

  // A LISTEN session, idle: kept too (by default).
  in_transaction.reset();
  ASSERT_TRUE(query(idle.get(), "listen pgnap_test").ok);
  std::this_thread::sleep_for(5s);
  EXPECT_TRUE(cluster.is_running());
  EXPECT_TRUE(query(idle.get(), "select 'listening'").ok);

  // Once it unlistens (DISCARD ALL, a pool's reset), it is an idle session like any other.
  ASSERT_TRUE(query(idle.get(), "discard all").ok);
  EXPECT_TRUE(wait_until([&] { return !cluster.is_running(); }, 15s, 100ms)) << gateway.log();
  EXPECT_EQ(cluster.ready_count(), 1);
}

TEST(PooledAppsTest, CloseListenersEndsIdleListenersToo) {
  Cluster cluster;
  Gateway gateway(pooled(cluster, "close_listeners = true\n"), &cluster);
  auto conn = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(conn.get(), "listen pgnap_test").ok);
  EXPECT_TRUE(wait_until([&] { return !cluster.is_running(); }, 15s, 100ms)) << gateway.log();
  EXPECT_FALSE(query(conn.get(), "select 1").ok);
}

TEST(PooledAppsTest, IdleSessionTimeoutZeroKeepsOpenSessionsAwake) {
  Cluster cluster;
  auto options = pooled(cluster);
  options.instance_extra = "idle_session_timeout = \"0s\"\n";
  Gateway gateway(options, &cluster);
  auto conn = connect_or_throw(gateway.conninfo(), 60s);
  ASSERT_TRUE(query(conn.get(), "select 1").ok);
  std::this_thread::sleep_for(4s);
  EXPECT_TRUE(cluster.is_running());
  EXPECT_TRUE(query(conn.get(), "select 'kept'").ok);
}

// A Python application with a pool, kept running: it queries, then waits (its pool holding
// the connection) until the test has seen the instance fall asleep, then queries again.
void run_pool_app(const std::string& name, const std::string& program, const Gateway& gateway, const Cluster& cluster) {
  TempDir dir(false);
  const std::string go = dir.path() + "/go";
  const std::string app = dir.path() + "/app.py";
  write_file(app,
             "import os, sys, time\n"
             "DSN = sys.argv[1]\nGO = sys.argv[2]\n" +
                 program +
                 "print('first:', query('select 40 + 1'), flush=True)\n"
                 "deadline = time.time() + 90\n"
                 "while not os.path.exists(GO) and time.time() < deadline:\n"
                 "    time.sleep(0.05)\n"
                 "print('second:', query('select 40 + 2'), flush=True)\n");
  BackgroundProcess proc(name, {"/usr/bin/python3", app, gateway.conninfo(), go}, dir.path() + "/app.log");
  ASSERT_TRUE(proc.wait_for_log("first: 41", 60s)) << proc.log();
  ASSERT_TRUE(wait_until([&] { return !cluster.is_running(); }, 30s, 100ms)) << gateway.log();
  write_file(go, "");
  EXPECT_TRUE(proc.wait_for_log("second: 42", 60s)) << proc.log() << gateway.log();
  EXPECT_THAT(proc.log(), ::testing::Not(HasSubstr("Error"))) << proc.log();
  EXPECT_TRUE(cluster.is_running());
}

TEST(PooledAppsTest, SqlalchemyWithPoolPrePingRecoversWithoutAnError) {
  Cluster cluster;
  Gateway gateway(pooled(cluster), &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  run_pool_app("sqlalchemy",
               "import sqlalchemy\n"
               "engine = sqlalchemy.create_engine('postgresql+psycopg2:///?' + '&'.join(\n"
               "    p.replace(' ', '') for p in DSN.split()), pool_size=2, pool_pre_ping=True)\n"
               "def query(sql):\n"
               "    with engine.connect() as c:\n"
               "        return c.execute(sqlalchemy.text(sql)).scalar()\n",
               gateway, cluster);
  EXPECT_THAT(gateway.log(), HasSubstr("closed 1 idle session(s)")) << "the pool's connection was not pgnap's to close";
}

TEST(PooledAppsTest, Psycopg3PoolWithMaxIdleBelowIdleSessionTimeoutRecovers) {
  Cluster cluster;
  auto options = pooled(cluster);
  options.idle_timeout = "2s";
  options.instance_extra = "idle_session_timeout = \"3s\"\n";
  Gateway gateway(options, &cluster);
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  run_pool_app("psycopg_pool",
               "import psycopg_pool\n"
               "pool = psycopg_pool.ConnectionPool(DSN, min_size=0, max_size=2, max_idle=1)\n"
               "def query(sql):\n"
               "    with pool.connection() as c:\n"
               "        return c.execute(sql).fetchone()[0]\n",
               gateway, cluster);
}

}  // namespace
}  // namespace pgnap::it
