// The session pool's keys of [instances.NAME] (docs/pooling.md): their defaults, their bounds
// with the exact error texts, the check across them, and what `pgnap check` says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "config/config.h"
#include "tests/config/test_util.h"

namespace pgnap::config {
namespace {

using ::testing::HasSubstr;
using namespace test_util;
using namespace std::chrono;

TEST(ConfigPoolTest, DefaultsAreTwentyConnectionsNoneKeptAndDiscardAll) {
  const InstanceConfig i = parse(kMinimal).instances.at(0);
  EXPECT_EQ(i.pool_size, 20u);
  EXPECT_EQ(i.min_pool_size, 0u);
  EXPECT_EQ(i.server_idle_timeout, minutes(10));
  EXPECT_EQ(i.server_lifetime, hours(1));
  EXPECT_EQ(i.pool_wait_timeout, seconds(30));
  EXPECT_EQ(i.server_reset_query, "DISCARD ALL");
}

TEST(ConfigPoolTest, EveryKeyIsRead) {
  const InstanceConfig i = parse(minimal_with("pool_size = 5\nmin_pool_size = 2\nserver_idle_timeout = \"30s\"\n"
                                              "server_lifetime = \"2h\"\npool_wait_timeout = \"5s\"\n"
                                              "server_reset_query = \"RESET ALL\""))
                               .instances.at(0);
  EXPECT_EQ(i.pool_size, 5u);
  EXPECT_EQ(i.min_pool_size, 2u);
  EXPECT_EQ(i.server_idle_timeout, seconds(30));
  EXPECT_EQ(i.server_lifetime, hours(2));
  EXPECT_EQ(i.pool_wait_timeout, seconds(5));
  EXPECT_EQ(i.server_reset_query, "RESET ALL");
  EXPECT_EQ(parse(minimal_with("pool_size = 0")).instances.at(0).pool_size, 0u) << "0 turns pooling off";
  EXPECT_EQ(parse(minimal_with("server_reset_query = \"\"")).instances.at(0).server_reset_query, "");
}

TEST(ConfigPoolTest, BoundsAreCheckedWithTheKeysName) {
  EXPECT_EQ(error_of(minimal_with("pool_size = 10001")),
            "4:13: instances.main.pool_size: expected an integer between 0 and 10000, got 10001");
  EXPECT_EQ(error_of(minimal_with("pool_size = -1")),
            "4:13: instances.main.pool_size: expected an integer between 0 and 10000, got -1");
  EXPECT_THAT(error_of(minimal_with("pool_wait_timeout = \"0s\"")),
              HasSubstr("instances.main.pool_wait_timeout: expected a duration"));
  EXPECT_THAT(error_of(minimal_with("server_lifetime = 3600")), HasSubstr("instances.main.server_lifetime"));
}

TEST(ConfigPoolTest, MinPoolSizeAbovePoolSizeIsAnErrorAtItsKey) {
  EXPECT_EQ(error_of(minimal_with("pool_size = 4\nmin_pool_size = 5")),
            "5:17: instances.main.min_pool_size: expected at most pool_size (4), got 5");
}

TEST(ConfigPoolTest, CheckShowsThePoolInGatewayModeAndSaysWhyNotInPassthrough) {
  const std::string passthrough = describe_config(parse(kMinimal));
  EXPECT_THAT(passthrough, HasSubstr("pool              none (pooling needs auth.mode = \"gateway\")"));
  const std::string gateway = describe_config(parse(minimal_with("pool_size = 8\npool_wait_timeout = \"5s\"") +
                                                    "[instances.main.auth]\nmode = \"gateway\"\n"
                                                    "methods = [\"trust\"]\n"));
  EXPECT_THAT(gateway, HasSubstr("pool              session pooling, pool_size 8, min_pool_size 0"));
  EXPECT_THAT(gateway, HasSubstr("pool_wait_timeout 5s"));
  EXPECT_THAT(gateway, HasSubstr("server_reset_query DISCARD ALL"));
  const std::string off = describe_config(parse(minimal_with("pool_size = 0") +
                                                "[instances.main.auth]\nmode = \"gateway\"\n"
                                                "methods = [\"trust\"]\n"));
  EXPECT_THAT(off, HasSubstr("off (pool_size = 0)"));
}

TEST(ConfigPoolTest, ParkSessionsDefaultsToTrueAndCheckSaysWhenSessionsAreParked) {
  EXPECT_TRUE(parse(kMinimal).instances.at(0).park_sessions);
  EXPECT_FALSE(parse(minimal_with("park_sessions = false")).instances.at(0).park_sessions);
  EXPECT_THAT(error_of(minimal_with("park_sessions = \"yes\"")), HasSubstr("instances.main.park_sessions"));
  const std::string gateway_auth = "[instances.main.auth]\nmode = \"gateway\"\nmethods = [\"trust\"]\n";
  EXPECT_THAT(describe_config(parse(kMinimal)),
              HasSubstr("parking           none (needs auth.mode = \"gateway\"): idle sessions are closed"));
  const std::string on = describe_config(parse(minimal_with("idle_session_timeout = \"90s\"") + gateway_auth));
  EXPECT_THAT(on, HasSubstr("parking           a session idle for 90s is parked: its client stays connected"));
  EXPECT_THAT(on, HasSubstr("listeners as close_listeners says"));
  EXPECT_THAT(on, HasSubstr("custom settings   none read (park_custom_settings)"));
  const auto custom = parse(minimal_with("park_custom_settings = [\"app.tenant_id\", \"x.y.z\"]") + gateway_auth);
  EXPECT_EQ(custom.instances.at(0).park_custom_settings, (std::vector<std::string>{"app.tenant_id", "x.y.z"}));
  EXPECT_THAT(describe_config(custom), HasSubstr("custom settings   app.tenant_id, x.y.z (park_custom_settings)"));
  for (const char* bad : {"[\"plain\"]", "[\"app.\"]", "[\".x\"]", "[\"a b.c\"]", "[\"a.b\", \"a.b\"]", "\"app.x\""}) {
    EXPECT_THAT(error_of(minimal_with(std::string("park_custom_settings = ") + bad)),
                HasSubstr("instances.main.park_custom_settings"))
        << bad;
  }
  EXPECT_THAT(describe_config(parse(minimal_with("park_sessions = false") + gateway_auth)),
              HasSubstr("parking           off (park_sessions = false)"));
  EXPECT_THAT(describe_config(parse(minimal_with("idle_session_timeout = \"0s\"") + gateway_auth)),
              HasSubstr("parking           off (idle_session_timeout = 0s)"));
}

}  // namespace
}  // namespace pgnap::config
