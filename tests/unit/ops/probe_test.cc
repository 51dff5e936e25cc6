// Unit tests for the health judgements and renderings (ops/probe.h): a stalled event loop fails
// /livez; draining, closed listeners, fd exhaustion and a wedged worker pool fail /readyz; a
// shared dependency is never part of readiness; /metrics is Prometheus text with the counters.
#include "ops/probe.h"

#include <gtest/gtest.h>

#include "core/metrics.h"

namespace ops {
namespace {

Probe healthy() {
  Probe p;
  p.loop_lag = {0.1, 0.2};
  p.listening = true;
  p.config_hash = "abc";
  p.open_fds = 100;
  p.fd_limit = 1024;
  return p;
}

TEST(Probe, HealthyInstanceIsLiveAndReady) {
  Thresholds t;
  EXPECT_TRUE(livez(healthy(), t).ok);
  EXPECT_TRUE(readyz(healthy(), t).ok);
  EXPECT_EQ(readyz(healthy(), t).text, "ok");
}

TEST(Probe, StalledEventLoopFailsLivenessAndReadiness) {
  Thresholds t;
  Probe p = healthy();
  p.loop_lag[1] = 7.5;
  Judgement j = livez(p, t);
  EXPECT_FALSE(j.ok);
  EXPECT_NE(j.text.find("io thread 1 stalled"), std::string::npos) << j.text;
  EXPECT_FALSE(readyz(p, t).ok);
}

TEST(Probe, DrainingClosedListenersAndFdExhaustionFailReadinessOnly) {
  Thresholds t;
  Probe p = healthy();
  p.draining = true;
  EXPECT_TRUE(livez(p, t).ok);
  EXPECT_NE(readyz(p, t).text.find("draining"), std::string::npos);
  p = healthy();
  p.listening = false;
  EXPECT_FALSE(readyz(p, t).ok);
  p = healthy();
  p.open_fds = 1000;
  EXPECT_NE(readyz(p, t).text.find("open fds 1000"), std::string::npos);
  p = healthy();
  p.config_hash.clear();
  EXPECT_FALSE(readyz(p, t).ok);
}

TEST(Probe, WedgedWorkerPoolFailsReadinessButABusyOneDoesNot) {
  Thresholds t;
  Probe p = healthy();
  p.worker_queue = 12;
  p.worker_idle_for = 2;
  EXPECT_TRUE(readyz(p, t).ok) << "jobs waiting with progress is load, not a fault";
  p.worker_idle_for = 45;
  EXPECT_NE(readyz(p, t).text.find("worker pool wedged"), std::string::npos);
}

TEST(Probe, HealthJsonCarriesVersionConfigAndReasons) {
  Thresholds t;
  Probe p = healthy();
  p.draining = true;
  p.last_reload_error = "bad.toml:3: unknown key \"x\"";
  std::string j = health_json(p, t);
  EXPECT_NE(j.find("\"version\":\""), std::string::npos);
  EXPECT_NE(j.find("\"sha256\":\"abc\""), std::string::npos);
  EXPECT_NE(j.find("\"ready\":false"), std::string::npos);
  EXPECT_NE(j.find("\"live\":true"), std::string::npos);
  EXPECT_NE(j.find("unknown key \\\"x\\\""), std::string::npos) << j;
}

TEST(Probe, MetricsAreInPrometheusTextFormat) {
  core::count(core::Counter::MessagesRelayed);
  core::count(core::filter_counters("probe_filter"), core::FilterOutcome::Reject);
  Probe p = healthy();
  p.sessions_by_profile = {{"mx", 3}};
  std::string m = metrics_text(p);
  EXPECT_NE(m.find("# TYPE mxfront_messages_relayed_total counter\nmxfront_messages_relayed_total 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_verdicts_total{filter=\"probe_filter\",outcome=\"reject\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_sessions_by_profile{profile=\"mx\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_open_fds 100\n"), std::string::npos);
}

TEST(Probe, HistogramsAndLabeledCountersAreExported) {
  auto* h = core::histogram("filter_duration_seconds", "filter=\"probe_h\"");
  core::observe(h, 0.0007);
  core::observe(h, 3.0);
  core::count(core::labeled_counter("qmqp_answers_total", "server=\"s:628\",answer=\"K\""), 2);
  std::string m = metrics_text(healthy());
  EXPECT_NE(m.find("# TYPE mxfront_filter_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"0.0005\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"2.5\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_count{filter=\"probe_h\"} 2\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_qmqp_answers_total{server=\"s:628\",answer=\"K\"} 2\n"), std::string::npos);
}

TEST(Probe, LabeledGaugesAreExportedWithHelp) {
  core::describe_gauge({"probe_gauge", "A test gauge."});
  core::set(core::labeled_gauge("probe_gauge", "server=\"s:628\""), 2);
  std::string m = metrics_text(healthy());
  EXPECT_NE(m.find("# HELP mxfront_probe_gauge A test gauge.\n# TYPE mxfront_probe_gauge gauge\n"
                   "mxfront_probe_gauge{server=\"s:628\"} 2\n"),
            std::string::npos)
      << m;
}

}  // namespace
}  // namespace ops
