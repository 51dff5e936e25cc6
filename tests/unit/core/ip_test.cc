// core::parse_ip: both families, IPv4-mapped IPv6 unwrapped, and what is not an address.
#include "core/ip.h"

#include <gtest/gtest.h>

namespace {

TEST(ParseIp, Ipv4) {
  auto ip = core::parse_ip("192.0.2.7");
  ASSERT_TRUE(ip);
  EXPECT_FALSE(ip->v6);
  EXPECT_EQ(ip->bytes, (std::array<uint8_t, 16>{192, 0, 2, 7}));
}

TEST(ParseIp, Ipv6) {
  auto ip = core::parse_ip("2001:db8::1");
  ASSERT_TRUE(ip);
  EXPECT_TRUE(ip->v6);
  EXPECT_EQ(ip->bytes, (std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
}

TEST(ParseIp, Ipv4MappedIsIpv4) {
  for (const char* text : {"::ffff:192.0.2.7", "::FFFF:c000:0207", "0:0:0:0:0:ffff:192.0.2.7"}) {
    auto ip = core::parse_ip(text);
    ASSERT_TRUE(ip) << text;
    EXPECT_FALSE(ip->v6) << text;
    EXPECT_EQ(ip->bytes, (std::array<uint8_t, 16>{192, 0, 2, 7})) << text;
  }
  // Only the ::ffff:0:0/96 prefix is unwrapped: IPv4-compatible (::a.b.c.d) and NAT64 stay IPv6.
  EXPECT_TRUE(core::parse_ip("::192.0.2.7")->v6);
  EXPECT_TRUE(core::parse_ip("64:ff9b::192.0.2.7")->v6);
}

TEST(ParseIp, NotAnAddress) {
  for (const char* text : {"", "localhost", "[::1]", "192.0.2.7:25", "fe80::1%eth0", "192.0.2", "1.2.3.4 ", "::1/128"})
    EXPECT_FALSE(core::parse_ip(text)) << text;
}

}  // namespace
