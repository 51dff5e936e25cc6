// Unit tests for the health judgements and renderings (ops/probe.h): a stalled event loop fails
// /livez; draining, closed listeners, fd exhaustion and a wedged worker pool fail /readyz; a
// shared dependency is never part of readiness; /metrics is Prometheus text with the counters
// under their conventional names, HELP and TYPE for every family and escaped label values.
#include "ops/probe.h"

#include <gtest/gtest.h>

#include <set>

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
  EXPECT_NE(m.find("# TYPE mxfront_messages_total counter\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nmxfront_messages_total{outcome=\"relayed\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nmxfront_messages_total{outcome=\"tempfailed\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("mxfront_filter_verdicts_total{filter=\"probe_filter\",outcome=\"reject\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_sessions_by_profile{profile=\"mx\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_open_fds 100\n"), std::string::npos);
  EXPECT_NE(m.find("\nmxfront_ready 1\n"), std::string::npos);
  EXPECT_NE(m.find("\nmxfront_live 1\n"), std::string::npos);
  p.draining = true;
  EXPECT_NE(metrics_text(p).find("\nmxfront_ready 0\n"), std::string::npos);
}

// Every built-in counter is exported in some family (the old one-name-per-outcome counters are
// one family with an outcome label), and no family is exported twice.
TEST(Probe, EveryBuiltInCounterIsExportedOnceUnderItsConventionalName) {
  std::string m = metrics_text(healthy());
  for (const char* line : {"mxfront_connections_total{outcome=\"accepted\"} ", "mxfront_connections_total{outcome=\"refused\"} ",
                           "mxfront_tls_handshakes_total{outcome=\"success\"} ", "mxfront_tls_handshakes_total{outcome=\"failure\"} ",
                           "mxfront_auth_attempts_total{outcome=\"success\"} ", "mxfront_auth_attempts_total{outcome=\"failure\"} ",
                           "mxfront_auth_attempts_total{outcome=\"unavailable\"} ", "mxfront_messages_total{outcome=\"relayed\"} ",
                           "mxfront_messages_total{outcome=\"tempfailed\"} ", "mxfront_messages_total{outcome=\"rejected\"} ",
                           "\nmxfront_recipients_rejected_total ", "\nmxfront_protocol_violations_total ", "\nmxfront_timeouts_total ",
                           "\nmxfront_rbl_zone_failures_total "})
    EXPECT_NE(m.find(line), std::string::npos) << line;
  size_t samples = 0;
  for (const char* family : {"connections_total", "tls_handshakes_total", "auth_attempts_total", "messages_total",
                             "recipients_rejected_total", "protocol_violations_total", "timeouts_total", "rbl_zone_failures_total"})
    for (size_t at = 0; (at = m.find(std::string("\nmxfront_") + family, at)) != std::string::npos; ++at) ++samples;
  EXPECT_EQ(samples, static_cast<size_t>(core::Counter::kCount)) << m;
  EXPECT_EQ(m.find("messages_relayed"), std::string::npos);
  EXPECT_EQ(m.find("connections_accepted"), std::string::npos);
}

// Every family has # HELP then # TYPE before its first sample; none is repeated.
TEST(Probe, EveryFamilyHasHelpAndTypeOnce) {
  core::describe({"probe_described_total", "A described family."});
  core::count(core::labeled_counter("probe_described_total", core::labels({{"k", "v"}})));
  core::count(core::labeled_counter("probe_undescribed_total", core::labels({{"k", "v"}})));
  core::observe(core::histogram("probe_undescribed_seconds", core::labels({{"k", "v"}})), 0.1);
  Probe p = healthy();
  p.dependencies.push_back({});
  p.dependencies.back().kind = "qmqp";
  p.dependencies.back().name = "10.0.0.1:628";
  std::string m = metrics_text(p);
  std::set<std::string> typed, helped;
  std::string last_type;
  size_t pos = 0;
  while (pos < m.size()) {
    size_t nl = m.find('\n', pos);
    ASSERT_NE(nl, std::string::npos) << "the text ends with a newline";
    std::string line = m.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice: " << name;
      EXPECT_GT(line.size(), 7 + name.size() + 1) << "empty HELP: " << line;
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(typed.insert(name).second) << "TYPE twice: " << name;
      EXPECT_TRUE(helped.count(name)) << "TYPE without HELP: " << name;
      last_type = name;
    } else {
      std::string name = line.substr(0, line.find_first_of("{ "));
      bool ok = name == last_type;
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        ok = ok || name == last_type + suffix;
      EXPECT_TRUE(ok) << "sample outside its family: " << line << " (family " << last_type << ")";
    }
  }
  EXPECT_EQ(typed.size(), helped.size());
  EXPECT_NE(m.find("# HELP mxfront_probe_described_total A described family.\n"), std::string::npos);
  EXPECT_NE(m.find(std::string("# HELP mxfront_probe_undescribed_total ") + kUndescribed), std::string::npos);
  EXPECT_NE(m.find(std::string("# HELP mxfront_probe_undescribed_seconds ") + kUndescribed), std::string::npos);
  EXPECT_NE(m.find("# TYPE mxfront_probe_undescribed_seconds histogram\n"), std::string::npos);
}

TEST(Probe, LabelValuesAreEscapedEverywhere) {
  core::count(core::filter_counters("we\"ird\\fil\nter"), core::FilterOutcome::Accept);
  Probe p = healthy();
  p.sessions_by_profile = {{"a\"b", 1}};
  p.dependencies.push_back({});
  p.dependencies.back().kind = "dns";
  p.dependencies.back().name = "C:\\zone\n\"x\"";
  p.dependencies.back().up = false;
  std::string m = metrics_text(p);
  EXPECT_NE(m.find("mxfront_filter_verdicts_total{filter=\"we\\\"ird\\\\fil\\nter\",outcome=\"accept\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("mxfront_sessions_by_profile{profile=\"a\\\"b\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_dependency_up{kind=\"dns\",name=\"C:\\\\zone\\n\\\"x\\\"\"} 0\n"), std::string::npos) << m;
}

TEST(Probe, HistogramsAndLabeledCountersAreExported) {
  auto* h = core::histogram("filter_duration_seconds", core::labels({{"filter", "probe_h"}}));
  core::observe(h, 0.0007);
  core::observe(h, 3.0);
  core::observe(h, 100.0);  // a slow clamav scan: within the buckets, not only in +Inf
  core::count(core::labeled_counter("qmqp_answers_total", core::labels({{"server", "s:628"}, {"answer", "K"}})), 2);
  std::string m = metrics_text(healthy());
  EXPECT_NE(m.find("# TYPE mxfront_filter_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"0.0005\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"2.5\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"60\"} 2\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"120\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"300\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_bucket{filter=\"probe_h\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("mxfront_filter_duration_seconds_count{filter=\"probe_h\"} 3\n"), std::string::npos);
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
