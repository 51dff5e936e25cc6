// CIDR parsing and membership.
#include "core/cidr.h"

#include <gtest/gtest.h>

using core::Cidr;

TEST(Cidr, Ipv4RangesAndHosts) {
  auto c = Cidr::parse("127.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains("127.1.2.3"));
  EXPECT_FALSE(c->contains("128.0.0.1"));
  EXPECT_TRUE(c->contains("::ffff:127.0.0.9"));  // IPv4-mapped
  auto h = Cidr::parse("192.0.2.7");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->prefix, 32);
  EXPECT_TRUE(h->contains("192.0.2.7"));
  EXPECT_FALSE(h->contains("192.0.2.8"));
  EXPECT_TRUE(Cidr::parse("10.0.0.0/12")->contains("10.15.255.255"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/12")->contains("10.16.0.0"));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains("203.0.113.1"));
}

TEST(Cidr, Ipv6) {
  auto c = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains("2001:db8:1::5"));
  EXPECT_FALSE(c->contains("2001:db9::1"));
  EXPECT_FALSE(c->contains("192.0.2.1"));
  EXPECT_TRUE(Cidr::parse("::1")->contains("::1"));
  EXPECT_EQ(Cidr::parse("::1")->str(), "::1/128");
}

TEST(Cidr, MalformedIsRefused) {
  for (const char* s : {"", "127.0.0.1/33", "::1/129", "127.0.0/8", "1.2.3.4/", "1.2.3.4/x", "localhost", "1.2.3.4/-1"})
    EXPECT_FALSE(Cidr::parse(s)) << s;
  EXPECT_FALSE(Cidr::parse("127.0.0.0/8")->contains("not-an-ip"));
}
