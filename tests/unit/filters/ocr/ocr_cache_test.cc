// Unit tests for the OCR result cache: hits and misses, LRU order, TTL with an injected clock,
// eviction order at capacity, replacing a key, capacity 0, reconfiguration (shrinking capacity,
// changing the TTL) and concurrent use from four threads (also run under TSan).
#include "filters/ocr/cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace filters::ocr {
namespace {

using namespace std::chrono_literals;
using Clock = ResultCache::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1000h;

TEST(ResultCache, HitAndMiss) {
  ResultCache c(10, 60s);
  EXPECT_EQ(c.get("a", t0), std::nullopt);
  c.put("a", "cheap viagra", t0);
  EXPECT_EQ(c.get("a", t0), "cheap viagra");
  EXPECT_EQ(c.get("b", t0), std::nullopt);
  auto s = c.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.stored, 1u);
  EXPECT_EQ(c.size(), 1u);
}

TEST(ResultCache, EmptyTextIsAValue) {
  ResultCache c(10, 60s);
  c.put("blank image", "", t0);
  EXPECT_EQ(c.get("blank image", t0), std::string());
}

TEST(ResultCache, EntriesExpireAfterTheTtl) {
  ResultCache c(10, 60s);
  c.put("a", "text", t0);
  EXPECT_EQ(c.get("a", t0 + 59s), "text");
  EXPECT_EQ(c.get("a", t0 + 60s), std::nullopt);  // removed, not just hidden
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.get("a", t0), std::nullopt);  // even when asked with an older clock
  auto s = c.stats();
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
}

TEST(ResultCache, AHitDoesNotExtendTheTtl) {
  ResultCache c(10, 60s);
  c.put("a", "text", t0);
  EXPECT_TRUE(c.get("a", t0 + 50s));
  EXPECT_FALSE(c.get("a", t0 + 61s));
}

TEST(ResultCache, EvictsTheLeastRecentlyUsed) {
  ResultCache c(3, 60s);
  c.put("a", "A", t0);
  c.put("b", "B", t0);
  c.put("c", "C", t0);
  c.put("d", "D", t0);  // evicts a, the oldest
  EXPECT_EQ(c.size(), 3u);
  EXPECT_FALSE(c.get("a", t0));
  c.put("e", "E", t0);  // evicts b
  EXPECT_FALSE(c.get("b", t0));
  EXPECT_TRUE(c.get("c", t0));
  EXPECT_TRUE(c.get("d", t0));
  EXPECT_TRUE(c.get("e", t0));
  EXPECT_EQ(c.stats().evicted, 2u);
}

TEST(ResultCache, GetMakesAnEntryMostRecentlyUsed) {
  ResultCache c(3, 60s);
  c.put("a", "A", t0);
  c.put("b", "B", t0);
  c.put("c", "C", t0);
  EXPECT_TRUE(c.get("a", t0));  // order now a, c, b
  c.put("d", "D", t0);          // evicts b
  EXPECT_FALSE(c.get("b", t0));
  EXPECT_TRUE(c.get("a", t0));
  EXPECT_TRUE(c.get("c", t0));
  EXPECT_TRUE(c.get("d", t0));
}

TEST(ResultCache, PutReplacesTextAndExpiryAndRefreshes) {
  ResultCache c(2, 60s);
  c.put("a", "old", t0);
  c.put("b", "B", t0);
  c.put("a", "new", t0 + 30s);  // order now a, b
  EXPECT_EQ(c.size(), 2u);
  c.put("c", "C", t0 + 30s);  // evicts b, not a
  EXPECT_FALSE(c.get("b", t0 + 30s));
  EXPECT_EQ(c.get("a", t0 + 80s), "new");  // expiry moved to t0 + 90s
  EXPECT_FALSE(c.get("a", t0 + 90s));
  auto s = c.stats();
  EXPECT_EQ(s.stored, 4u);
  EXPECT_EQ(s.evicted, 1u);
}

TEST(ResultCache, CapacityZeroCachesNothing) {
  ResultCache c(0, 60s);
  c.put("a", "A", t0);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.get("a", t0));
  auto s = c.stats();
  EXPECT_EQ(s.stored, 0u);
  EXPECT_EQ(s.evicted, 0u);
  EXPECT_EQ(s.misses, 1u);
}

TEST(ResultCache, ZeroOrNegativeTtlCachesNothing) {
  ResultCache c(10, 0s);
  c.put("a", "A", t0);
  EXPECT_FALSE(c.get("a", t0));
  ResultCache n(10, -5s);
  n.put("a", "A", t0);
  EXPECT_FALSE(n.get("a", t0));
  EXPECT_EQ(n.size(), 0u);
}

TEST(ResultCache, ConfigureShrinkEvictsTheLeastRecentlyUsedAtOnce) {
  ResultCache c(5, 60s);
  for (std::string k : {"a", "b", "c", "d", "e"}) c.put(k, k, t0);
  EXPECT_TRUE(c.get("a", t0));  // order a, e, d, c, b
  c.configure(2, 60s);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.stats().evicted, 3u);
  EXPECT_TRUE(c.get("a", t0));
  EXPECT_TRUE(c.get("e", t0));
  EXPECT_FALSE(c.get("d", t0));
  c.put("f", "f", t0);  // the new bound holds for later puts too
  EXPECT_EQ(c.size(), 2u);
  c.configure(0, 60s);
  EXPECT_EQ(c.size(), 0u);
  c.put("g", "g", t0);
  EXPECT_EQ(c.size(), 0u);
  c.configure(10, 60s);  // growing again starts empty but works
  c.put("g", "g", t0);
  EXPECT_TRUE(c.get("g", t0));
}

TEST(ResultCache, ConfigureAppliesTheNewTtlToHeldEntries) {
  ResultCache c(10, 60s);
  c.put("a", "A", t0);
  c.put("b", "B", t0 + 40s);
  c.configure(10, 30s);  // a is now older than the TTL; b expires at t0 + 70s
  EXPECT_FALSE(c.get("a", t0 + 45s));
  EXPECT_TRUE(c.get("b", t0 + 45s));
  EXPECT_FALSE(c.get("b", t0 + 70s));
  c.put("c", "C", t0 + 100s);
  c.configure(10, 300s);  // a longer TTL lengthens held entries too
  EXPECT_TRUE(c.get("c", t0 + 399s));
  EXPECT_FALSE(c.get("c", t0 + 400s));
}

TEST(ResultCache, ConcurrentGetAndPutFromFourThreads) {
  ResultCache c(64, 60s);
  std::atomic<uint64_t> gets{0}, found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const std::string key = "img" + std::to_string((i * 7 + t) % 100);
        const auto now = Clock::now();
        if (i % 3 == 0) {
          c.put(key, "text of " + key, now);
        } else {
          ++gets;
          if (auto v = c.get(key, now)) {
            ++found;
            EXPECT_EQ(*v, "text of " + key);
          }
        }
        if (t == 0 && i % 5000 == 0) c.configure(i % 10000 == 0 ? 32 : 64, 60s);
        if (i % 1000 == 0) (void)c.size();
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = c.stats();
  EXPECT_LE(c.size(), 64u);
  EXPECT_EQ(s.hits + s.misses, gets.load());
  EXPECT_EQ(s.hits, found.load());
  EXPECT_GT(s.hits, 0u);
  EXPECT_GT(s.evicted, 0u);
}

}  // namespace
}  // namespace filters::ocr
