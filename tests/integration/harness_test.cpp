// The integration-test harness checked against PostgreSQL alone (no pgnap): if these fail,
// the other integration tests' failures say nothing about pgnap.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(HarnessTest, ClusterStartsAnswersDirectlyAndStops) {
  Cluster cluster;
  EXPECT_FALSE(cluster.is_running());
  EXPECT_EQ(cluster.ready_count(), 0);
  EXPECT_THAT(cluster.conf(), HasSubstr("fsync = off"));

  cluster.start();
  EXPECT_TRUE(cluster.is_running());
  EXPECT_EQ(cluster.ready_count(), 1);
  EXPECT_TRUE(process_alive(cluster.postmaster_pid()));

  auto conn = connect_or_throw(cluster.conninfo_direct(), 10s);
  const auto q = query(conn.get(), "select 1");
  ASSERT_TRUE(q.ok) << q.error.message;
  EXPECT_EQ(q.value, "1");
  const auto dir = query(conn.get(), "show data_directory");
  EXPECT_EQ(dir.value, cluster.data_dir());
  conn.reset();

  const pid_t pid = cluster.postmaster_pid();
  cluster.stop();
  EXPECT_FALSE(cluster.is_running());
  EXPECT_FALSE(process_alive(pid));
  EXPECT_EQ(cluster.postmaster_pid(), 0);
}

TEST(HarnessTest, TwoClustersRunSideBySide) {
  Cluster a;
  Cluster b;
  std::thread start_b([&] { b.start(); });
  a.start();
  start_b.join();
  EXPECT_NE(a.postmaster_pid(), b.postmaster_pid());
  auto ca = connect_or_throw(a.conninfo_direct(), 10s);
  auto cb = connect_or_throw(b.conninfo_direct(), 10s);
  ASSERT_TRUE(query(ca.get(), "create table only_in_a(x int)").ok);
  EXPECT_EQ(query(ca.get(), "show data_directory").value, a.data_dir());
  EXPECT_EQ(query(cb.get(), "show data_directory").value, b.data_dir());
  EXPECT_EQ(query(cb.get(), "select to_regclass('only_in_a') is null").value, "t");
}

TEST(HarnessTest, TcpClusterAnswersOnItsOwnPort) {
  Cluster cluster({.tcp = true});
  ASSERT_NE(cluster.port(), 5432);
  EXPECT_EQ(cluster.address(), "127.0.0.1:" + std::to_string(cluster.port()));
  cluster.start();
  auto conn = connect_or_throw(cluster.conninfo_direct(), 10s);
  EXPECT_EQ(query(conn.get(), "select inet_server_port()").value, std::to_string(cluster.port()));
}

TEST(HarnessTest, FailedConnectionAndQueryReportTheServersSqlstate) {
  Cluster cluster;
  cluster.start();
  const auto bad = connect(cluster.conninfo_direct("no_such_database"), 10s);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.server.severity, "FATAL");
  EXPECT_EQ(bad.server.sqlstate, "3D000") << bad.error;
  EXPECT_EQ(bad.server.message, "database \"no_such_database\" does not exist");

  auto conn = connect_or_throw(cluster.conninfo_direct(), 10s);
  const auto q = query(conn.get(), "selec 1");
  EXPECT_FALSE(q.ok);
  EXPECT_EQ(q.error.sqlstate, "42601");
  const auto raised = query(conn.get(),
                            "do $$ begin raise exception 'boom' using detail = 'line one\nline "
                            "two', errcode = '57P03'; end $$");
  EXPECT_EQ(raised.error.sqlstate, "57P03");
  EXPECT_EQ(raised.error.detail, "line one\nline two");
}

TEST(HarnessTest, ParsesAVerboseLibpqErrorWithAMultiLineDetail) {
  const auto e = parse_libpq_error(
      "connection to server at \"127.0.0.1\", port 6432 failed: FATAL:  57P03: instance "
      "\"main\" could not be started\nDETAIL:  pg_ctl: could not start server\n2024 FATAL:  "
      "invalid value for parameter \"shared_buffers\"\nLOCATION:  somewhere.c:1\n");
  EXPECT_EQ(e.severity, "FATAL");
  EXPECT_EQ(e.sqlstate, "57P03");
  EXPECT_EQ(e.message, "instance \"main\" could not be started");
  EXPECT_EQ(e.detail,
            "pg_ctl: could not start server\n2024 FATAL:  invalid value for parameter "
            "\"shared_buffers\"");
  EXPECT_EQ(parse_libpq_error("could not connect to server: Connection refused").sqlstate, "");
}

TEST(HarnessTest, RawClientDecodesPostgresErrorResponses) {
  Cluster cluster({.tcp = false});  // its socket is .s.PGSQL.5432
  cluster.start();
  const std::string socket = cluster.socket_dir() + "/.s.PGSQL.5432";
  {
    auto raw = RawClient::unix_socket(socket);
    ASSERT_TRUE(raw.send(startup_packet({{"user", "postgres"}, {"database", "nope"}})));
    const auto reply = raw.read_until_closed(10s);
    EXPECT_TRUE(reply.closed);
    const auto e = first_error(reply.bytes);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->severity, "FATAL");
    EXPECT_EQ(e->sqlstate, "3D000");
  }
  {
    // PostgreSQL itself answers a protocol 2.0 startup in protocol 2 ('E', then a plain
    // string), with what would be 0A000; pgnap's contract is a v3 ErrorResponse with 08P01.
    std::string v2 = be32(296) + be32(0x00020000) + "postgres";
    v2.resize(296, '\0');
    auto raw = RawClient::unix_socket(socket);
    ASSERT_TRUE(raw.send(v2));
    const auto reply = raw.read_until_closed(10s);
    EXPECT_TRUE(reply.closed);
    EXPECT_THAT(reply.bytes, StartsWith("EFATAL:  unsupported frontend protocol 2.0"));
  }
  {
    // SSLRequest ('N': the test clusters have no SSL), then a startup through to
    // ReadyForQuery, then Terminate: the server closes.
    auto raw = RawClient::unix_socket(socket);
    ASSERT_TRUE(raw.send(be32(8) + be32(80877103)));
    const auto reply = raw.read_until([](std::string_view b) { return !b.empty(); }, 10s);
    EXPECT_EQ(reply.bytes, "N");
    ASSERT_TRUE(raw.send(startup_packet({{"user", "postgres"}, {"database", "postgres"}})));
    const auto ready = raw.read_until(
        [](std::string_view b) {
          const auto m = split_backend_messages(b);
          return !m.empty() && m.back().type == 'Z';
        },
        10s);
    const auto messages = split_backend_messages(ready.bytes);
    ASSERT_FALSE(messages.empty());
    EXPECT_EQ(messages.front().type, 'R');
    EXPECT_EQ(messages.back().type, 'Z');
    ASSERT_TRUE(raw.send(std::string("X") + be32(4)));
    EXPECT_TRUE(raw.read_until_closed(10s).closed);
  }
}

TEST(HarnessTest, RunCommandReportsExitOutputInputAndTimeouts) {
  const auto r = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);

  const std::string big(1 << 20, 'i');
  const auto cat = run_command({"cat"}, 10s, big);
  EXPECT_EQ(cat.exit_code, 0);
  EXPECT_EQ(cat.out.size(), big.size());

  const auto start = std::chrono::steady_clock::now();
  // A duration no other test uses: tests run in parallel, and this looks at every process.
  const auto slow = run_command({"sh", "-c", "sleep 29.71; sleep 29.71"}, 300ms);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  // SIGKILL is delivered asynchronously: under load the killed sleep may linger an instant.
  EXPECT_TRUE(wait_until([] { return processes_with_cmdline({"sleep 29.71"}).empty(); }, 5s));

  EXPECT_EQ(run_command({"/nonexistent/binary"}).exit_code, 127);
}

TEST(HarnessTest, WrapperBinDirDelaysStartAndRecordsItsSleep) {
  Cluster cluster;
  WrapperBinDir wrapper;
  wrapper.set_start_delay(1.0);
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_command(as_postgres({wrapper.path() + "/pg_ctl", "start", "-D", cluster.data_dir(), "-l",
                                          cluster.log_file(), "-w", "-t", "30", "-s"}),
                             60s);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(cluster.is_running());
  EXPECT_EQ(wrapper.invocations("start"), 1);
  ASSERT_EQ(wrapper.sleep_pids().size(), 1u);
  EXPECT_FALSE(process_alive(wrapper.sleep_pids()[0]));
  // The wrapper's other binaries are the real ones.
  const auto ver = run_command({wrapper.path() + "/postgres", "--version"});
  EXPECT_THAT(ver.out, HasSubstr("PostgreSQL"));
}

TEST(HarnessTest, WrapperHungStartDiesWithItsProcessGroup) {
  Cluster cluster;
  WrapperBinDir wrapper;
  wrapper.set_start_delay(std::nullopt);
  const auto r = run_command(as_postgres({wrapper.path() + "/pg_ctl", "start", "-D", cluster.data_dir(), "-l",
                                          cluster.log_file(), "-w", "-s"}),
                             1500ms);
  EXPECT_TRUE(r.timed_out);
  ASSERT_EQ(wrapper.sleep_pids().size(), 1u);
  EXPECT_TRUE(wait_until([&] { return !process_alive(wrapper.sleep_pids()[0]); }, 5s));
  ASSERT_EQ(wrapper.invocation_pids("start").size(), 1u);
  // The group's SIGKILL reaches the sleep and the wrapper shell in no set order.
  const pid_t start_pid = wrapper.invocation_pids("start")[0];
  EXPECT_TRUE(wait_until([&] { return !process_alive(start_pid); }, 5s));
  EXPECT_FALSE(cluster.is_running());
}

TEST(HarnessTest, PsqlAndPgbenchRunDirectly) {
  Cluster cluster;
  cluster.start();
  const auto p = psql(cluster.conninfo_direct(), "select 40 + 2");
  ASSERT_EQ(p.exit_code, 0) << p.describe();
  EXPECT_EQ(p.out, "42\n");
  EXPECT_NE(psql(cluster.conninfo_direct(), "selec 1").exit_code, 0);

  const auto init = run_command({"pgbench", "-i", "-s", "1", "-q", cluster.conninfo_direct()}, 60s);
  ASSERT_EQ(init.exit_code, 0) << init.describe();
  const auto run = run_command(
      {"pgbench", "-M", "prepared", "-c", "2", "-j", "2", "-T", "1", cluster.conninfo_direct()}, 60s);
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  const auto summary = parse_pgbench(run.out);
  EXPECT_TRUE(summary.parsed) << run.out;
  EXPECT_GT(summary.processed, 0);
  EXPECT_EQ(summary.failed, 0);
  EXPECT_GT(summary.tps, 0);
}

TEST(HarnessTest, SplitsBackendMessagesAndKeepsAPartialOne) {
  const std::string error_body = std::string("SFATAL") + '\0' + "VFATAL" + '\0' + "C08P01" + '\0' +
                                 "Minvalid startup packet" + '\0' + "Dwhy" + '\0' + '\0';
  const std::string bytes = "E" + be32(static_cast<std::uint32_t>(error_body.size() + 4)) + error_body + "Z" + be32(5) +
                            "I" + "Z" + be32(5);
  const auto messages = split_backend_messages(bytes);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].type, 'Z');
  const auto e = first_error(bytes);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->sqlstate, "08P01");
  EXPECT_EQ(e->message, "invalid startup packet");
  EXPECT_EQ(e->detail, "why");
}

}  // namespace
}  // namespace pgnap::it
