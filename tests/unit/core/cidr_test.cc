// CIDR parsing and membership of parsed addresses.
#include "core/cidr.h"

#include <gtest/gtest.h>

using core::Cidr;

namespace {
core::IpAddress ip(const char* text) {
  auto a = core::IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(core::IpAddress{});
}
}  // namespace

TEST(Cidr, Ipv4RangesAndHosts) {
  auto c = Cidr::parse("127.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("127.1.2.3")));
  EXPECT_FALSE(c->contains(ip("128.0.0.1")));
  EXPECT_TRUE(c->contains(ip("::ffff:127.0.0.9")));  // IPv4-mapped
  auto h = Cidr::parse("192.0.2.7");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->prefix, 32);
  EXPECT_TRUE(h->contains(ip("192.0.2.7")));
  EXPECT_FALSE(h->contains(ip("192.0.2.8")));
  EXPECT_TRUE(Cidr::parse("10.0.0.0/12")->contains(ip("10.15.255.255")));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/12")->contains(ip("10.16.0.0")));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(ip("203.0.113.1")));
  EXPECT_FALSE(Cidr::parse("0.0.0.0/0")->contains(ip("2001:db8::1")));  // families never mix
}

TEST(Cidr, Ipv6) {
  auto c = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("2001:db8:1::5")));
  EXPECT_FALSE(c->contains(ip("2001:db9::1")));
  EXPECT_FALSE(c->contains(ip("192.0.2.1")));
  EXPECT_TRUE(Cidr::parse("::1")->contains(ip("::1")));
  EXPECT_EQ(Cidr::parse("::1")->str(), "::1/128");
  EXPECT_FALSE(Cidr::parse("::/0")->contains(ip("::ffff:192.0.2.1")));  // a mapped address is IPv4
}

TEST(Cidr, MappedRangeIsAnIpv4Range) {
  auto c = Cidr::parse("::ffff:10.0.0.0/8");  // written as IPv6, read as the IPv4 10.0.0.0 with prefix 8
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("10.9.9.9")));
  EXPECT_EQ(c->str(), "10.0.0.0/8");
}

TEST(Cidr, HostBitsIgnored) {
  auto c = Cidr::parse("10.1.2.3/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("10.200.0.1")));
  EXPECT_EQ(c->str(), "10.1.2.3/8");
}

TEST(Cidr, MalformedIsRefused) {
  for (const char* s : {"", "127.0.0.1/33", "::1/129", "127.0.0/8", "1.2.3.4/", "1.2.3.4/x", "localhost", "1.2.3.4/-1"})
    EXPECT_FALSE(Cidr::parse(s)) << s;
}
