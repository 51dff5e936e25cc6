// Counters: increments from several threads add up; the stats line names every counter.
#include "core/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

TEST(Metrics, ConcurrentIncrementsAddUp) {
  uint64_t before = core::value(core::Counter::TlsHandshakeFailures);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([] {
      for (int i = 0; i < 1000; ++i) core::count(core::Counter::TlsHandshakeFailures);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(core::value(core::Counter::TlsHandshakeFailures), before + 4000);
}

TEST(Metrics, StatsLineNamesEveryCounter) {
  std::string line = core::counters_line();
  for (int i = 0; i < static_cast<int>(core::Counter::kCount); ++i)
    EXPECT_NE(line.find(std::string(core::name(static_cast<core::Counter>(i))) + "="), std::string::npos);
}
