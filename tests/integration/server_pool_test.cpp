// Session pooling in the authenticating mode (docs/pooling.md), against real PostgreSQL 15
// with SCRAM and md5 roles and real libpq and Django: a connection whose client leaves it at
// rest is reset and serves the next client of the same user and database; the pool is
// bounded, emptied before each suspend, and never routes a cancel to another client's query.
#include <libpq-fe.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <thread>

#include "tests/integration/auth_fixture.h"
#include "tests/integration/http_client.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// alice (SCRAM) and bob (md5) from an auth_file; the instance stays awake unless a test
// shortens idle_timeout; metrics on, and `pool` added to the instance's keys.
GatewayOptions pool_options(AuthCluster& ac, const std::string& pool = {}, const std::string& idle_timeout = "60s") {
  auto options = ac.file_options();
  options.idle_timeout = idle_timeout;
  options.login_timeout = "60s";  // up to 100 SCRAM logins at once, on a machine that may be busy
  options.metrics_listen = "127.0.0.1:0";
  options.instance_extra += pool;
  return options;
}

double metric(const Gateway& gateway, const std::string& series) {
  return scrape_metric(gateway.metrics_port(), series);
}

double idle_connections(const Gateway& gateway) {
  return metric(gateway, "pgnap_server_connections{db_instance=\"main\",state=\"idle\"}");
}

// Waits until the pool holds `n` idle connections (a connection is reset after its client
// has gone, off the client's path).
::testing::AssertionResult pool_has_idle(const Gateway& gateway, double n) {
  if (wait_until([&] { return idle_connections(gateway) == n; }, 15s)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the pool holds " << idle_connections(gateway) << " idle connection(s), not "
                                       << n << "\n"
                                       << gateway.log();
}

std::string value_of(PGconn* conn, const std::string& sql) {
  const auto r = query(conn, sql);
  EXPECT_TRUE(r.ok) << sql << ": " << r.error.sqlstate << " " << r.error.message;
  return r.value;
}

PgConnPtr log_in(const Gateway& gateway, const std::string& user = "alice", const std::string& extra = {}) {
  const std::string password = user == "alice" ? kAlicePassword : kBobPassword;
  return connect_or_throw(password_conninfo(gateway, user, password, extra), 60s);
}

// Leaves behind what a session can: a temporary table, a SET, prepared statements (SQL and
// protocol level), an advisory lock, a LISTEN.
void dirty(PGconn* conn) {
  for (const char* sql : {"create temp table scratch(x int)", "set work_mem = '77MB'", "prepare by_sql as select 1",
                          "select pg_advisory_lock(42)", "listen pool_test"}) {
    const auto r = query(conn, sql);
    ASSERT_TRUE(r.ok) << sql << ": " << r.error.message;
  }
  PgResultPtr prepared(PQprepare(conn, "by_protocol", "select 2", 0, nullptr));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn);
}

void expect_clean(PGconn* conn) {
  EXPECT_EQ(value_of(conn, "select count(*) from pg_class where relname = 'scratch' and relpersistence = 't'"), "0")
      << "the previous client's temporary table is still there";
  EXPECT_EQ(value_of(conn, "show work_mem"), "4MB") << "the previous client's SET is still in force";
  EXPECT_EQ(value_of(conn, "select count(*) from pg_prepared_statements"), "0")
      << "the previous client's prepared statements are still there";
  EXPECT_EQ(value_of(conn, "select count(*) from pg_locks where locktype = 'advisory'"), "0")
      << "the previous client's advisory lock is still held";
  EXPECT_EQ(value_of(conn, "select count(*) from pg_listening_channels()"), "0")
      << "the previous client's LISTEN is still registered";
}

TEST(ServerPoolTest, SequentialClientsReuseOneBackendAndEachSeesACleanSession) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  std::string pid;
  {
    auto conn = log_in(gateway);
    pid = value_of(conn.get(), "select pg_backend_pid()");
    ASSERT_NO_FATAL_FAILURE(dirty(conn.get()));
  }
  for (int client = 2; client <= 4; ++client) {
    ASSERT_TRUE(pool_has_idle(gateway, 1));
    auto conn = log_in(gateway);
    EXPECT_EQ(value_of(conn.get(), "select pg_backend_pid()"), pid) << "client " << client << " got another backend";
    expect_clean(conn.get());
    ASSERT_NO_FATAL_FAILURE(dirty(conn.get()));
  }
  ASSERT_TRUE(pool_has_idle(gateway, 1));
  EXPECT_EQ(metric(gateway, "pgnap_server_logins_saved_total{db_instance=\"main\"}"), 3);
  EXPECT_EQ(ac.starts(), 1);
  const std::string server_log = ac.cluster().server_log();
  EXPECT_EQ(server_log.find("unexpected EOF"), std::string::npos) << server_log;
}

TEST(ServerPoolTest, TwoUsersNeverShareAConnection) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac), &ac.cluster());
  std::string alice_pid, bob_pid;
  {
    auto conn = log_in(gateway, "alice");
    alice_pid = value_of(conn.get(), "select pg_backend_pid()");
  }
  ASSERT_TRUE(pool_has_idle(gateway, 1));
  {
    auto conn = log_in(gateway, "bob");
    EXPECT_EQ(value_of(conn.get(), "select current_user"), "bob");
    bob_pid = value_of(conn.get(), "select pg_backend_pid()");
    EXPECT_NE(bob_pid, alice_pid) << "bob was given alice's connection";
  }
  ASSERT_TRUE(pool_has_idle(gateway, 2));
  for (int round = 0; round < 2; ++round) {
    {
      auto conn = log_in(gateway, "bob");
      EXPECT_EQ(value_of(conn.get(), "select current_user || ' ' || pg_backend_pid()"), "bob " + bob_pid);
    }
    ASSERT_TRUE(pool_has_idle(gateway, 2));
    {
      auto conn = log_in(gateway, "alice");
      EXPECT_EQ(value_of(conn.get(), "select current_user || ' ' || pg_backend_pid()"), "alice " + alice_pid);
    }
    ASSERT_TRUE(pool_has_idle(gateway, 2));
  }
  EXPECT_EQ(metric(gateway, "pgnap_server_logins_saved_total{db_instance=\"main\"}"), 4);
}

TEST(ServerPoolTest, EachClientSeesItsOwnStartupParametersAndNoneItDidNotAskFor) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac), &ac.cluster());
  std::string pid;
  {
    auto conn = log_in(gateway, "alice", "application_name=shop-web client_encoding=LATIN1");
    pid = value_of(conn.get(), "select pg_backend_pid()");
    EXPECT_STREQ(PQparameterStatus(conn.get(), "application_name"), "shop-web");
    EXPECT_EQ(value_of(conn.get(), "show application_name"), "shop-web");
    EXPECT_EQ(value_of(conn.get(), "show client_encoding"), "LATIN1");
  }
  ASSERT_TRUE(pool_has_idle(gateway, 1));
  {
    auto conn = log_in(gateway, "alice", "application_name=shop-cron");
    EXPECT_EQ(value_of(conn.get(), "select pg_backend_pid()"), pid);
    EXPECT_EQ(value_of(conn.get(), "show application_name"), "shop-cron");
    EXPECT_STREQ(PQparameterStatus(conn.get(), "application_name"), "shop-cron");
    EXPECT_EQ(value_of(conn.get(), "show client_encoding"), "UTF8");
    EXPECT_STREQ(PQparameterStatus(conn.get(), "client_encoding"), "UTF8");
    EXPECT_EQ(value_of(conn.get(), "select application_name from pg_stat_activity where pid = pg_backend_pid()"),
              "shop-cron");
  }
  ASSERT_TRUE(pool_has_idle(gateway, 1));
  {
    auto conn = log_in(gateway, "alice");  // no application_name at all
    EXPECT_EQ(value_of(conn.get(), "select pg_backend_pid()"), pid);
    EXPECT_EQ(value_of(conn.get(), "show application_name"), "");
    EXPECT_STREQ(PQparameterStatus(conn.get(), "application_name"), "");
  }
}

TEST(ServerPoolTest, AConnectionLeftInATransactionOrAQueryIsClosedNotReused) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac), &ac.cluster());
  std::string in_transaction, in_query;
  {
    auto conn = log_in(gateway);
    ASSERT_TRUE(query(conn.get(), "begin").ok);
    in_transaction = value_of(conn.get(), "select pg_backend_pid()");
  }
  ASSERT_TRUE(wait_until(
      [&] { return metric(gateway, "pgnap_server_connections{db_instance=\"main\",state=\"active\"}") == 0; }, 10s));
  EXPECT_EQ(idle_connections(gateway), 0) << "a connection left in a transaction was pooled";
  {
    auto conn = log_in(gateway);
    in_query = value_of(conn.get(), "select pg_backend_pid()");
    EXPECT_NE(in_query, in_transaction);
    ASSERT_EQ(PQsendQuery(conn.get(), "select pg_sleep(0.5)"), 1);
  }  // PQfinish while the query runs
  ASSERT_TRUE(wait_until(
      [&] { return metric(gateway, "pgnap_server_connections{db_instance=\"main\",state=\"active\"}") == 0; }, 10s));
  EXPECT_EQ(idle_connections(gateway), 0) << "a connection left in a query was pooled";
  auto conn = log_in(gateway);
  const std::string pid = value_of(conn.get(), "select pg_backend_pid()");
  EXPECT_NE(pid, in_transaction);
  EXPECT_NE(pid, in_query);
  EXPECT_EQ(metric(gateway, "pgnap_server_logins_saved_total{db_instance=\"main\"}"), 0);
}

TEST(ServerPoolTest, AFullPoolMakesClientsWaitThenServesThemOrRefuses53300AtPoolWaitTimeout) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac, "pool_size = 2\npool_wait_timeout = \"3s\"\n"), &ac.cluster());
  auto first = log_in(gateway);
  auto second = log_in(gateway);
  ASSERT_EQ(value_of(first.get(), "select 1"), "1");
  ASSERT_EQ(value_of(second.get(), "select 2"), "2");

  // A third session is logged in at once; its query waits for a connection.
  auto third = log_in(gateway);
  ASSERT_EQ(PQsendQuery(third.get(), "select 3"), 1);
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(PQconsumeInput(third.get()), 1);
  EXPECT_EQ(PQisBusy(third.get()), 1) << "the third query was answered while both connections were in use";
  first.reset();  // gives its connection back
  PgResultPtr res(PQgetResult(third.get()));
  ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(third.get());
  EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "3");
  while (PgResultPtr more{PQgetResult(third.get())}) {
  }

  // A fourth, with both connections still in use: refused at pool_wait_timeout.
  auto fourth = log_in(gateway);
  const auto refused = query(fourth.get(), "select 4");
  ASSERT_FALSE(refused.ok);
  EXPECT_EQ(refused.error.sqlstate, "53300");
  EXPECT_EQ(refused.error.message, "too many server connections for instance \"main\"");
  EXPECT_THAT(refused.error.detail, HasSubstr("pool_size"));
  EXPECT_EQ(metric(gateway, "pgnap_limit_hits_total{limit=\"pool_wait_timeout\"}"), 1);
  EXPECT_EQ(metric(gateway, "pgnap_limit_hits_total{limit=\"pool_size\"}"), 2);
  EXPECT_EQ(metric(gateway, "pgnap_pool_waits_total{db_instance=\"main\"}"), 2);
  EXPECT_EQ(metric(gateway, "pgnap_server_connections{db_instance=\"main\",state=\"active\"}"), 2);

  // The refused session is fine: once a connection is free, its next query runs.
  second.reset();
  EXPECT_EQ(value_of(fourth.get(), "select 4"), "4");
}

TEST(ServerPoolTest, TheIdlePoolIsEmptiedBeforeTheInstanceSuspendsAndAWakeDoesNotRefillIt) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac, "", "2s"), &ac.cluster());
  ASSERT_TRUE(gateway.wait_for_log("adopted asleep", 10s)) << gateway.log();
  {
    auto a = log_in(gateway);
    auto b = log_in(gateway);
    ASSERT_EQ(value_of(a.get(), "select 1"), "1");
    ASSERT_EQ(value_of(b.get(), "select 1"), "1");
  }
  ASSERT_TRUE(pool_has_idle(gateway, 2));
  // Idle pooled connections keep nothing awake: the suspend comes on time.
  ASSERT_TRUE(gateway.wait_for_log("asleep (was awake", 20s)) << gateway.log();
  EXPECT_THAT(gateway.log(), HasSubstr("idle for 2s with no sessions, suspending"));
  EXPECT_EQ(idle_connections(gateway), 0);
  // The pool closed its connections cleanly before the stop: no backend was killed by it.
  const std::string server_log = ac.cluster().server_log();
  EXPECT_EQ(server_log.find("terminating connection due to administrator command"), std::string::npos) << server_log;

  auto conn = log_in(gateway);
  EXPECT_EQ(value_of(conn.get(), "select count(*) from pg_stat_activity where usename = 'alice'"), "1")
      << "the wake opened connections nobody asked for";
  EXPECT_EQ(ac.starts(), 2);
}

TEST(ServerPoolTest, ServerIdleTimeoutClosesIdleConnectionsAndServerLifetimeRetiresOldOnes) {
  AuthCluster ac;
  {
    Gateway gateway(pool_options(ac, "server_idle_timeout = \"1s\"\n"), &ac.cluster());
    {
      auto conn = log_in(gateway);
      ASSERT_EQ(value_of(conn.get(), "select 1"), "1");
    }
    ASSERT_TRUE(pool_has_idle(gateway, 1));
    EXPECT_TRUE(wait_until([&] { return idle_connections(gateway) == 0; }, 10s))
        << "an idle connection outlived server_idle_timeout";
    EXPECT_THAT(gateway.log(), Not(HasSubstr("suspending"))) << "the instance was to stay awake meanwhile";
  }
  Gateway gateway(pool_options(ac, "server_lifetime = \"1s\"\n"), &ac.cluster());
  std::string pid;
  {
    auto conn = log_in(gateway);
    pid = value_of(conn.get(), "select pg_backend_pid()");
  }
  ASSERT_TRUE(pool_has_idle(gateway, 1)) << "a young connection is pooled";
  {
    auto conn = log_in(gateway);
    EXPECT_EQ(value_of(conn.get(), "select pg_backend_pid()"), pid);
    std::this_thread::sleep_for(1200ms);  // older than server_lifetime when its client leaves
  }
  ASSERT_TRUE(wait_until(
      [&] { return metric(gateway, "pgnap_server_connections{db_instance=\"main\",state=\"active\"}") == 0; }, 10s));
  EXPECT_EQ(idle_connections(gateway), 0) << "a connection older than server_lifetime went back to the pool";
}

TEST(ServerPoolTest, SigtermWithConnectionsInThePoolExitsAtOnce) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac), &ac.cluster());
  {
    auto a = log_in(gateway);
    auto b = log_in(gateway);
    ASSERT_EQ(value_of(a.get(), "select 1"), "1");
    ASSERT_EQ(value_of(b.get(), "select 1"), "1");
  }
  ASSERT_TRUE(pool_has_idle(gateway, 2));
  // Nothing of the pool (its idle connections, its idle timer) may hold the exit back.
  EXPECT_EQ(gateway.terminate(SIGTERM, 5s), 0) << gateway.log();
}

TEST(ServerPoolTest, AnIdleConnectionTheServerClosedIsReplacedWithoutTheClientNoticing) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac), &ac.cluster());
  std::string pid;
  {
    auto conn = log_in(gateway);
    pid = value_of(conn.get(), "select pg_backend_pid()");
  }
  ASSERT_TRUE(pool_has_idle(gateway, 1));
  ac.admin("select pg_terminate_backend(" + pid + ")");
  std::this_thread::sleep_for(200ms);  // the backend's FATAL and close reach pgnap's socket
  auto conn = log_in(gateway, "alice", "application_name=after-the-kill");
  const auto r = query(conn.get(), "select pg_backend_pid()");
  ASSERT_TRUE(r.ok) << r.error.sqlstate << " " << r.error.message;
  EXPECT_NE(r.value, pid);
  EXPECT_EQ(value_of(conn.get(), "show application_name"), "after-the-kill");
}

// Half the clients cancel their own long query, which must end with 57014; the others run
// short queries, then send a cancel with their key after they have closed, while the
// connection they had serves someone else: no short query may ever be cancelled.
TEST(ServerPoolTest, ACancelReachesOnlyTheBackendItsClientIsAttachedToUnderAConnectCancelCloseRace) {
  AuthCluster ac;
  Gateway gateway(pool_options(ac, "pool_size = 10\n"), &ac.cluster());
  {
    auto warm = log_in(gateway);
    ASSERT_EQ(value_of(warm.get(), "select 1"), "1");
  }
  constexpr int kClients = 100;
  std::atomic<int> cancelled_right{0}, cancelled_wrong{0}, other_failures{0};
  std::mutex first_failure_mutex;
  std::string first_failure;
  auto note = [&](const std::string& what) {
    ++other_failures;
    std::lock_guard lock(first_failure_mutex);
    if (first_failure.empty()) first_failure = what;
  };
  const std::string conninfo = password_conninfo(gateway, "alice", kAlicePassword);
  run_in_parallel(kClients, [&](int i) {
    auto c = connect(conninfo, 120s);
    if (!c.ok()) return note("connect: " + c.error);
    PGconn* conn = c.conn.get();
    char error[256];
    if (i % 2 == 0) {
      if (PQsendQuery(conn, "select pg_sleep(60)") != 1) return note("send");
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + i % 7 * 10));
      std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> cancel(PQgetCancel(conn), &PQfreeCancel);
      if (PQcancel(cancel.get(), error, sizeof error) != 1) return note(std::string("PQcancel: ") + error);
      PgResultPtr res(PQgetResult(conn));
      const ServerError e = result_error(res.get(), conn);
      if (PQresultStatus(res.get()) == PGRES_FATAL_ERROR && e.sqlstate == "57014") {
        ++cancelled_right;
      } else {
        note("the cancelled query ended with " + e.sqlstate + " " + e.message);
      }
      while (PgResultPtr more{PQgetResult(conn)}) {
      }
      return;
    }
    for (int round = 0; round < 3; ++round) {
      const auto r = query(conn, "select pg_sleep(0.05)");
      if (!r.ok && r.error.sqlstate == "57014") ++cancelled_wrong;
      if (!r.ok && r.error.sqlstate != "57014") note("short query: " + r.error.sqlstate + " " + r.error.message);
      // A cancel with this session's key races its close: whether pgnap forwards it to the
      // backend the session had (then the backend serves no one else before PostgreSQL has
      // taken it) or drops it (the session is gone), it must reach no other client's query.
      std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> stale(PQgetCancel(conn), &PQfreeCancel);
      std::thread racer([&stale] {
        char racer_error[256];
        (void)PQcancel(stale.get(), racer_error, sizeof racer_error);
      });
      c.conn.reset();
      racer.join();
      c = connect(conninfo, 120s);
      if (!c.ok()) return note("reconnect: " + c.error);
      conn = c.conn.get();
    }
  });
  EXPECT_EQ(cancelled_wrong.load(), 0) << "short queries cancelled by another client's cancel";
  EXPECT_EQ(cancelled_right.load(), kClients / 2);
  EXPECT_EQ(other_failures.load(), 0) << first_failure;
  EXPECT_GT(metric(gateway, "pgnap_server_logins_saved_total{db_instance=\"main\"}"), 0);
}

// Django's default, CONN_MAX_AGE = 0: a connection per request. A real view (ORM insert and
// count) served 500 times through Django's own WSGI handler, with requests made by its
// RequestFactory: unlike django.test.Client, which keeps the database connection open across
// requests on purpose, the handler closes it at the end of each request as in production.
TEST(ServerPoolTest, DjangoWithConnMaxAgeZeroServes500RequestsThroughThePool) {
  AuthCluster ac;
  ac.admin(
      "create table visits (id serial primary key, path text not null);"
      "grant all on visits, visits_id_seq to alice");
  Gateway gateway(pool_options(ac), &ac.cluster());
  TempDir site(false);
  write_file(site.path() + "/site.py",
             "import json, sys\n"
             "import django\n"
             "from django.conf import settings\n"
             "settings.configure(\n"
             "    DEBUG=False, SECRET_KEY='pgnap-test', ALLOWED_HOSTS=['testserver'], ROOT_URLCONF=__name__,\n"
             "    INSTALLED_APPS=['visits_app'], MIDDLEWARE=[],\n"
             "    DATABASES={'default': {'ENGINE': 'django.db.backends.postgresql', 'HOST': '127.0.0.1',\n"
             "        'PORT': sys.argv[1], 'NAME': 'postgres', 'USER': 'alice', 'PASSWORD': 'alice-pw',\n"
             "        'CONN_MAX_AGE': 0}})\n"
             "django.setup()\n"
             "from django.http import JsonResponse\n"
             "from django.urls import path\n"
             "from django.core.handlers.wsgi import WSGIHandler\n"
             "from django.test import RequestFactory\n"
             "from visits_app.models import Visit\n"
             "def visit(request, page):\n"
             "    Visit.objects.create(path=page)\n"
             "    return JsonResponse({'visits': Visit.objects.count()})\n"
             "urlpatterns = [path('v/<str:page>', visit)]\n"
             "app = WSGIHandler()\n"
             "factory = RequestFactory()\n"
             "ok = 0\n"
             "last = 0\n"
             "for i in range(500):\n"
             "    status = []\n"
             "    response = app(factory.get('/v/p%d' % i).environ, lambda s, h, e=None: status.append(s))\n"
             "    body = b''.join(response)\n"
             "    response.close()  # as a WSGI server does: request_finished closes the connection\n"
             "    if status == ['200 OK'] and json.loads(body)['visits'] == last + 1:\n"
             "        ok += 1\n"
             "        last += 1\n"
             "    else:\n"
             "        print('request %d: %s %s' % (i, status, body[:200]), file=sys.stderr)\n"
             "print(ok, last)\n");
  std::filesystem::create_directories(site.path() + "/visits_app");
  write_file(site.path() + "/visits_app/__init__.py", "");
  write_file(site.path() + "/visits_app/models.py",
             "from django.db import models\n"
             "class Visit(models.Model):\n"
             "    path = models.TextField()\n"
             "    class Meta:\n"
             "        db_table = 'visits'\n"
             "        managed = False\n");
  const auto run = run_command({"/usr/bin/python3", site.path() + "/site.py", std::to_string(gateway.port())}, 300s);
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  EXPECT_EQ(run.out, "500 500\n") << run.describe();
  // One login at most per connection the pool opened; the rest reused.
  EXPECT_GE(metric(gateway, "pgnap_server_logins_saved_total{db_instance=\"main\"}"), 490);
  EXPECT_EQ(metric(gateway, "pgnap_client_sessions_total{db_instance=\"main\"}"), 500);
}

}  // namespace
}  // namespace pgnap::it
