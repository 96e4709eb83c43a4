// Everything a client does works through pgnap unchanged: pgbench with prepared statements,
// COPY both ways, LISTEN/NOTIFY, a 20 MB row, the extended protocol and pipelining, cancel.
//
// Each test runs twice: straight to PostgreSQL (the control: it proves the test itself is
// right) and through pgnap. A failure only in the second says pgnap changed something.
#include "tests/integration/harness.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <memory>
#include <ostream>
#include <string>

namespace pgnap::it {
namespace {

using ::testing::HasSubstr;

enum class Path { kDirect, kThroughPgnap };

const char* name(Path path) { return path == Path::kDirect ? "Direct" : "ThroughPgnap"; }
// For GoogleTest's messages and test names ("... # GetParam() = ThroughPgnap").
void PrintTo(Path path, std::ostream* os) { *os << name(path); }

class RelayTest : public ::testing::TestWithParam<Path> {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>();
    if (GetParam() == Path::kDirect) {
      cluster_->start();
      conninfo_ = cluster_->conninfo_direct();
      return;
    }
    auto options = GatewayOptions::for_cluster(*cluster_);
    options.idle_timeout = "1m";  // no suspend between the steps of a test
    gateway_ = std::make_unique<Gateway>(options, cluster_.get());
    conninfo_ = gateway_->conninfo();
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Gateway> gateway_;  // declared after cluster_: stopped before it
  std::string conninfo_;
};

// Waits (with a deadline) until `conn` has a complete result, then returns it.
PgResultPtr next_result(PGconn* conn, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PQisBusy(conn) != 0) {
    if (std::chrono::steady_clock::now() >= deadline) return nullptr;
    pollfd p{PQsocket(conn), POLLIN, 0};
    ::poll(&p, 1, 100);
    if (PQconsumeInput(conn) == 0) break;
  }
  return PgResultPtr(PQgetResult(conn));
}

TEST_P(RelayTest, PgbenchWithPreparedStatementsRunsWithoutFailures) {
  const auto init = run_command({"pgbench", "-i", "-s", "1", "-q", conninfo_}, 90s);
  ASSERT_EQ(init.exit_code, 0) << init.describe();

  const auto run = run_command({"pgbench", "-M", "prepared", "-c", "4", "-j", "2", "-T", "3", conninfo_}, 90s);
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  const auto summary = parse_pgbench(run.out);
  ASSERT_TRUE(summary.parsed) << run.out;
  EXPECT_GT(summary.processed, 0) << run.out;
  EXPECT_EQ(summary.failed, 0) << run.out;
}

TEST_P(RelayTest, CopyRoundTripOfTenThousandRows) {
  auto conn = connect_or_throw(conninfo_);
  ASSERT_TRUE(query(conn.get(), "create table copied(id int primary key, label text, note text)").ok);

  // COPY text format in its canonical form (what COPY TO writes back): escaped tab and
  // backslash, \N for NULL, multi-byte UTF-8.
  std::string sent;
  for (int i = 1; i <= 10000; ++i) {
    sent += std::to_string(i) + "\tlabel " + std::to_string(i) + "\t";
    sent += i % 100 == 0 ? "\\N" : "tab\\there, backslash \\\\, caf\xc3\xa9 " + std::to_string(i * 7);
    sent += "\n";
  }
  {
    PgResultPtr start(PQexec(conn.get(), "copy copied from stdin"));
    ASSERT_EQ(PQresultStatus(start.get()), PGRES_COPY_IN) << PQerrorMessage(conn.get());
    // Chunks that do not line up with rows, as a streaming client would send them.
    for (std::size_t at = 0; at < sent.size(); at += 7001) {
      const auto chunk = sent.substr(at, 7001);
      ASSERT_EQ(PQputCopyData(conn.get(), chunk.data(), static_cast<int>(chunk.size())), 1);
    }
    ASSERT_EQ(PQputCopyEnd(conn.get(), nullptr), 1);
    PgResultPtr done(PQgetResult(conn.get()));
    ASSERT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
    EXPECT_STREQ(PQcmdTuples(done.get()), "10000");
    while (PgResultPtr(PQgetResult(conn.get()))) {
    }
  }

  std::string received;
  {
    PgResultPtr start(PQexec(conn.get(), "copy (select * from copied order by id) to stdout"));
    ASSERT_EQ(PQresultStatus(start.get()), PGRES_COPY_OUT) << PQerrorMessage(conn.get());
    char* row = nullptr;
    int n = 0;
    while ((n = PQgetCopyData(conn.get(), &row, 0)) > 0) {
      received.append(row, static_cast<std::size_t>(n));
      PQfreemem(row);
    }
    ASSERT_EQ(n, -1) << PQerrorMessage(conn.get());
    PgResultPtr done(PQgetResult(conn.get()));
    EXPECT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK);
    while (PgResultPtr(PQgetResult(conn.get()))) {
    }
  }
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent) << "COPY TO returned different bytes than COPY FROM sent";
}

TEST_P(RelayTest, ListenNotifyAcrossTwoSessions) {
  auto listener = connect_or_throw(conninfo_);
  auto notifier = connect_or_throw(conninfo_);
  ASSERT_TRUE(query(listener.get(), "listen pgnap_channel").ok);
  const auto notifier_pid = query(notifier.get(), "select pg_backend_pid()");
  ASSERT_TRUE(notifier_pid.ok);
  ASSERT_TRUE(query(notifier.get(), "notify pgnap_channel, 'hello across sessions'").ok);

  std::unique_ptr<PGnotify, decltype(&PQfreemem)> note(nullptr, &PQfreemem);
  ASSERT_TRUE(wait_until(
      [&] {
        pollfd p{PQsocket(listener.get()), POLLIN, 0};
        ::poll(&p, 1, 50);
        PQconsumeInput(listener.get());
        note.reset(PQnotifies(listener.get()));
        return note != nullptr;
      },
      10s, 0ms))
      << "the notification never arrived";
  EXPECT_STREQ(note->relname, "pgnap_channel");
  EXPECT_STREQ(note->extra, "hello across sessions");
  EXPECT_EQ(std::to_string(note->be_pid), notifier_pid.value);
}

TEST_P(RelayTest, TwentyMegabyteValuesBothWays) {
  constexpr int kSize = 20'000'000;
  auto conn = connect_or_throw(conninfo_);

  PgResultPtr down(PQexec(conn.get(), "select repeat('x', 20000000)"));
  ASSERT_EQ(PQresultStatus(down.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(PQgetlength(down.get(), 0, 0), kSize);
  const char* value = PQgetvalue(down.get(), 0, 0);
  EXPECT_TRUE(std::all_of(value, value + kSize, [](char c) { return c == 'x'; }));

  const std::string big(kSize, 'y');
  const char* params[] = {big.c_str()};
  PgResultPtr up(PQexecParams(conn.get(), "select length($1::text), md5($1::text) = md5(repeat('y', 20000000))", 1,
                              nullptr, params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(up.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQgetvalue(up.get(), 0, 0), "20000000");
  EXPECT_STREQ(PQgetvalue(up.get(), 0, 1), "t");
}

TEST_P(RelayTest, ExtendedProtocolParametersPreparedStatementsAndPipelining) {
  auto conn = connect_or_throw(conninfo_);
  PGconn* c = conn.get();

  const char* add_params[] = {"40", "2"};
  PgResultPtr added(PQexecParams(c, "select $1::int + $2::int", 2, nullptr, add_params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(added.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
  EXPECT_STREQ(PQgetvalue(added.get(), 0, 0), "42");

  // A binary result: int4 42 in network byte order.
  PgResultPtr binary(PQexecParams(c, "select 42::int4", 0, nullptr, nullptr, nullptr, nullptr, 1));
  ASSERT_EQ(PQgetlength(binary.get(), 0, 0), 4);
  EXPECT_EQ(std::string(PQgetvalue(binary.get(), 0, 0), 4), be32(42));

  PgResultPtr prepared(PQprepare(c, "mul", "select $1::int * $2::int", 2, nullptr));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(c);
  PgResultPtr described(PQdescribePrepared(c, "mul"));
  EXPECT_EQ(PQnparams(described.get()), 2);
  for (int i = 1; i <= 20; ++i) {
    const std::string a = std::to_string(i);
    const char* mul_params[] = {a.c_str(), "3"};
    PgResultPtr r(PQexecPrepared(c, "mul", 2, mul_params, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
    EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), std::to_string(i * 3));
  }

  // An error in the extended protocol leaves the session usable.
  const char* zero[] = {"0"};
  PgResultPtr failed(PQexecParams(c, "select 1 / $1::int", 1, nullptr, zero, nullptr, nullptr, 0));
  EXPECT_EQ(result_error(failed.get(), c).sqlstate, "22012");
  EXPECT_EQ(query(c, "select 'usable'").value, "usable");

  // Pipeline mode: many Parse/Bind/Execute in flight before one Sync.
  constexpr int kQueries = 100;
  ASSERT_EQ(PQenterPipelineMode(c), 1);
  std::vector<std::string> values;
  for (int i = 0; i < kQueries; ++i) values.push_back(std::to_string(i));
  for (int i = 0; i < kQueries; ++i) {
    const char* p[] = {values[static_cast<std::size_t>(i)].c_str()};
    ASSERT_EQ(PQsendQueryParams(c, "select $1::int + 1000", 1, nullptr, p, nullptr, nullptr, 0), 1);
  }
  ASSERT_EQ(PQpipelineSync(c), 1);
  ASSERT_EQ(PQflush(c), 0);
  for (int i = 0; i < kQueries; ++i) {
    auto r = next_result(c, 10s);
    ASSERT_TRUE(r) << "pipeline result " << i << " never came";
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
    EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)), std::to_string(i + 1000));
    EXPECT_FALSE(next_result(c, 10s));  // the end of this query's results
  }
  auto sync = next_result(c, 10s);
  ASSERT_TRUE(sync);
  EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC);
  EXPECT_EQ(PQexitPipelineMode(c), 1);
}

TEST_P(RelayTest, CancelOfPgSleepArrivesWithinSeconds) {
  auto conn = connect_or_throw(conninfo_);
  ASSERT_EQ(PQsendQuery(conn.get(), "select pg_sleep(60)"), 1);

  // Cancel only once the sleep is running: a cancel that lands before it is (rightly) lost.
  auto monitor = connect_or_throw(cluster_->conninfo_direct());
  ASSERT_TRUE(wait_until(
      [&] {
        return query(monitor.get(),
                     "select count(*) from pg_stat_activity "
                     "where query = 'select pg_sleep(60)' and state = 'active'")
                   .value == "1";
      },
      10s, 50ms));

  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> cancel(PQgetCancel(conn.get()), &PQfreeCancel);
  ASSERT_TRUE(cancel);
  char errbuf[256] = {};
  ASSERT_EQ(PQcancel(cancel.get(), errbuf, sizeof errbuf), 1) << errbuf;

  auto result = next_result(conn.get(), 10s);
  ASSERT_TRUE(result) << "pg_sleep(60) was not cancelled within 10 s";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(PQresultStatus(result.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(result_error(result.get(), conn.get()).sqlstate, "57014");
  EXPECT_THAT(result_error(result.get(), conn.get()).message, HasSubstr("cancel"));
  while (next_result(conn.get(), 10s)) {
  }
  EXPECT_EQ(query(conn.get(), "select 'after cancel'").value, "after cancel");
}

INSTANTIATE_TEST_SUITE_P(, RelayTest, ::testing::Values(Path::kDirect, Path::kThroughPgnap),
                         [](const ::testing::TestParamInfo<Path>& info) { return std::string(name(info.param)); });

}  // namespace
}  // namespace pgnap::it
