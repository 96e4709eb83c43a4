// config/wake_rules.h: which clients an ignore rule matches (user, application_name prefix,
// IPv4/IPv6 CIDRs, IPv4-mapped addresses, Unix sockets), the address patterns' errors, and
// how a rule is written back.
#include "config/wake_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgnap::config {
namespace {

bool address_matches(std::string_view pattern, std::string_view ip) {
  std::string error;
  std::optional<AddressPattern> p = parse_address_pattern(pattern, &error);
  EXPECT_TRUE(p.has_value()) << pattern << ": " << error;
  return p && matches(*p, ip);
}

std::string pattern_error(std::string_view pattern) {
  std::string error;
  EXPECT_FALSE(parse_address_pattern(pattern, &error).has_value()) << pattern;
  return error;
}

WakeIgnoreRule rule(std::string user, std::string application_name, std::string address) {
  return WakeIgnoreRule{std::move(user), std::move(application_name), std::move(address)};
}

TEST(WakeAddressTest, Ipv4Cidr) {
  EXPECT_TRUE(address_matches("10.0.0.0/8", "10.1.2.3"));
  EXPECT_TRUE(address_matches("10.0.0.0/8", "10.255.255.255"));
  EXPECT_FALSE(address_matches("10.0.0.0/8", "11.0.0.1"));
  EXPECT_FALSE(address_matches("10.0.0.0/8", "9.255.255.255"));
  // A prefix that is not a whole number of bytes.
  EXPECT_TRUE(address_matches("10.0.0.0/9", "10.127.255.255"));
  EXPECT_FALSE(address_matches("10.0.0.0/9", "10.128.0.0"));
  // Host bits past the prefix are ignored, as in pg_hba.conf.
  EXPECT_TRUE(address_matches("10.1.2.3/8", "10.9.9.9"));
  EXPECT_FALSE(address_matches("10.0.0.0/8", "")) << "a Unix socket client has no IP address";
  EXPECT_FALSE(address_matches("10.0.0.0/8", "not an address"));
}

TEST(WakeAddressTest, PlainAddressIsOneHost) {
  EXPECT_TRUE(address_matches("192.168.1.5", "192.168.1.5"));
  EXPECT_FALSE(address_matches("192.168.1.5", "192.168.1.6"));
  EXPECT_TRUE(address_matches("::1", "::1"));
  EXPECT_TRUE(address_matches("::1", "0:0:0:0:0:0:0:1")) << "any spelling of the same address";
  EXPECT_FALSE(address_matches("::1", "::2"));
}

TEST(WakeAddressTest, Ipv4MappedIpv6ClientMatchesIpv4Patterns) {
  EXPECT_TRUE(address_matches("10.0.0.0/8", "::ffff:10.1.2.3"));
  EXPECT_TRUE(address_matches("10.0.0.0/8", "::FFFF:10.1.2.3"));
  EXPECT_FALSE(address_matches("10.0.0.0/8", "::ffff:11.1.2.3"));
  // Not mapped: ::10.1.2.3 (deprecated IPv4-compatible) and 64:ff9b::/96 (NAT64) are IPv6.
  EXPECT_FALSE(address_matches("10.0.0.0/8", "::10.1.2.3"));
  EXPECT_FALSE(address_matches("10.0.0.0/8", "64:ff9b::a01:203"));
}

TEST(WakeAddressTest, Ipv6Cidr) {
  EXPECT_TRUE(address_matches("2001:db8::/32", "2001:db8:1::5"));
  EXPECT_TRUE(address_matches("2001:db8::/32", "2001:DB8::1"));
  EXPECT_FALSE(address_matches("2001:db8::/32", "2001:db9::1"));
  EXPECT_TRUE(address_matches("fe80::/10", "fe80::1%eth0")) << "the scope is not part of the address";
  EXPECT_TRUE(address_matches("fe80::/10", "febf::1"));
  EXPECT_FALSE(address_matches("fe80::/10", "fec0::1"));
  EXPECT_FALSE(address_matches("2001:db8::/32", "10.0.0.1")) << "an IPv4 client matches IPv4 patterns only";
}

TEST(WakeAddressTest, PrefixZeroIsEveryAddressOfItsFamily) {
  EXPECT_TRUE(address_matches("0.0.0.0/0", "8.8.8.8"));
  EXPECT_TRUE(address_matches("0.0.0.0/0", "::ffff:8.8.8.8"));
  EXPECT_FALSE(address_matches("0.0.0.0/0", "2001:db8::1"));
  EXPECT_FALSE(address_matches("0.0.0.0/0", ""));
  EXPECT_TRUE(address_matches("::/0", "2001:db8::1"));
  EXPECT_FALSE(address_matches("::/0", "8.8.8.8"));
}

TEST(WakeAddressTest, UnixMatchesOnlySocketClients) {
  EXPECT_TRUE(address_matches("unix", ""));
  EXPECT_FALSE(address_matches("unix", "127.0.0.1"));
  EXPECT_FALSE(address_matches("unix", "::1"));
}

TEST(WakeAddressTest, BadPatternsSayWhatWasExpected) {
  const std::string expected = R"(expected "unix", an IP address or a CIDR such as "10.0.0.0/8" or "fd00::/8", got )";
  EXPECT_EQ(pattern_error("localhost"), expected + "\"localhost\"");
  EXPECT_EQ(pattern_error("10.0.0/8"), expected + "\"10.0.0/8\"");
  EXPECT_EQ(pattern_error(""), expected + "\"\"");
  EXPECT_EQ(pattern_error("Unix"), expected + "\"Unix\"");
  EXPECT_EQ(pattern_error("10.0.0.0/33"), "expected a prefix length between 0 and 32 in \"10.0.0.0/33\", got \"33\"");
  EXPECT_EQ(pattern_error("::1/129"), "expected a prefix length between 0 and 128 in \"::1/129\", got \"129\"");
  EXPECT_EQ(pattern_error("10.0.0.0/"), "expected a prefix length between 0 and 32 in \"10.0.0.0/\", got \"\"");
  EXPECT_THAT(pattern_error("10.0.0.0/-1"), ::testing::HasSubstr("got \"-1\""));
  EXPECT_THAT(pattern_error("10.0.0.0/+8"), ::testing::HasSubstr("got \"+8\""));
  EXPECT_THAT(pattern_error("10.0.0.0/8x"), ::testing::HasSubstr("got \"8x\""));
  EXPECT_THAT(pattern_error("10.0.0.0/8/8"), ::testing::HasSubstr("got \"8/8\""));
}

TEST(WakeRuleTest, EveryFieldSetMustMatch) {
  const WakeIgnoreRule monitor = rule("monitor", "", "");
  EXPECT_TRUE(matches(monitor, "monitor", "anything", "10.0.0.1"));
  EXPECT_TRUE(matches(monitor, "monitor", "", ""));
  EXPECT_FALSE(matches(monitor, "Monitor", "", "")) << "user names are exact";
  EXPECT_FALSE(matches(monitor, "app", "", ""));

  const WakeIgnoreRule both = rule("x", "", "10.0.0.0/8");
  EXPECT_TRUE(matches(both, "x", "psql", "10.2.3.4"));
  EXPECT_FALSE(matches(both, "x", "psql", "192.168.0.1"));
  EXPECT_FALSE(matches(both, "y", "psql", "10.2.3.4"));

  EXPECT_TRUE(matches(rule("", "", ""), "anyone", "", "")) << "a rule setting nothing (the loader refuses one)";
  EXPECT_FALSE(matches(rule("", "", "nonsense"), "anyone", "", "10.0.0.1")) << "an unreadable address matches none";
}

TEST(WakeRuleTest, ApplicationNameExactOrByPrefix) {
  const WakeIgnoreRule prefix = rule("", "uptime*", "");
  EXPECT_TRUE(matches(prefix, "u", "uptime-kuma", ""));
  EXPECT_TRUE(matches(prefix, "u", "uptime", ""));
  EXPECT_FALSE(matches(prefix, "u", "Uptime-Kuma", ""));
  EXPECT_FALSE(matches(prefix, "u", "my-uptime", ""));
  EXPECT_FALSE(matches(prefix, "u", "", ""));

  const WakeIgnoreRule exact = rule("", "psql", "");
  EXPECT_TRUE(matches(exact, "u", "psql", ""));
  EXPECT_FALSE(matches(exact, "u", "psql2", ""));
  EXPECT_FALSE(matches(exact, "u", "", ""));

  EXPECT_TRUE(matches(rule("", "*", ""), "u", "", "")) << "\"*\" is any application_name, none included";
}

TEST(WakeRuleTest, FirstMatchInOrder) {
  const std::vector<WakeIgnoreRule> rules{rule("", "", "unix"), rule("monitor", "", ""), rule("", "uptime*", "")};
  EXPECT_EQ(first_match(rules, "monitor", "uptime", "10.0.0.1"), &rules[1]);
  EXPECT_EQ(first_match(rules, "monitor", "uptime", ""), &rules[0]);
  EXPECT_EQ(first_match(rules, "app", "uptime", "10.0.0.1"), &rules[2]);
  EXPECT_EQ(first_match(rules, "app", "psql", "10.0.0.1"), nullptr);
  EXPECT_EQ(first_match({}, "app", "psql", ""), nullptr);
}

TEST(WakeRuleTest, ToStringInFieldOrder) {
  EXPECT_EQ(rule("monitor", "", "10.0.0.0/8").to_string(), "user = \"monitor\", address = \"10.0.0.0/8\"");
  EXPECT_EQ(rule("", "uptime*", "").to_string(), "application_name = \"uptime*\"");
  EXPECT_EQ(rule("a", "b", "unix").to_string(), "user = \"a\", application_name = \"b\", address = \"unix\"");
  EXPECT_EQ(rule("say \"hi\"", "", "").to_string(), R"(user = "say \"hi\"")");
  EXPECT_EQ(rule("", "", "").to_string(), "");
}

}  // namespace
}  // namespace pgnap::config
