// core::ExpiringLru: LRU eviction, expiry when met, and the tail sweep the DNS cache runs before a put.
#include "core/expiring_lru.h"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using Lru = core::ExpiringLru<int>;

namespace {

const Lru::Clock::time_point t0 = Lru::Clock::time_point{} + 1000s;

TEST(ExpiringLru, EvictsTheLeastRecentlyUsed) {
  Lru c(2);
  c.put("a", 1, t0 + 10s);
  c.put("b", 2, t0 + 10s);
  EXPECT_EQ(c.get("a", t0), 1);  // "b" is now the least recently used
  c.put("c", 3, t0 + 10s);
  EXPECT_FALSE(c.get("b", t0));
  EXPECT_TRUE(c.get("a", t0));
  EXPECT_TRUE(c.get("c", t0));
  EXPECT_EQ(c.stats().evicted, 1u);
}

TEST(ExpiringLru, DropExpiredTailStopsAtTheFirstLiveEntry) {
  Lru c(10);
  c.put("old", 1, t0 + 1s);
  c.put("live", 2, t0 + 100s);
  c.put("new", 3, t0 + 1s);  // expired too, but in front of a live entry
  c.drop_expired_tail(t0 + 5s);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.stats().expired, 1u);
  EXPECT_FALSE(c.get("new", t0 + 5s));  // met: dropped
  EXPECT_EQ(c.get("live", t0 + 5s), 2);
  EXPECT_EQ(c.size(), 1u);
}

TEST(ExpiringLru, CapacityZeroKeepsNothing) {
  Lru c(0);
  c.put("a", 1, t0 + 10s);
  EXPECT_EQ(c.size(), 0u);
  c.set_capacity(1);
  c.put("a", 1, t0 + 10s);
  c.put("b", 2, t0 + 10s);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_TRUE(c.get("b", t0));
}

}  // namespace
