// Parked sessions under real application pools: SQLAlchemy with psycopg2, psycopg 3's
// ConnectionPool, node-postgres's pg.Pool and pgJDBC, each a long-running process in front of
// a real PostgreSQL 15 that suspends between two uses (idle_timeout 1 s, the authenticating
// mode). The app's pooled connection stays open while its session is parked and the database
// stops; its next use wakes the database once and finds the session's settings and its
// server-side prepared statements where the first use left them, with no error reaching the
// app. (psql across a suspend is in parking_test.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/integration/auth_fixture.h"
#include "tests/integration/http_client.h"

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// An app in one source file, run as `command... FILE`. Its environment gives PORT (pgnap's)
// and GO and STOP (flag files): it does its first use and prints `first`, waits for GO, does
// its second use and prints `second`, waits for STOP, and prints "stopped" as it exits.
struct App {
  std::string name;
  std::string file;
  std::string source;
  std::vector<std::string> command;
  EnvVars env;
  std::string first;
  std::string second;
};

double metric(const Gateway& gateway, const std::string& name) {
  return scrape_metric(gateway.metrics_port(), name + "{db_instance=\"main\"}");
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// The whole line the app printed starting with `prefix` ("" if none within 60 s, or if it exited).
std::string printed_line(BackgroundProcess& app, const std::string& prefix) {
  std::string line;
  (void)wait_until(
      [&] {
        const std::string log = app.log();
        const auto start = log.find(prefix);
        const auto end = start == std::string::npos ? start : log.find('\n', start);
        if (end != std::string::npos) line = log.substr(start, end - start);
        return end != std::string::npos || !app.running();
      },
      60s, 50ms);
  return line;
}

void run_across_a_suspend(const App& spec) {
  AuthCluster ac;
  auto options = ac.file_options();
  options.idle_timeout = "1s";
  options.min_awake = "0s";
  options.login_timeout = "60s";
  options.metrics_listen = "127.0.0.1:0";
  // The SQLAlchemy app's own setting: PostgreSQL lists custom settings nowhere (docs/pooling.md).
  options.instance_extra += "park_custom_settings = [\"myapp.tenant\"]\n";
  Gateway gateway(options, &ac.cluster());

  TempDir dir(false);
  const std::string go = dir.path() + "/go";
  const std::string stop = dir.path() + "/stop";
  write_file(dir.path() + "/" + spec.file, spec.source);
  auto argv = spec.command;
  argv.push_back(dir.path() + "/" + spec.file);
  auto env = spec.env;
  env.insert(env.end(), {{"PORT", std::to_string(gateway.port())}, {"GO", go}, {"STOP", stop}});
  BackgroundProcess app(spec.name, argv, dir.path() + "/app.log", env);

  ASSERT_EQ(printed_line(app, "first: "), spec.first) << app.log() << gateway.log();
  ASSERT_TRUE(wait_until([&] { return !ac.cluster().is_running(); }, 60s, 100ms)) << "the instance did not suspend\n"
                                                                                  << gateway.log();
  EXPECT_THAT(ac.cluster().server_log(), HasSubstr("database system is shut down"));
  EXPECT_GE(metric(gateway, "pgnap_parked_sessions"), 1);
  ASSERT_TRUE(app.running()) << "the app stays connected while the database sleeps\n" << app.log();
  const int starts = ac.starts();
  write_file(go, "");

  EXPECT_EQ(printed_line(app, "second: "), spec.second) << app.log() << gateway.log();
  EXPECT_TRUE(app.running()) << app.log();
  write_file(stop, "");
  EXPECT_EQ(printed_line(app, "stopped"), "stopped") << app.log();
  const std::string output = lowercase(app.log());
  for (const char* word : {"error", "exception", "traceback"}) EXPECT_THAT(output, Not(HasSubstr(word))) << app.log();
  EXPECT_EQ(ac.starts(), starts + 1) << "the second use woke the instance once";
  EXPECT_GE(metric(gateway, "pgnap_session_parks_total"), 1);
  EXPECT_GE(metric(gateway, "pgnap_session_resumes_total"), 1);
  EXPECT_EQ(metric(gateway, "pgnap_session_restore_failures_total"), 0);
  EXPECT_EQ(metric(gateway, "pgnap_idle_sessions_closed_total"), 0);
}

constexpr const char* kPythonPrelude =
    "import os, time\n"
    "PORT = os.environ['PORT']\n"
    "STATEMENTS = \"select string_agg(name, ',' order by name) from pg_prepared_statements\"\n"
    "def wait_for(flag):\n"
    "    deadline = time.time() + 90\n"
    "    while not os.path.exists(os.environ[flag]) and time.time() < deadline:\n"
    "        time.sleep(0.05)\n";

App python_app(const std::string& name, const std::string& program, const std::string& first,
               const std::string& second) {
  return App{name, "app.py", kPythonPrelude + program, {"/usr/bin/python3"}, {}, first, second};
}

TEST(ParkedAppsTest, SqlalchemyQueuePoolWithoutPrePingKeepsItsCustomSettingAndSearchPath) {
  run_across_a_suspend(python_app(
      "sqlalchemy",
      "import sqlalchemy\n"
      "from sqlalchemy import text\n"
      "engine = sqlalchemy.create_engine('postgresql+psycopg2://alice:alice-pw@127.0.0.1:%s/postgres' % PORT,\n"
      "                                  pool_size=1, max_overflow=0)\n"
      "with engine.begin() as c:\n"
      "    c.execute(text(\"set myapp.tenant = '42'\"))\n"
      "    c.execute(text('set search_path = tenant_42, public'))\n"
      "    first = c.connection.dbapi_connection\n"
      "    print('first:', c.execute(text('select 40 + 1')).scalar(), flush=True)\n"
      "wait_for('GO')\n"
      "with engine.connect() as c:\n"
      "    tenant, path = c.execute(text(\"select current_setting('myapp.tenant'), current_setting('search_path')\"))"
      ".one()\n"
      "    print('second:', tenant, path, c.connection.dbapi_connection is first, flush=True)\n"
      "wait_for('STOP')\n"
      "engine.dispose()\n"
      "print('stopped', flush=True)\n",
      "first: 41", "second: 42 tenant_42, public True"));
}

TEST(ParkedAppsTest, Psycopg3ConnectionPoolResumesItsServerSidePreparedStatementAndSettings) {
  run_across_a_suspend(
      python_app("psycopg_pool",
                 "import psycopg_pool\n"
                 "pool = psycopg_pool.ConnectionPool(\n"
                 "    'host=127.0.0.1 port=%s user=alice password=alice-pw dbname=postgres' % PORT,\n"
                 "    min_size=1, max_size=1, kwargs={'prepare_threshold': 0})\n"
                 "def add_one(c, n):\n"
                 "    return c.execute('select %s::int + 1', (n,)).fetchone()[0]\n"
                 "with pool.connection() as c:\n"
                 "    c.execute(\"set work_mem = '77MB'\", prepare=False)\n"
                 "    total = sum(add_one(c, n) for n in range(3))\n"
                 "    print('first:', total, c.execute(STATEMENTS, prepare=False).fetchone()[0], flush=True)\n"
                 "    first = c\n"
                 "wait_for('GO')\n"
                 "with pool.connection() as c:\n"
                 "    print('second:', add_one(c, 41), c.execute('show work_mem', prepare=False).fetchone()[0],\n"
                 "          c.execute(STATEMENTS, prepare=False).fetchone()[0], c is first, flush=True)\n"
                 "wait_for('STOP')\n"
                 "pool.close()\n"
                 "print('stopped', flush=True)\n",
                 "first: 6 _pg3_0", "second: 42 77MB _pg3_0 True"));
}

// node-postgres from the npm registry, installed once into a cache shared by test runs (under
// a lock: build trees may run this test at the same time). Returns its node_modules.
std::string node_postgres() {
  const std::string dir = "/var/tmp/pgnap-it-npm";
  std::filesystem::create_directories(dir);
  const auto r = run_command({"flock", dir + "/.lock", "sh", "-c",
                              "cd \"$1\" && { grep -qs '\"version\": \"8.11.3\"' node_modules/pg/package.json ||"
                              " npm install --no-audit --no-fund --prefix . pg@8.11.3; }",
                              "sh", dir},
                             300s);
  if (r.exit_code != 0) throw std::runtime_error("installing node-postgres failed: " + r.describe());
  return dir + "/node_modules";
}

TEST(ParkedAppsTest, NodePostgresPoolWithoutAnErrorListenerResumesItsNamedStatement) {
  run_across_a_suspend(
      App{"node-postgres",
          "app.js",
          "const fs = require('fs');\n"
          "const { Pool } = require('pg');\n"
          "const STATEMENTS = \"select string_agg(name, ',' order by name) as s from pg_prepared_statements\";\n"
          "const add = { name: 'add', text: 'select $1::int + 1 as n', values: [1] };\n"
          "async function waitFor(flag) {\n"
          "  const deadline = Date.now() + 90000;\n"
          "  while (!fs.existsSync(process.env[flag]) && Date.now() < deadline) {\n"
          "    await new Promise((resolve) => setTimeout(resolve, 50));\n"
          "  }\n"
          "}\n"
          "async function main() {\n"
          "  const pool = new Pool({ host: '127.0.0.1', port: Number(process.env.PORT), user: 'alice',\n"
          "    password: 'alice-pw', database: 'postgres', max: 1, idleTimeoutMillis: 0 });\n"
          "  const first = await pool.connect();\n"
          "  await first.query(\"set statement_timeout = '12345ms'\");\n"
          "  const n = (await first.query(add)).rows[0].n;\n"
          "  console.log('first:', n, (await first.query(STATEMENTS)).rows[0].s);\n"
          "  first.release();\n"
          "  await waitFor('GO');\n"
          "  const second = await pool.connect();\n"
          "  const m = (await second.query(add)).rows[0].n;\n"
          "  const timeout = (await second.query('show statement_timeout')).rows[0].statement_timeout;\n"
          "  console.log('second:', m, timeout, (await second.query(STATEMENTS)).rows[0].s, second === first);\n"
          "  second.release();\n"
          "  await waitFor('STOP');\n"
          "  await pool.end();\n"
          "  console.log('stopped');\n"
          "}\n"
          "main().catch((e) => { console.log('failed:', e); process.exit(1); });\n",
          {"node"},
          {{"NODE_PATH", node_postgres()}},
          "first: 2 add",
          "second: 2 12345ms add true"});
}

TEST(ParkedAppsTest, JdbcKeepsItsServerPreparedStatementAndSettingsAcrossASuspend) {
  run_across_a_suspend(App{
      "jdbc",
      "App.java",
      "import java.nio.file.Files;\n"
      "import java.nio.file.Path;\n"
      "import java.sql.*;\n"
      "public class App {\n"
      "  static void waitFor(String flag) throws InterruptedException {\n"
      "    Path path = Path.of(System.getenv(flag));\n"
      "    long deadline = System.currentTimeMillis() + 90_000;\n"
      "    while (!Files.exists(path) && System.currentTimeMillis() < deadline) Thread.sleep(50);\n"
      "  }\n"
      "  static String value(Connection c, String sql) throws SQLException {\n"
      "    try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) {\n"
      "      r.next();\n"
      "      return r.getString(1);\n"
      "    }\n"
      "  }\n"
      "  static int addOne(PreparedStatement add, int n) throws SQLException {\n"
      "    add.setInt(1, n);\n"
      "    try (ResultSet r = add.executeQuery()) {\n"
      "      r.next();\n"
      "      return r.getInt(1);\n"
      "    }\n"
      "  }\n"
      "  public static void main(String[] args) throws Exception {\n"
      "    String url = \"jdbc:postgresql://127.0.0.1:\" + System.getenv(\"PORT\")\n"
      "        + \"/postgres?user=alice&password=alice-pw&sslmode=disable\";\n"
      "    String statements = \"select string_agg(name, ',' order by name) from pg_prepared_statements\";\n"
      "    try (Connection c = DriverManager.getConnection(url);\n"
      "         PreparedStatement add = c.prepareStatement(\"select ?::int + 1\")) {\n"
      "      try (Statement s = c.createStatement()) {\n"
      "        s.execute(\"set application_name = 'parked-jdbc'\");\n"
      "        s.execute(\"set work_mem = '77MB'\");\n"
      "      }\n"
      "      int total = 0;\n"
      "      for (int n = 0; n < 6; ++n) total += addOne(add, n);\n"
      "      System.out.println(\"first: \" + total + \" \" + value(c, statements));\n"
      "      waitFor(\"GO\");\n"
      "      System.out.println(\"second: \" + addOne(add, 41) + \" \" + value(c, \"show application_name\") + \" \"\n"
      "          + value(c, \"show work_mem\") + \" \" + value(c, statements));\n"
      "      waitFor(\"STOP\");\n"
      "    }\n"
      "    System.out.println(\"stopped\");\n"
      "  }\n"
      "}\n",
      {"java", "-cp", "/usr/share/java/postgresql.jar"},
      {},
      "first: 21 S_1",
      "second: 42 parked-jdbc 77MB S_1"});
}

}  // namespace
}  // namespace pgnap::it
