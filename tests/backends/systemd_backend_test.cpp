// The systemd driver without systemd: unit names, the D-Bus calls it makes, what its errors
// tell an operator, and what happens when no system bus is reachable. Against a real D-Bus
// daemon and a fake systemd: tests/integration/systemd_backend_test.cpp.
#include "backends/systemd_backend.h"

#include <stdlib.h>

#include <chrono>
#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace pgnap::backends {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ExplainBusError, AccessDeniedNamesThePolkitActionAndTheUser) {
  const std::string text = explain_bus_error("org.freedesktop.DBus.Error.AccessDenied", "Access denied",
                                             "postgresql@15-main.service", "start");
  EXPECT_THAT(text, HasSubstr("permission denied to start postgresql@15-main.service"));
  EXPECT_THAT(text, HasSubstr("Access denied"));
  EXPECT_THAT(text, HasSubstr("polkit"));
  EXPECT_THAT(text, HasSubstr("org.freedesktop.systemd1.manage-units"));
  EXPECT_THAT(text, HasSubstr("OS user \""));
  EXPECT_THAT(text, HasSubstr("root"));
}

TEST(ExplainBusError, InteractiveAuthorizationRequiredIsAPermissionProblemToo) {
  // What systemd answers when polkit would have asked for a password.
  const std::string text = explain_bus_error("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
                                             "Interactive authentication required.", "postgresql@15-main.service",
                                             "stop");
  EXPECT_THAT(text, AllOf(HasSubstr("permission denied to stop"), HasSubstr("org.freedesktop.systemd1.manage-units")));
}

TEST(ExplainBusError, NoSuchUnitSaysWhichUnitAndHowToLook) {
  const std::string text = explain_bus_error("org.freedesktop.systemd1.NoSuchUnit",
                                             "Unit postgresql@15-mian.service not found.", "postgresql@15-mian.service",
                                             "start");
  EXPECT_THAT(text, HasSubstr("systemd has no unit postgresql@15-mian.service"));
  EXPECT_THAT(text, HasSubstr("systemctl status postgresql@15-mian.service"));
  EXPECT_THAT(text, Not(HasSubstr("polkit")));
}

TEST(ExplainBusError, NoSystemdOnTheBusAsksWhetherThisIsASystemdHost) {
  const std::string text = explain_bus_error("org.freedesktop.DBus.Error.ServiceUnknown",
                                             "The name org.freedesktop.systemd1 was not provided by any .service files",
                                             "postgresql@15-main.service", "inspect");
  EXPECT_THAT(text, HasSubstr("systemd did not answer on the system bus"));
  EXPECT_THAT(text, HasSubstr("ServiceUnknown"));
}

TEST(ExplainBusError, AnyOtherErrorIsShownWithItsNameAndMessage) {
  const std::string text = explain_bus_error("org.freedesktop.systemd1.UnitMasked", "Unit x.service is masked.",
                                             "x.service", "start");
  EXPECT_EQ(text, "systemd refused to start x.service: org.freedesktop.systemd1.UnitMasked: Unit x.service is masked.");
}

TEST(SystemdBackendCalls, NameEveryMethodWithTheUnit) {
  SystemdBackend backend({.unit = "postgresql@15-main.service"});
  EXPECT_EQ(backend.driver(), "systemd");
  const auto calls = backend.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_THAT(calls[0], HasSubstr("org.freedesktop.systemd1.Manager.StartUnit(\"postgresql@15-main.service\", "
                                  "\"replace\")"));
  EXPECT_THAT(calls[0], HasSubstr("JobRemoved"));
  EXPECT_THAT(calls[1], HasSubstr("org.freedesktop.systemd1.Manager.StopUnit(\"postgresql@15-main.service\", "
                                  "\"replace\")"));
  EXPECT_THAT(calls[2], HasSubstr("LoadUnit(\"postgresql@15-main.service\")"));
  EXPECT_THAT(calls[2], HasSubstr("ActiveState"));
}

// Sets DBUS_SYSTEM_BUS_ADDRESS for one test and restores it after.
class BusAddress : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = ::getenv("DBUS_SYSTEM_BUS_ADDRESS")) saved_ = old;
  }
  void TearDown() override {
    if (saved_) {
      ::setenv("DBUS_SYSTEM_BUS_ADDRESS", saved_->c_str(), 1);
    } else {
      ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
    }
  }
  std::optional<std::string> saved_;
};

TEST_F(BusAddress, TheDefaultIsTheStandardSystemBusSocket) {
  ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
  EXPECT_EQ(system_bus_address(), "unix:path=/run/dbus/system_bus_socket");
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "", 1);
  EXPECT_EQ(system_bus_address(), "unix:path=/run/dbus/system_bus_socket");
}

TEST_F(BusAddress, TheEnvironmentOverridesItAndDescribeShowsIt) {
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/tmp/pgnap-test-bus", 1);
  EXPECT_EQ(system_bus_address(), "unix:path=/tmp/pgnap-test-bus");
  SystemdBackend backend({.unit = "x.service"});
  const auto lines = backend.describe();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "on the system bus at unix:path=/tmp/pgnap-test-bus");
}

template <typename T>
T run(asio::awaitable<T> operation) {
  asio::io_context io;
  auto future = asio::co_spawn(io, std::move(operation), asio::use_future);
  io.run();
  return future.get();
}

constexpr const char* kNoBus = "unix:path=/nonexistent/pgnap-test/system_bus_socket";

TEST_F(BusAddress, WithNoBusStatusIsUnknownAndSaysWhere) {
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", kNoBus, 1);
  SystemdBackend backend({.unit = "postgresql@15-main.service"});
  const auto t0 = std::chrono::steady_clock::now();
  const Status status = run(backend.status());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(status.state, RunState::kUnknown);
  EXPECT_THAT(status.detail, HasSubstr("cannot connect to the system bus (" + std::string(kNoBus) + ")"));
  EXPECT_THAT(status.detail, HasSubstr("No such file or directory"));
  EXPECT_THAT(status.detail, HasSubstr("dbus"));
}

TEST_F(BusAddress, WithNoBusStartAndStopFailAtOnceNamingTheAddress) {
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", kNoBus, 1);
  SystemdBackend backend({.unit = "postgresql@15-main.service"});
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  const auto t0 = std::chrono::steady_clock::now();
  const Outcome start = run(backend.start(deadline));
  const Outcome stop = run(backend.stop(deadline));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << "no bus is no reason to wait";
  for (const Outcome* o : {&start, &stop}) {
    EXPECT_FALSE(o->ok);
    EXPECT_THAT(o->detail, HasSubstr(kNoBus));
    EXPECT_THAT(o->detail, HasSubstr("cannot connect to the system bus"));
  }
}

TEST_F(BusAddress, AnAddressThatIsNotDBusIsReportedNotHung) {
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "nonsense-without-a-transport", 1);
  SystemdBackend backend({.unit = "x.service"});
  const Outcome start = run(backend.start(Clock::now() + std::chrono::seconds(5)));
  EXPECT_FALSE(start.ok);
  EXPECT_THAT(start.detail, HasSubstr("nonsense-without-a-transport"));
}

}  // namespace
}  // namespace pgnap::backends
