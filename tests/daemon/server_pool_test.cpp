// What makes pooled connections shareable, and what a client's attach sets: the pool's key
// leaves out the parameters applied with SET, the pooled login omits them, and the SETs
// quote their values and skip those already in force. (The pool itself runs against a real
// PostgreSQL in tests/integration/server_pool_test.cpp.)
#include "daemon/server_pool.h"

#include <gtest/gtest.h>

namespace pgnap::daemon {
namespace {

protocol::StartupMessage startup(std::vector<std::pair<std::string, std::string>> parameters) {
  protocol::StartupMessage message;
  message.parameters = std::move(parameters);
  return message;
}

TEST(PoolKeyTest, TheParametersAppliedWithSetAreNotPartOfTheKey) {
  const auto a = startup({{"user", "app"}, {"database", "shop"}, {"application_name", "web"}, {"TimeZone", "UTC"}});
  const auto b = startup({{"user", "app"}, {"database", "shop"}, {"client_encoding", "LATIN1"}});
  EXPECT_EQ(pool_key(a), pool_key(b));
  EXPECT_EQ(pool_key(a).options, "");
}

TEST(PoolKeyTest, UserDatabaseAndOtherOptionsEachMakeAKeyOfTheirOwn) {
  const auto base = startup({{"user", "app"}, {"database", "shop"}});
  EXPECT_NE(pool_key(base), pool_key(startup({{"user", "other"}, {"database", "shop"}})));
  EXPECT_NE(pool_key(base), pool_key(startup({{"user", "app"}, {"database", "blog"}})));
  const auto with_options = startup({{"user", "app"}, {"database", "shop"}, {"options", "-c search_path=s1"}});
  EXPECT_NE(pool_key(base), pool_key(with_options));
  EXPECT_EQ(pool_key(with_options).options, "options=-c search_path=s1\n");
}

TEST(PoolKeyTest, TheOrderOfOtherOptionsDoesNotMatter) {
  const auto a = startup({{"user", "u"}, {"database", "d"}, {"extra_float_digits", "3"}, {"options", "-c x=1"}});
  const auto b = startup({{"user", "u"}, {"database", "d"}, {"options", "-c x=1"}, {"extra_float_digits", "3"}});
  EXPECT_EQ(pool_key(a), pool_key(b));
}

TEST(PooledStartupTest, ThePooledLoginOmitsTheParametersAppliedWithSet) {
  const auto client = startup({{"user", "app"},
                               {"database", "shop"},
                               {"application_name", "web"},
                               {"DateStyle", "ISO"},
                               {"extra_float_digits", "3"}});
  const auto pooled = pooled_startup(client);
  ASSERT_EQ(pooled.parameters.size(), 3u);
  EXPECT_EQ(pooled.parameters[0].first, "user");
  EXPECT_EQ(pooled.parameters[1].first, "database");
  EXPECT_EQ(pooled.parameters[2].first, "extra_float_digits");
}

TEST(SetStatementsTest, OnlyValuesThatDifferAreSetAndQuotesAreDoubled) {
  const auto client = startup(
      {{"user", "app"}, {"application_name", "it's mine"}, {"client_encoding", "UTF8"}, {"TimeZone", "Europe/Paris"}});
  const Parameters current{{"application_name", ""}, {"client_encoding", "UTF8"}, {"TimeZone", "UTC"}};
  EXPECT_EQ(set_statements(client, current), "SET application_name = 'it''s mine';SET TimeZone = 'Europe/Paris';");
}

TEST(SetStatementsTest, NothingToSetWhenTheClientAskedForNothingOrForWhatIsInForce) {
  const Parameters current{{"application_name", "web"}};
  EXPECT_EQ(set_statements(startup({{"user", "app"}}), current), "");
  EXPECT_EQ(set_statements(startup({{"user", "app"}, {"application_name", "web"}}), current), "");
}

}  // namespace
}  // namespace pgnap::daemon
