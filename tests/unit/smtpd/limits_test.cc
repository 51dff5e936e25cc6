// Connection limits and the in-flight memory budget.
#include "smtpd/limits.h"

#include <gtest/gtest.h>

using namespace smtpd;

TEST(ConnectionLimiter, TotalAndPerIpAndRelease) {
  ConnectionLimiter l(3, 2);
  ConnectionLimiter::Ticket a, b, c, d, e;
  EXPECT_EQ(l.acquire("1.1.1.1", a), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire("1.1.1.1", b), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire("1.1.1.1", c), ConnectionLimiter::Result::TooManyFromIp);
  EXPECT_EQ(l.acquire("2.2.2.2", d), ConnectionLimiter::Result::Ok);
  EXPECT_EQ(l.acquire("3.3.3.3", e), ConnectionLimiter::Result::TooMany);
  EXPECT_EQ(l.current(), 3u);
  { ConnectionLimiter::Ticket gone = std::move(a); }
  EXPECT_EQ(l.current(), 2u);
  EXPECT_EQ(l.acquire("1.1.1.1", c), ConnectionLimiter::Result::Ok);
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
