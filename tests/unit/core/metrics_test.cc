// Counters: increments from several threads add up; the stats line names every counter; label
// values are escaped for the Prometheus text format; registrations are found again by name and labels.
#include "core/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(Metrics, LabelValuesAreEscapedPerTheTextFormat) {
  EXPECT_EQ(core::escape_label_value("plain value 1.2.3.4:628"), "plain value 1.2.3.4:628");
  EXPECT_EQ(core::escape_label_value("a\\b"), "a\\\\b");
  EXPECT_EQ(core::escape_label_value("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(core::escape_label_value("two\nlines"), "two\\nlines");
  EXPECT_EQ(core::escape_label_value("\\\"\n"), "\\\\\\\"\\n");
  EXPECT_EQ(core::escape_label_value("tab\tand cr\r stay; utf-8 \xc3\xa9 stays"), "tab\tand cr\r stay; utf-8 \xc3\xa9 stays");
  EXPECT_EQ(core::labels({}).text(), "");
  EXPECT_EQ(core::labels({{"server", "10.0.0.1:628"}}).text(), "server=\"10.0.0.1:628\"");
  EXPECT_EQ(core::labels({{"server", "x\"y"}, {"answer", "K"}}).text(), "server=\"x\\\"y\",answer=\"K\"");
}

TEST(Metrics, RegistrationsAreFoundAgainByNameAndLabels) {
  auto* a = core::labeled_counter("metrics_test_total", core::labels({{"server", "a"}}));
  auto* b = core::labeled_counter("metrics_test_total", core::labels({{"server", "b"}}));
  EXPECT_NE(a, b);
  EXPECT_EQ(a, core::labeled_counter("metrics_test_total", core::labels({{"server", "a"}})));
  core::count(a, 3);
  core::count(b);
  auto snap = core::labeled_counters_snapshot("metrics_test_total");
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0], std::make_pair(std::string("server=\"a\""), uint64_t{3}));
  EXPECT_EQ(snap[1], std::make_pair(std::string("server=\"b\""), uint64_t{1}));
  auto* h = core::histogram("metrics_test_seconds", core::labels({{"server", "a"}}));
  EXPECT_EQ(h, core::histogram("metrics_test_seconds", core::labels({{"server", "a"}})));
  EXPECT_NE(h, core::histogram("metrics_test_seconds", core::labels({{"server", "b"}})));
}

TEST(Metrics, HistogramBucketsReachTheLongestFilterTimeouts) {
  auto bounds = core::histogram_bounds();
  ASSERT_FALSE(bounds.empty());
  EXPECT_GE(bounds.back(), 120.0) << "clamav's default timeout is 120 s";
  EXPECT_TRUE(std::is_sorted(bounds.begin(), bounds.end()));
  auto* h = core::histogram("metrics_test_bounds_seconds", core::labels({}));
  core::observe(h, 119.0);
  core::observe(h, -1.0);  // a clock step: counted as 0, never wrapping the sum
  for (const auto& s : core::histograms_snapshot()) {
    if (s.name != "metrics_test_bounds_seconds") continue;
    EXPECT_EQ(s.count, 2u);
    EXPECT_EQ(s.cumulative.front(), 1u);
    EXPECT_EQ(s.cumulative[s.cumulative.size() - 2], 2u) << "119 s lands below the last bound";
    EXPECT_NEAR(s.sum, 119.0, 1e-6);
  }
}
