// core::IpAddress: both families, IPv4-mapped IPv6 folded to IPv4, what is not an address, the
// /64 network key, comparison and hashing, and the text forms (canonical, host:port, RFC 5321).
#include "core/ip.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace {
using core::IpAddress;

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(IpAddress{});
}

TEST(IpAddress, Ipv4) {
  auto a = IpAddress::parse("192.0.2.7");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->is_v6());
  EXPECT_EQ(a->bits(), 32);
  EXPECT_EQ(a->bytes(), (IpAddress::Bytes{192, 0, 2, 7}));
  EXPECT_EQ(a->str(), "192.0.2.7");
}

TEST(IpAddress, Ipv6) {
  auto a = IpAddress::parse("2001:db8::1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v6());
  EXPECT_EQ(a->bits(), 128);
  EXPECT_EQ(a->bytes(), (IpAddress::Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
}

TEST(IpAddress, Ipv4MappedIsIpv4) {
  for (const char* text : {"::ffff:192.0.2.7", "::FFFF:c000:0207", "0:0:0:0:0:ffff:192.0.2.7"}) {
    auto a = IpAddress::parse(text);
    ASSERT_TRUE(a) << text;
    EXPECT_FALSE(a->is_v6()) << text;
    EXPECT_EQ(a->bytes(), (IpAddress::Bytes{192, 0, 2, 7})) << text;
    EXPECT_EQ(*a, ip("192.0.2.7")) << text;
    EXPECT_EQ(a->str(), "192.0.2.7") << text;
  }
  // Only the ::ffff:0:0/96 prefix is folded: IPv4-compatible (::a.b.c.d) and NAT64 stay IPv6.
  EXPECT_TRUE(ip("::192.0.2.7").is_v6());
  EXPECT_TRUE(ip("64:ff9b::192.0.2.7").is_v6());
}

TEST(IpAddress, FromSocketBytesFoldsMappedToo) {
  IpAddress::Bytes mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 20};
  EXPECT_EQ(IpAddress::v6(mapped), IpAddress::v4({198, 51, 100, 20}));
  EXPECT_EQ(IpAddress::v6(mapped).str(), "198.51.100.20");
  EXPECT_EQ(IpAddress::v6(ip("2001:db8::1").bytes()), ip("2001:db8::1"));
}

TEST(IpAddress, NotAnAddress) {
  using namespace std::string_view_literals;
  for (std::string_view text : {""sv, "localhost"sv, "[::1]"sv, "192.0.2.7:25"sv, "fe80::1%eth0"sv, "192.0.2"sv,
                                "1.2.3.4 "sv, "::1/128"sv, "1.2.3.4.5"sv, "1.2.3.4\0junk"sv})
    EXPECT_FALSE(IpAddress::parse(text)) << text;
}

TEST(IpAddress, CanonicalText) {
  EXPECT_EQ(ip("2001:0DB8:0000:0000:0000:0000:0000:0025").str(), "2001:db8::25");
  EXPECT_EQ(IpAddress{}.str(), "0.0.0.0");
}

TEST(IpAddress, WithPortBracketsIpv6) {
  EXPECT_EQ(ip("192.0.2.7").with_port(25), "192.0.2.7:25");
  EXPECT_EQ(ip("2001:db8::1").with_port(25), "[2001:db8::1]:25");
  EXPECT_EQ(ip("::1").with_port(40000), "[::1]:40000");
  EXPECT_EQ(ip("::ffff:192.0.2.7").with_port(25), "192.0.2.7:25");
}

TEST(IpAddress, AddressLiteralIsRfc5321) {
  EXPECT_EQ(ip("192.0.2.7").address_literal(), "[192.0.2.7]");
  EXPECT_EQ(ip("2001:db8::25").address_literal(), "[IPv6:2001:db8::25]");
  EXPECT_EQ(ip("::ffff:192.0.2.7").address_literal(), "[192.0.2.7]");
}

TEST(IpAddress, PrefixAndNetworkKey) {
  EXPECT_EQ(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd").prefix(64), ip("2001:db8:1:2::"));
  EXPECT_EQ(ip("2001:db8:1:2:aaaa::1").network_key(), ip("2001:db8:1:2:ffff::9").network_key());
  EXPECT_NE(ip("2001:db8:1:2::1").network_key(), ip("2001:db8:1:3::1").network_key());
  EXPECT_EQ(ip("2001:db8:1:2::1").network_key().str(), "2001:db8:1:2::");
  // IPv4: the address itself, never its /24
  EXPECT_EQ(ip("192.0.2.7").network_key(), ip("192.0.2.7"));
  EXPECT_NE(ip("192.0.2.7").network_key(), ip("192.0.2.8").network_key());
  EXPECT_EQ(ip("::ffff:192.0.2.7").network_key(), ip("192.0.2.7"));
  // odd prefixes, and lengths past the family's are clamped
  EXPECT_EQ(ip("10.255.1.1").prefix(12), ip("10.240.0.0"));
  EXPECT_EQ(ip("10.255.1.1").prefix(0), ip("0.0.0.0"));
  EXPECT_EQ(ip("10.255.1.1").prefix(99), ip("10.255.1.1"));
  EXPECT_EQ(ip("2001:db8::ff").prefix(125), ip("2001:db8::f8"));
}

TEST(IpAddress, FamiliesNeverCompareEqualAndHashAsKeys) {
  EXPECT_NE(ip("0.0.0.1"), ip("::1"));  // the same bytes in different families
  EXPECT_LT(ip("255.255.255.255"), ip("::"));
  EXPECT_LT(ip("192.0.2.7"), ip("192.0.2.8"));
  std::unordered_set<IpAddress> set{ip("192.0.2.7"), ip("::ffff:192.0.2.7"), ip("2001:db8::1"), ip("0.0.0.1"),
                                    ip("::1")};
  EXPECT_EQ(set.size(), 4u);
  EXPECT_TRUE(set.count(ip("2001:db8:0::1")));
}

TEST(IpAddress, FormatsAsItsText) {
  EXPECT_EQ(fmt::format("client={}", ip("2001:db8::1")), "client=2001:db8::1");
  EXPECT_EQ(fmt::format("client={}", ip("::ffff:10.0.0.1")), "client=10.0.0.1");
}

}  // namespace
