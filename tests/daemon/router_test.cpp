// Routing a client's database to the instance that serves it: explicit names, the "*"
// instance that takes every other name, and no instance at all. The instances are real
// Instance objects over a backend that does nothing: the router only reads their config.
#include "daemon/router.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "daemon/instance.h"

namespace pgnap::daemon {
namespace {

class InertBackend final : public backends::Backend {
 public:
  std::string_view driver() const override { return "inert"; }
  asio::awaitable<backends::Status> status() override { co_return backends::Status{backends::RunState::kStopped, {}}; }
  asio::awaitable<backends::Outcome> start(Clock::time_point) override { co_return backends::Outcome::success(); }
  asio::awaitable<backends::Outcome> stop(Clock::time_point) override { co_return backends::Outcome::success(); }
  asio::awaitable<backends::ProbeResult> probe(backends::ProbeTarget, std::chrono::milliseconds) override {
    co_return backends::ProbeResult{false, "inert"};
  }
  std::vector<std::string> describe() const override { return {}; }
};

struct RouterTest : ::testing::Test {
  asio::io_context io;
  std::vector<std::unique_ptr<Instance>> owned;

  Instance* instance(std::string name, std::vector<std::string> databases) {
    config::InstanceConfig config;
    config.name = std::move(name);
    config.databases = std::move(databases);
    config.backend = "inert";
    owned.push_back(std::make_unique<Instance>(io.get_executor(), std::move(config), std::make_unique<InertBackend>()));
    return owned.back().get();
  }
};

TEST_F(RouterTest, AnExplicitlyListedDatabaseGoesToItsInstance) {
  Instance* shop = instance("shop", {"shop", "shop_archive"});
  Instance* blog = instance("blog", {"blog"});
  const Router router(std::vector<Instance*>{shop, blog});
  EXPECT_EQ(router.route("shop"), shop);
  EXPECT_EQ(router.route("shop_archive"), shop);
  EXPECT_EQ(router.route("blog"), blog);
}

TEST_F(RouterTest, ADatabaseListedByNoInstanceGoesToTheStarInstance) {
  Instance* shop = instance("shop", {"shop"});
  Instance* rest = instance("rest", {"*"});
  const Router router(std::vector<Instance*>{shop, rest});
  EXPECT_EQ(router.route("analytics"), rest);
  EXPECT_EQ(router.route(""), rest);
  EXPECT_EQ(router.route("shop"), shop);
}

TEST_F(RouterTest, AnExplicitNameWinsOverTheStarWhicheverInstanceComesFirst) {
  Instance* rest = instance("rest", {"*"});
  Instance* shop = instance("shop", {"shop"});
  const Router router(std::vector<Instance*>{rest, shop});
  EXPECT_EQ(router.route("shop"), shop);
  EXPECT_EQ(router.route("other"), rest);
}

TEST_F(RouterTest, AnInstanceMayListNamesAndTheStarTogether) {
  Instance* main = instance("main", {"app", "*"});
  Instance* blog = instance("blog", {"blog"});
  const Router router(std::vector<Instance*>{main, blog});
  EXPECT_EQ(router.route("app"), main);
  EXPECT_EQ(router.route("anything"), main);
  EXPECT_EQ(router.route("blog"), blog);
}

TEST_F(RouterTest, WithoutAStarInstanceAnUnlistedDatabaseHasNoInstance) {
  Instance* shop = instance("shop", {"shop"});
  const Router router(std::vector<Instance*>{shop});
  EXPECT_EQ(router.route("blog"), nullptr);
  EXPECT_EQ(router.route(""), nullptr);
}

TEST_F(RouterTest, ADefaultConstructedRouterRoutesNothing) {
  const Router router;
  EXPECT_EQ(router.route("postgres"), nullptr);
  EXPECT_TRUE(router.served_names().empty());
}

TEST_F(RouterTest, ADatabaseLiterallyNamedStarIsNotAnExplicitName) {
  // "*" in the config means "every other name"; a client asking for a database called "*"
  // gets the default like any unlisted name, and no instance when there is no default.
  Instance* shop = instance("shop", {"shop"});
  const Router without_default(std::vector<Instance*>{shop});
  EXPECT_EQ(without_default.route("*"), nullptr);

  Instance* rest = instance("rest", {"*"});
  const Router with_default(std::vector<Instance*>{shop, rest});
  EXPECT_EQ(with_default.route("*"), rest);
}

TEST_F(RouterTest, NamesMatchExactlyAndCaseSensitivelyAsPostgreSQLDatabaseNames) {
  Instance* shop = instance("shop", {"Shop"});
  const Router router(std::vector<Instance*>{shop});
  EXPECT_EQ(router.route("Shop"), shop);
  EXPECT_EQ(router.route("shop"), nullptr);
  EXPECT_EQ(router.route("SHOP"), nullptr);
  EXPECT_EQ(router.route("Sho"), nullptr);
  EXPECT_EQ(router.route("Shop "), nullptr);
  EXPECT_EQ(router.route("Shops"), nullptr);
}

TEST_F(RouterTest, AWrongCaseNameGoesToTheStarInstanceNotToTheNamedOne) {
  Instance* shop = instance("shop", {"shop"});
  Instance* rest = instance("rest", {"*"});
  const Router router(std::vector<Instance*>{shop, rest});
  EXPECT_EQ(router.route("SHOP"), rest);
}

TEST_F(RouterTest, ServedNamesListsTheExplicitNamesOfEveryInstanceButNotTheStar) {
  Instance* shop = instance("shop", {"shop", "shop_archive"});
  Instance* rest = instance("rest", {"*", "reports"});
  const Router router(std::vector<Instance*>{shop, rest});
  auto names = router.served_names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"reports", "shop", "shop_archive"}));
}

TEST_F(RouterTest, ServedNamesIsEmptyWhenOnlyTheStarIsConfigured) {
  Instance* rest = instance("rest", {"*"});
  const Router router(std::vector<Instance*>{rest});
  EXPECT_TRUE(router.served_names().empty());
}

}  // namespace
}  // namespace pgnap::daemon
