// Cancel routing: a CancelRequest reaches the server that issued its key, and only when
// both the process id and the secret key match (as PostgreSQL's own check). Targets are
// told apart by the server endpoint they name.
#include "daemon/cancel_registry.h"

#include <string>

#include <gtest/gtest.h>
#include <boost/asio/local/stream_protocol.hpp>

namespace pgnap::daemon {
namespace {

CancelTarget target(const std::string& socket_path) {
  CancelTarget t;
  t.endpoint = asio::local::stream_protocol::endpoint(socket_path);
  return t;
}

protocol::BackendKeyData key(std::uint32_t pid, std::uint32_t secret) { return {pid, secret}; }
protocol::CancelRequest request(std::uint32_t pid, std::uint32_t secret) { return {pid, secret}; }

const std::string kServerA = "/run/pg-a/.s.PGSQL.5432";
const std::string kServerB = "/run/pg-b/.s.PGSQL.5432";

TEST(CancelRegistry, AnEmptyRegistryFindsNothing) {
  const CancelRegistry registry;
  EXPECT_EQ(registry.size(), 0u);
  EXPECT_FALSE(registry.find(request(0, 0)).has_value());
  EXPECT_FALSE(registry.find(request(4242, 0xdeadbeef)).has_value());
}

TEST(CancelRegistry, AnAddedKeyIsFoundWithItsTarget) {
  CancelRegistry registry;
  registry.add(key(4242, 0xdeadbeef), target(kServerA));
  const auto found = registry.find(request(4242, 0xdeadbeef));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->endpoint, target(kServerA).endpoint);
  EXPECT_EQ(registry.size(), 1u);
}

TEST(CancelRegistry, TheTargetsInstanceIsKeptAsGiven) {
  CancelRegistry registry;
  int some_object = 0;  // any address will do: the registry never dereferences it
  CancelTarget t = target(kServerA);
  t.instance = reinterpret_cast<Instance*>(&some_object);
  registry.add(key(1, 2), t);
  const auto found = registry.find(request(1, 2));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->instance, t.instance);
}

TEST(CancelRegistry, TheSamePidWithAnotherSecretKeyIsNotFound) {
  CancelRegistry registry;
  registry.add(key(4242, 0xdeadbeef), target(kServerA));
  EXPECT_FALSE(registry.find(request(4242, 0xdeadbeee)).has_value());
  EXPECT_FALSE(registry.find(request(4242, 0)).has_value());
}

TEST(CancelRegistry, TheSameSecretKeyWithAnotherPidIsNotFound) {
  CancelRegistry registry;
  registry.add(key(4242, 0xdeadbeef), target(kServerA));
  EXPECT_FALSE(registry.find(request(4243, 0xdeadbeef)).has_value());
}

TEST(CancelRegistry, PidAndSecretKeySwappedAreNotFound) {
  CancelRegistry registry;
  registry.add(key(0x11111111, 0x22222222), target(kServerA));
  EXPECT_FALSE(registry.find(request(0x22222222, 0x11111111)).has_value());
}

TEST(CancelRegistry, TwoServersReusingAPidAreToldApartByTheirKeys) {
  CancelRegistry registry;
  registry.add(key(100, 0xaaaa0001), target(kServerA));
  registry.add(key(100, 0xbbbb0002), target(kServerB));
  EXPECT_EQ(registry.size(), 2u);
  const auto a = registry.find(request(100, 0xaaaa0001));
  const auto b = registry.find(request(100, 0xbbbb0002));
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a->endpoint, target(kServerA).endpoint);
  EXPECT_EQ(b->endpoint, target(kServerB).endpoint);
}

TEST(CancelRegistry, RemovingOneKeyLeavesAnotherWithTheSamePid) {
  CancelRegistry registry;
  registry.add(key(100, 0xaaaa0001), target(kServerA));
  registry.add(key(100, 0xbbbb0002), target(kServerB));
  registry.remove(key(100, 0xaaaa0001));
  EXPECT_FALSE(registry.find(request(100, 0xaaaa0001)).has_value());
  const auto b = registry.find(request(100, 0xbbbb0002));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->endpoint, target(kServerB).endpoint);
  EXPECT_EQ(registry.size(), 1u);
}

TEST(CancelRegistry, RemovingAKeyWithTheWrongSecretRemovesNothing) {
  CancelRegistry registry;
  registry.add(key(100, 0xaaaa0001), target(kServerA));
  registry.remove(key(100, 0xaaaa0002));
  EXPECT_EQ(registry.size(), 1u);
  EXPECT_TRUE(registry.find(request(100, 0xaaaa0001)).has_value());
}

TEST(CancelRegistry, RemovingAnUnknownKeyIsHarmless) {
  CancelRegistry registry;
  registry.remove(key(7, 7));
  EXPECT_EQ(registry.size(), 0u);
}

TEST(CancelRegistry, ReAddingAKeyReplacesItsTarget) {
  CancelRegistry registry;
  registry.add(key(100, 0xaaaa0001), target(kServerA));
  registry.add(key(100, 0xaaaa0001), target(kServerB));
  EXPECT_EQ(registry.size(), 1u);
  const auto found = registry.find(request(100, 0xaaaa0001));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->endpoint, target(kServerB).endpoint);
}

TEST(CancelRegistry, SizeCountsLiveKeys) {
  CancelRegistry registry;
  for (std::uint32_t pid = 1; pid <= 5; ++pid) registry.add(key(pid, pid * 1000), target(kServerA));
  EXPECT_EQ(registry.size(), 5u);
  registry.remove(key(3, 3000));
  EXPECT_EQ(registry.size(), 4u);
  registry.remove(key(3, 3000));
  EXPECT_EQ(registry.size(), 4u);
  EXPECT_FALSE(registry.find(request(3, 3000)).has_value());
  EXPECT_TRUE(registry.find(request(4, 4000)).has_value());
}

TEST(CancelRegistry, ExtremeKeyValuesDoNotCollide) {
  CancelRegistry registry;
  registry.add(key(0xffffffff, 0), target(kServerA));
  registry.add(key(0, 0xffffffff), target(kServerB));
  EXPECT_EQ(registry.size(), 2u);
  const auto a = registry.find(request(0xffffffff, 0));
  const auto b = registry.find(request(0, 0xffffffff));
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a->endpoint, target(kServerA).endpoint);
  EXPECT_EQ(b->endpoint, target(kServerB).endpoint);
  EXPECT_FALSE(registry.find(request(0xffffffff, 0xffffffff)).has_value());
}

}  // namespace
}  // namespace pgnap::daemon
