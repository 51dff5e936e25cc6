// Connection limits (per client: IPv4 address or IPv6 /64) and the in-flight memory budget.
#include "smtpd/limits.h"

#include <gtest/gtest.h>

using namespace smtpd;

namespace {
core::IpAddress ip(const char* text) {
  auto a = core::IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(core::IpAddress{});
}
}  // namespace

TEST(ConnectionLimiter, TotalAndPerIpAndRelease) {
  ConnectionLimiter l(3, 2);
  ConnectionLimiter::Ticket a, b, c, d, e;
  EXPECT_EQ(l.acquire(ip("1.1.1.1"), a), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("1.1.1.1"), b), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("1.1.1.1"), c), ConnectionLimiter::Result::TooManyFromIp);
  EXPECT_EQ(l.acquire(ip("2.2.2.2"), d), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("3.3.3.3"), e), ConnectionLimiter::Result::TooMany);
  EXPECT_EQ(l.current(), 3u);
  { ConnectionLimiter::Ticket gone = std::move(a); }
  EXPECT_EQ(l.current(), 2u);
  EXPECT_EQ(l.acquire(ip("1.1.1.1"), c), ConnectionLimiter::Result::Ok);
}

// A PROXY header (or a dual-stack socket) may give ::ffff:a.b.c.d: the same client as a.b.c.d.
TEST(ConnectionLimiter, Ipv4MappedCountsAsItsIpv4Address) {
  ConnectionLimiter l(10, 2);
  ConnectionLimiter::Ticket a, b, c, d;
  EXPECT_EQ(l.acquire(ip("198.51.100.20"), a), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("::ffff:198.51.100.20"), b), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("::ffff:c633:6414"), c), ConnectionLimiter::Result::TooManyFromIp);
  EXPECT_EQ(l.acquire(ip("198.51.100.20"), c), ConnectionLimiter::Result::TooManyFromIp);
  { ConnectionLimiter::Ticket gone = std::move(b); }  // released under the IPv4 key too
  EXPECT_EQ(l.acquire(ip("198.51.100.20"), d), ConnectionLimiter::Result::Ok);
}

// One IPv6 host usually holds a whole /64: the per-client bound counts the /64, not the address.
TEST(ConnectionLimiter, Ipv6CountsPer64) {
  ConnectionLimiter l(10, 2);
  ConnectionLimiter::Ticket a, b, c, d, e;
  EXPECT_EQ(l.acquire(ip("2001:db8:1:2::1"), a), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), b), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("2001:db8:1:2::3"), c), ConnectionLimiter::Result::TooManyFromIp);
  EXPECT_EQ(l.acquire(ip("2001:db8:1:3::1"), c), ConnectionLimiter::Result::Ok);  // the next /64
  EXPECT_EQ(l.current(), 3u);
  { ConnectionLimiter::Ticket gone = std::move(a); }
  EXPECT_EQ(l.acquire(ip("2001:db8:1:2:ffff::9"), d), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("2001:db8:1:2::1"), e), ConnectionLimiter::Result::TooManyFromIp);
}

// IPv4 stays per address: neighbours in a /24 are separate clients.
TEST(ConnectionLimiter, Ipv4CountsPerAddress) {
  ConnectionLimiter l(10, 1);
  ConnectionLimiter::Ticket a, b;
  EXPECT_EQ(l.acquire(ip("192.0.2.7"), a), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire(ip("192.0.2.8"), b), ConnectionLimiter::Result::Ok);
}

TEST(MemoryBudget, ReservationFollowsHeldBytesAndRefusesPastTheLimit) {
  MemoryBudget b(1000);
  {
    Reservation r1(b), r2(b);
    EXPECT_TRUE(r1.update(600));
    EXPECT_FALSE(r2.update(500));
    EXPECT_EQ(b.used(), 600u);
    EXPECT_TRUE(r1.update(100));
    EXPECT_TRUE(r2.update(500));
    EXPECT_EQ(b.used(), 600u);
  }
  EXPECT_EQ(b.used(), 0u);
}

TEST(ConnectionLimiter, ProxyPeerCountsAgainstTheTotalThenIsRekeyedToTheClient) {
  ConnectionLimiter l(3, 1);
  ConnectionLimiter::Ticket a, b, c, d;
  // before the PROXY header: the balancer's connections count against the total only
  EXPECT_EQ(l.acquire_total(a), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire_total(b), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire_total(c), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire_total(d), ConnectionLimiter::Result::TooMany);
  EXPECT_EQ(l.current(), 3u);
  // the header names the client: per-address counting from then on
  EXPECT_EQ(l.rekey(a, ip("192.0.2.1")), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.rekey(b, ip("192.0.2.1")), ConnectionLimiter::Result::TooManyFromIp);
  EXPECT_EQ(l.rekey(c, ip("192.0.2.2")), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.current(), 3u);
  { ConnectionLimiter::Ticket gone = std::move(b); }  // refused, still released from the total
  EXPECT_EQ(l.current(), 2u);
  ConnectionLimiter::Ticket e;
  EXPECT_EQ(l.acquire(ip("192.0.2.1"), e), ConnectionLimiter::Result::TooManyFromIp);
  { ConnectionLimiter::Ticket gone = std::move(a); }
  EXPECT_EQ(l.acquire(ip("192.0.2.1"), e), ConnectionLimiter::Result::Ok);
}

TEST(MemoryBudget, OneClientNetworkCannotHoldMoreThanItsShare) {
  MemoryBudget b(1000, 400);
  Reservation hog1(b), hog2(b), other(b);
  hog1.set_client(client_network(ip("192.0.2.7")));
  hog2.set_client(client_network(ip("192.0.2.8")));  // same /24
  other.set_client(client_network(ip("198.51.100.1")));
  EXPECT_TRUE(hog1.update(300));
  EXPECT_FALSE(hog2.update(200));  // 500 > the share, though the budget has room
  EXPECT_TRUE(hog2.update(100));
  EXPECT_FALSE(hog1.room_for(1));
  EXPECT_TRUE(other.room_for(400));
  EXPECT_TRUE(other.update(400));
  EXPECT_EQ(b.used(), 800u);
  EXPECT_EQ(b.used_by("192.0.2.0/24"), 400u);
  EXPECT_TRUE(hog1.update(0));
  EXPECT_EQ(b.used_by("192.0.2.0/24"), 100u);
  EXPECT_TRUE(hog2.update(250));
  EXPECT_FALSE(other.room_for(1));  // its own share is full
  Reservation third(b);
  third.set_client(client_network(ip("203.0.113.1")));
  EXPECT_TRUE(third.room_for(350));
  EXPECT_FALSE(third.room_for(351));  // the whole budget (650 used of 1000) still bounds everyone
  EXPECT_FALSE(third.update(351));
}

TEST(MemoryBudget, WithoutAClientOnlyTheTotalCounts) {
  MemoryBudget b(1000, 100);
  Reservation r(b);
  EXPECT_TRUE(r.update(900));
  EXPECT_EQ(b.used(), 900u);
}

TEST(ClientNetwork, Ipv4Slash24Ipv6Slash64MappedIsIpv4) {
  EXPECT_EQ(client_network(ip("192.0.2.77")), "192.0.2.0/24");
  EXPECT_EQ(client_network(ip("::ffff:192.0.2.77")), "192.0.2.0/24");
  EXPECT_EQ(client_network(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
  EXPECT_EQ(client_network(ip("2001:db8:1:2:ffff::9")), client_network(ip("2001:db8:1:2::1")));
  EXPECT_NE(client_network(ip("2001:db8:1:3::1")), client_network(ip("2001:db8:1:2::1")));
}
