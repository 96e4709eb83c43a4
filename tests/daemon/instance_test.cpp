// The instance lifecycle against a scripted backend: one wake for many clients, bounded
// queue, deadlines, backoff, idle suspend, min_awake, arrivals while suspending, deaths,
// shutdown. Real PostgreSQL is exercised by tests/integration; here only the state machine.
//
// Assertions are about outcomes and call counts, never about how long something took:
// durations only make the scripted backend slow enough to create the situation tested.
#include "daemon/instance.h"

#include <chrono>
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "protocol/encode.h"

namespace pgnap::daemon {
namespace {

using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
namespace sqlstate = protocol::sqlstate;
// Clients as named objects: a braced temporary as a coroutine's argument is destroyed twice by GCC 12.
const ClientIdentity kClient_c{"u", "db", "", "c"};
const ClientIdentity kClient_c1{"u", "db", "", "c1"};
const ClientIdentity kClient_c2{"u", "db", "", "c2"};
const ClientIdentity kClient_c3{"u", "db", "", "c3"};

// gtest's ASSERT_* return from the function, which a coroutine cannot do.
#define CO_ASSERT_TRUE(cond)                       \
  do {                                             \
    if (!(cond)) {                                 \
      ADD_FAILURE() << "assertion failed: " #cond; \
      co_return;                                   \
    }                                              \
  } while (0)
#define CO_ASSERT_FALSE(cond) CO_ASSERT_TRUE(!(cond))

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

class FakeBackend final : public backends::Backend {
 public:
  std::chrono::milliseconds start_delay = 30ms;
  bool start_fails = false;
  bool start_hangs = false;
  std::chrono::milliseconds stop_delay = 10ms;
  bool running = false;
  int starts = 0;
  int stops = 0;

  std::string_view driver() const override { return "fake"; }
  asio::awaitable<backends::Status> status() override {
    co_return backends::Status{running ? backends::RunState::kRunning : backends::RunState::kStopped, {}};
  }
  asio::awaitable<backends::Outcome> start(Clock::time_point deadline) override {
    ++starts;
    if (start_hangs) {
      co_await sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()) + 1h);
    }
    co_await sleep_for(start_delay);
    if (start_fails) co_return backends::Outcome::failure("FATAL: invalid value for parameter \"shared_buffers\"");
    running = true;
    co_return backends::Outcome::success();
  }
  asio::awaitable<backends::Outcome> stop(Clock::time_point) override {
    ++stops;
    co_await sleep_for(stop_delay);
    running = false;
    co_return backends::Outcome::success();
  }
  asio::awaitable<backends::ProbeResult> probe(backends::ProbeTarget, std::chrono::milliseconds) override {
    co_return backends::ProbeResult{running, running ? "ready" : "refused"};
  }
  std::vector<std::string> describe() const override { return {}; }
};

config::InstanceConfig test_config() {
  config::InstanceConfig c;
  c.name = "main";
  c.backend = "fake";
  c.address.kind = config::BackendAddress::Kind::kUnix;
  c.address.socket_dir = "/nonexistent";
  c.idle_timeout = 50ms;
  c.min_awake = 0ms;
  c.wake_timeout = 2s;
  c.max_waiting = 100;
  return c;
}

InstanceTuning fast_tuning() {
  InstanceTuning t;
  t.backoff_initial = 100ms;
  t.backoff_max = 400ms;
  t.stop_timeout = 2s;
  t.adopt_probe_timeout = 100ms;
  return t;
}

struct InstanceTest : ::testing::Test {
  asio::io_context io;
  FakeBackend* backend = nullptr;
  std::unique_ptr<Instance> instance;

  void make(config::InstanceConfig config = test_config(), InstanceTuning tuning = fast_tuning()) {
    auto b = std::make_unique<FakeBackend>();
    backend = b.get();
    instance = std::make_unique<Instance>(io.get_executor(), std::move(config), std::move(b), tuning);
  }

  // Runs `body` to completion (bounded, so a hang fails instead of blocking the suite).
  template <typename F>
  void run(F body) {
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await body();
          done = true;
          instance->begin_shutdown();
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run_for(20s);
    ASSERT_TRUE(done) << "the scenario did not finish";
  }
};

bool admitted(const Admission& a) { return std::holds_alternative<Lease>(a); }
std::string_view code(const Admission& a) {
  return admitted(a) ? std::string_view("ok") : std::get<Refusal>(a).error.sqlstate;
}

TEST_F(InstanceTest, AdoptsARunningServerAsAwakeWithoutStartingIt) {
  make();
  backend->running = true;
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    EXPECT_EQ(instance->state(), InstanceState::kAwake);
    auto a = co_await instance->acquire(kClient_c1);
    EXPECT_TRUE(admitted(a));
  });
  EXPECT_EQ(backend->starts, 0);
  EXPECT_EQ(backend->stops, 0) << "adoption must never stop a running database";
}

TEST_F(InstanceTest, OneWakeForManyWaiters) {
  make();
  std::vector<Admission> results;
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    EXPECT_EQ(instance->state(), InstanceState::kAsleep);
    auto executor = co_await asio::this_coro::executor;
    int finished = 0;
    for (int i = 0; i < 20; ++i) {
      asio::co_spawn(
          executor,
          [&]() -> asio::awaitable<void> {
            auto a = co_await instance->acquire(kClient_c);
            results.push_back(std::move(a));
            ++finished;
          },
          asio::detached);
    }
    co_await sleep_for(5ms);
    EXPECT_EQ(instance->state(), InstanceState::kWaking);
    EXPECT_EQ(instance->waiting(), 20u);
    while (finished < 20) co_await sleep_for(5ms);
    EXPECT_EQ(instance->sessions(), 20u);
    results.clear();
    EXPECT_EQ(instance->sessions(), 0u);
  });
  EXPECT_EQ(backend->starts, 1);
}

TEST_F(InstanceTest, QueueBeyondMaxWaitingIsRefusedWith53300) {
  auto config = test_config();
  config.max_waiting = 2;
  make(config);
  std::vector<std::string> codes;
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    auto executor = co_await asio::this_coro::executor;
    for (int i = 0; i < 5; ++i) {
      asio::co_spawn(
          executor,
          [&]() -> asio::awaitable<void> {
            auto a = co_await instance->acquire(kClient_c);
            codes.emplace_back(code(a));
          },
          asio::detached);
    }
    while (codes.size() < 5) co_await sleep_for(5ms);
  });
  EXPECT_EQ(std::count(codes.begin(), codes.end(), "ok"), 2);
  EXPECT_EQ(std::count(codes.begin(), codes.end(), sqlstate::kTooManyConnections), 3);
  EXPECT_EQ(backend->starts, 1);
}

TEST_F(InstanceTest, WakeThatHangsIsRefusedAtWakeTimeoutAndCleanedUp) {
  auto config = test_config();
  config.wake_timeout = 200ms;
  make(config);
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    backend->start_hangs = true;
    auto a = co_await instance->acquire(kClient_c);
    CO_ASSERT_FALSE(admitted(a));
    EXPECT_EQ(std::get<Refusal>(a).error.sqlstate, sqlstate::kCannotConnectNow);
    EXPECT_EQ(std::get<Refusal>(a).error.message, "instance \"main\" could not be started");
    // The wake itself gives up too: the instance is failed, not waking forever.
    while (instance->state() == InstanceState::kWaking) co_await sleep_for(10ms);
    EXPECT_EQ(instance->state(), InstanceState::kFailed);
  });
}

TEST_F(InstanceTest, FailedWakeReportsWhyThenBacksOffThenRetries) {
  make();
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    backend->start_fails = true;
    auto first = co_await instance->acquire(kClient_c1);
    CO_ASSERT_FALSE(admitted(first));
    const auto& r = std::get<Refusal>(first);
    EXPECT_EQ(r.error.sqlstate, sqlstate::kCannotConnectNow);
    EXPECT_NE(r.error.detail.find("shared_buffers"), std::string::npos) << r.error.detail;
    EXPECT_EQ(instance->state(), InstanceState::kFailed);

    // Within the backoff: refused at once with the same reason, and no new start.
    auto second = co_await instance->acquire(kClient_c2);
    CO_ASSERT_FALSE(admitted(second));
    EXPECT_NE(std::get<Refusal>(second).error.detail.find("shared_buffers"), std::string::npos);
    EXPECT_NE(std::get<Refusal>(second).error.hint.find("tries again"), std::string::npos);
    EXPECT_EQ(backend->starts, 1);

    // The cause is fixed; after the backoff the next client wakes it.
    backend->start_fails = false;
    co_await sleep_for(150ms);
    auto third = co_await instance->acquire(kClient_c3);
    EXPECT_TRUE(admitted(third));
    EXPECT_EQ(backend->starts, 2);
  });
}

TEST_F(InstanceTest, BackoffDoublesPerConsecutiveFailure) {
  make();
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    backend->start_fails = true;
    (void)co_await instance->acquire(kClient_c);
    co_await sleep_for(120ms);  // first backoff: 100 ms
    (void)co_await instance->acquire(kClient_c);
    EXPECT_EQ(backend->starts, 2);
    co_await sleep_for(120ms);  // second backoff: 200 ms, not over yet
    (void)co_await instance->acquire(kClient_c);
    EXPECT_EQ(backend->starts, 2);
    co_await sleep_for(120ms);
    (void)co_await instance->acquire(kClient_c);
    EXPECT_EQ(backend->starts, 3);
  });
}

TEST_F(InstanceTest, SuspendsAfterIdleTimeoutOnceTheLastSessionLeaves) {
  make();
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    {
      auto a = co_await instance->acquire(kClient_c);
      CO_ASSERT_TRUE(admitted(a));
      co_await sleep_for(200ms);  // 4 x idle_timeout with a session attached
      EXPECT_EQ(backend->stops, 0) << "never suspend with a session attached";
      EXPECT_EQ(instance->state(), InstanceState::kAwake);
    }
    while (instance->state() != InstanceState::kAsleep) co_await sleep_for(10ms);
    EXPECT_EQ(backend->stops, 1);
    EXPECT_FALSE(backend->running);
    EXPECT_EQ(instance->metrics().suspends("idle"), 1u);
    EXPECT_EQ(instance->metrics().state(), "asleep");
    EXPECT_EQ(instance->metrics().wakes("ok"), 1u);
    EXPECT_EQ(instance->metrics().sessions_total(), 1u);
    EXPECT_EQ(instance->metrics().sessions(), 0u);
  });
}

TEST_F(InstanceTest, MinAwakeDelaysTheSuspend) {
  auto config = test_config();
  config.idle_timeout = 10ms;
  config.min_awake = 400ms;
  make(config);
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    { auto a = co_await instance->acquire(kClient_c); }
    co_await sleep_for(100ms);
    // Awake for at most ~130 ms < min_awake: whatever the machine's speed, not stopped yet.
    EXPECT_EQ(backend->stops, 0);
    while (instance->state() != InstanceState::kAsleep) co_await sleep_for(10ms);
    EXPECT_EQ(backend->stops, 1);
  });
}

TEST_F(InstanceTest, ClientArrivingWhileSuspendingIsServedAfterTheStop) {
  make();
  backend->stop_delay = 200ms;
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    { auto a = co_await instance->acquire(kClient_c1); }
    while (instance->state() != InstanceState::kSuspending) co_await sleep_for(2ms);
    auto late = co_await instance->acquire(kClient_c2);
    EXPECT_TRUE(admitted(late));
    EXPECT_EQ(backend->stops, 1);
    EXPECT_EQ(backend->starts, 2) << "the stop finishes, then a fresh start serves the client";
  });
}

TEST_F(InstanceTest, AServerThatDiedIsWokenForTheNextClient) {
  make();
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    auto a = co_await instance->acquire(kClient_c1);
    CO_ASSERT_TRUE(admitted(a));
    backend->running = false;  // killed behind pgnap's back
    instance->report_unreachable("connection refused");
    EXPECT_EQ(instance->state(), InstanceState::kAsleep);
    EXPECT_EQ(instance->metrics().unexpected_stops(), 1u);
    auto b = co_await instance->acquire(kClient_c2);
    EXPECT_TRUE(admitted(b));
    EXPECT_EQ(backend->starts, 2);
  });
}

TEST_F(InstanceTest, AClientThatGivesUpLeavesTheQueueAndTheWakeCompletes) {
  make();
  backend->start_delay = 200ms;
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    asio::steady_timer give_up(co_await asio::this_coro::executor, 30ms);
    auto r = co_await (instance->acquire(kClient_c) || give_up.async_wait(asio::as_tuple(asio::use_awaitable)));
    // Admission is a variant, which operator|| flattens: the timer is the third alternative.
    EXPECT_TRUE((std::holds_alternative<std::tuple<boost::system::error_code>>(r)));
    EXPECT_EQ(instance->waiting(), 0u);
    EXPECT_EQ(instance->state(), InstanceState::kWaking);
    while (instance->state() == InstanceState::kWaking) co_await sleep_for(10ms);
    EXPECT_EQ(instance->state(), InstanceState::kAwake);
    EXPECT_EQ(instance->sessions(), 0u);
  });
}

TEST_F(InstanceTest, ShutdownReleasesWaitersWith57P01) {
  make();
  backend->start_delay = 500ms;
  std::vector<std::string> codes;
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    auto executor = co_await asio::this_coro::executor;
    for (int i = 0; i < 3; ++i) {
      asio::co_spawn(
          executor,
          [&]() -> asio::awaitable<void> {
            auto a = co_await instance->acquire(kClient_c);
            codes.emplace_back(code(a));
          },
          asio::detached);
    }
    co_await sleep_for(20ms);
    instance->begin_shutdown();
    while (codes.size() < 3) co_await sleep_for(5ms);
    auto late = co_await instance->acquire(kClient_c);
    EXPECT_EQ(code(late), sqlstate::kAdminShutdown);
  });
  EXPECT_EQ(codes, std::vector<std::string>(3, std::string(sqlstate::kAdminShutdown)));
}

// ---- Idle sessions (idle_session_timeout) ----------------------------------------------------

// A session as its relay would describe it; closing it releases its lease, as a session does.
struct FakeSession {
  Lease lease;
  SessionActivity activity;
  bool closed = false;

  void watch(Instance& instance) {
    activity.last_traffic = Clock::now();
    activity.close = [this] {
      closed = true;
      lease.release();
    };
    instance.watch_session(&activity);
  }
};

// Generous against the 20 ms steps below: only a stall of 400 ms could look like idleness.
config::InstanceConfig idle_session_config() {
  auto config = test_config();
  config.idle_timeout = 200ms;
  config.idle_session_timeout = 200ms;
  return config;
}

TEST_F(InstanceTest, SessionsAtRestWithoutTrafficAreClosedThenItSuspends) {
  make(idle_session_config());
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    FakeSession one;
    FakeSession two;
    for (FakeSession* s : {&one, &two}) {
      auto a = co_await instance->acquire(kClient_c);
      CO_ASSERT_TRUE(admitted(a));
      s->lease = std::move(std::get<Lease>(a));
      s->watch(*instance);
      s->activity.at_rest = true;
    }
    // Traffic on one of them holds the instance awake for as long as it goes on.
    for (int i = 0; i < 15; ++i) {
      two.activity.last_traffic = Clock::now();
      co_await sleep_for(20ms);
    }
    EXPECT_EQ(backend->stops, 0) << "suspended under a session with traffic";
    EXPECT_FALSE(one.closed);
    while (instance->state() != InstanceState::kAsleep) co_await sleep_for(10ms);
    EXPECT_TRUE(one.closed);
    EXPECT_TRUE(two.closed);
    EXPECT_EQ(backend->stops, 1);
    EXPECT_EQ(instance->metrics().idle_sessions_closed(), 2u);
    instance->unwatch_session(&one.activity);
    instance->unwatch_session(&two.activity);
  });
}

TEST_F(InstanceTest, ASessionInUseOrListeningKeepsEveryIdleSessionOpen) {
  make(idle_session_config());
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    FakeSession idle;
    FakeSession busy;
    for (FakeSession* s : {&idle, &busy}) {
      auto a = co_await instance->acquire(kClient_c);
      CO_ASSERT_TRUE(admitted(a));
      s->lease = std::move(std::get<Lease>(a));
      s->watch(*instance);
    }
    idle.activity.at_rest = true;
    busy.activity.at_rest = false;  // in a transaction, or a query in flight
    co_await sleep_for(300ms);
    EXPECT_EQ(backend->stops, 0);
    EXPECT_FALSE(idle.closed);

    busy.activity.at_rest = true;
    busy.activity.listening = true;  // a LISTEN: kept by default
    co_await sleep_for(300ms);
    EXPECT_EQ(backend->stops, 0);
    EXPECT_FALSE(idle.closed);

    busy.activity.listening = false;
    while (instance->state() != InstanceState::kAsleep) co_await sleep_for(10ms);
    EXPECT_TRUE(idle.closed);
    EXPECT_TRUE(busy.closed);
    instance->unwatch_session(&idle.activity);
    instance->unwatch_session(&busy.activity);
  });
}

// A session that can park: asked, it gives its lease back (and is no longer watched), as a
// gateway session does once its state is captured; `refuse` stands for a capture that found
// a temporary table.
struct FakeParkingSession : FakeSession {
  bool parked = false;
  bool refuse = false;
  Instance* instance = nullptr;

  void watch_parkable(Instance& i) {
    instance = &i;
    watch(i);
    activity.park = [this] {
      if (refuse) {
        activity.park_refused_at = activity.last_traffic;  // not asked again before its next traffic
        return false;
      }
      parked = true;
      instance->unwatch_session(&activity);
      lease.release();
      return true;
    };
  }
};

TEST_F(InstanceTest, IdleSessionsThatCanParkAreParkedOneByOneAndThoseThatCannotAreClosedThenItSuspends) {
  make(idle_session_config());
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    FakeParkingSession quiet;
    FakeParkingSession busy;
    FakeParkingSession temp;
    for (FakeParkingSession* s : {&quiet, &busy, &temp}) {
      auto a = co_await instance->acquire(kClient_c);
      CO_ASSERT_TRUE(admitted(a));
      s->lease = std::move(std::get<Lease>(a));
      s->watch_parkable(*instance);
      s->activity.at_rest = true;
    }
    temp.refuse = true;
    // The quiet one parks while the other one's traffic goes on: parking is per session.
    for (int i = 0; i < 20 && !quiet.parked; ++i) {
      busy.activity.last_traffic = Clock::now();
      co_await sleep_for(20ms);
    }
    EXPECT_TRUE(quiet.parked);
    EXPECT_FALSE(busy.parked);
    EXPECT_FALSE(temp.closed) << "closed while another session had traffic";
    EXPECT_EQ(backend->stops, 0);
    // Then the busy one parks too, the one that cannot is closed, and the instance sleeps.
    while (instance->state() != InstanceState::kAsleep) co_await sleep_for(10ms);
    EXPECT_TRUE(busy.parked);
    EXPECT_FALSE(temp.parked);
    EXPECT_TRUE(temp.closed);
    EXPECT_EQ(instance->metrics().idle_sessions_closed(), 1u);
    instance->unwatch_session(&temp.activity);
  });
}

TEST_F(InstanceTest, IdleSessionTimeoutZeroNeverClosesSessions) {
  auto config = test_config();
  config.idle_session_timeout = 0ms;
  make(config);
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    FakeSession s;
    auto a = co_await instance->acquire(kClient_c);
    CO_ASSERT_TRUE(admitted(a));
    s.lease = std::move(std::get<Lease>(a));
    s.watch(*instance);
    s.activity.at_rest = true;
    co_await sleep_for(300ms);
    EXPECT_FALSE(s.closed);
    EXPECT_EQ(backend->stops, 0);
    instance->unwatch_session(&s.activity);
  });
}

// ---- issue 16: wake rules, holds, manual control, status ----

const ClientIdentity kMonitor{"monitor", "db", "uptime-kuma", "10.1.2.3:5000"};

config::InstanceConfig config_ignoring_monitors() {
  auto c = test_config();
  config::WakeIgnoreRule by_app;
  by_app.application_name = "uptime*";
  c.wake.ignore.push_back(by_app);
  return c;
}

TEST_F(InstanceTest, AnIgnoredClientIsRefusedWhileAsleepAndAdmittedWhileAwake) {
  make(config_ignoring_monitors());
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    for (int i = 0; i < 5; ++i) {
      auto refused = co_await instance->acquire(kMonitor, "connect");
      CO_ASSERT_TRUE(std::holds_alternative<Refusal>(refused));
      const Refusal& r = std::get<Refusal>(refused);
      EXPECT_EQ(r.kind, Refusal::Kind::kNotWokenForClient);
      EXPECT_EQ(r.error.sqlstate, "57P03");
      EXPECT_EQ(r.error.message, "instance \"main\" is asleep and is not woken for this client");
      EXPECT_NE(r.error.detail.find("application_name = \"uptime*\""), std::string::npos) << r.error.detail;
    }
    EXPECT_EQ(backend->starts, 0);
    EXPECT_EQ(instance->metrics().wakes_ignored(), 5u);
    auto woken = co_await instance->acquire(kClient_c, "connect");
    CO_ASSERT_TRUE(admitted(woken));
    auto served = co_await instance->acquire(kMonitor, "connect");
    EXPECT_TRUE(admitted(served));
    EXPECT_EQ(backend->starts, 1);
  });
}

TEST_F(InstanceTest, AManualWakeHoldsItPastIdleTimeoutThenItSuspendsAndRecordsTheCause) {
  make();
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    const auto outcome = co_await instance->wake_manually(400ms, "uid 1000");
    EXPECT_TRUE(outcome.ok) << outcome.message;
    EXPECT_EQ(instance->state(), InstanceState::kAwake);
    const auto status = instance->status();
    CO_ASSERT_TRUE(status.last_wake.has_value());
    EXPECT_EQ(status.last_wake->cause, WakeCause::kManual);
    EXPECT_EQ(status.last_wake->detail, "uid 1000");
    CO_ASSERT_TRUE(!status.next.empty());
    EXPECT_EQ(status.next.front().what, "stay awake until");
    co_await sleep_for(200ms);  // past idle_timeout (50 ms), inside the hold
    EXPECT_EQ(instance->state(), InstanceState::kAwake);
    for (int i = 0; i < 100 && instance->state() != InstanceState::kAsleep; ++i) co_await sleep_for(20ms);
    EXPECT_EQ(instance->state(), InstanceState::kAsleep);
    EXPECT_EQ(backend->stops, 1);
  });
}

TEST_F(InstanceTest, AManualSleepIsRefusedWhileASessionIsInUseAndNamesIt) {
  make();
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    auto lease = co_await instance->acquire(kClient_c, "connect");
    CO_ASSERT_TRUE(admitted(lease));
    SessionActivity busy;
    busy.busy = true;
    busy.last_traffic = Clock::now();
    SessionEntry entry;
    entry.id = 42;
    entry.client = kClient_c;
    entry.connected_at = Clock::now();
    entry.activity = &busy;
    instance->register_session(&entry);
    instance->watch_session(&busy);
    const auto refused = instance->sleep_manually("uid 0");
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.blocking, std::vector<std::uint64_t>{42});
    const auto status = instance->status();
    CO_ASSERT_TRUE(status.sessions.size() == 1);
    EXPECT_EQ(status.sessions[0].state, "active");
    EXPECT_TRUE(status.sessions[0].keeps_awake);
    EXPECT_EQ(instance->state(), InstanceState::kAwake);
    // At rest now: the sleep closes it and suspends once it has gone.
    busy.busy = false;
    busy.at_rest = true;
    bool closed = false;
    busy.close = [&] { closed = true; };
    const auto accepted = instance->sleep_manually("uid 0");
    EXPECT_TRUE(accepted.ok) << accepted.message;
    EXPECT_TRUE(closed);
    instance->unwatch_session(&busy);
    instance->unregister_session(&entry);
    std::get<Lease>(lease).release();
    for (int i = 0; i < 50 && instance->state() != InstanceState::kAsleep; ++i) co_await sleep_for(20ms);
    EXPECT_EQ(instance->state(), InstanceState::kAsleep);
  });
}

TEST_F(InstanceTest, AnIgnoredClientsSessionNeverKeepsItAwake) {
  auto c = config_ignoring_monitors();
  c.idle_session_timeout = 0ms;  // open sessions keep it awake, except ignored ones
  make(c);
  run([&]() -> asio::awaitable<void> {
    co_await instance->adopt();
    auto woken = co_await instance->acquire(kClient_c, "connect");
    CO_ASSERT_TRUE(admitted(woken));
    std::get<Lease>(woken).release();
    auto lease = co_await instance->acquire(kMonitor, "connect");
    CO_ASSERT_TRUE(admitted(lease));
    SessionActivity monitor;
    monitor.busy = true;  // even running queries
    monitor.ignored = true;
    monitor.last_traffic = Clock::now();
    bool closed = false;
    monitor.close = [&] {
      closed = true;
      std::get<Lease>(lease).release();
    };
    instance->watch_session(&monitor);
    for (int i = 0; i < 100 && !closed; ++i) co_await sleep_for(20ms);
    EXPECT_TRUE(closed) << "the ignored session was not closed for the suspend";
    instance->unwatch_session(&monitor);
    for (int i = 0; i < 50 && instance->state() != InstanceState::kAsleep; ++i) co_await sleep_for(20ms);
    EXPECT_EQ(instance->state(), InstanceState::kAsleep);
  });
}

}  // namespace
}  // namespace pgnap::daemon
