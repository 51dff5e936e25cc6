// Judgements and renderings of a Probe; pure functions (unit-tested).
#include "ops/probe.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/metrics.h"
#include "core/version.h"

namespace ops {
namespace {

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += c;
  }
  return out;
}

void add_reason(Judgement& j, const std::string& why) {
  j.ok = false;
  j.text += (j.text.empty() ? "" : "\n") + why;
}

}  // namespace

Judgement livez(const Probe& p, const Thresholds& t) {
  Judgement j;
  for (size_t i = 0; i < p.loop_lag.size(); ++i)
    if (p.loop_lag[i] > t.stall_after) add_reason(j, fmt::format("io thread {} stalled for {:.1f}s", i, p.loop_lag[i]));
  if (j.ok) j.text = "ok";
  return j;
}

Judgement readyz(const Probe& p, const Thresholds& t) {
  Judgement j = livez(p, t);
  if (j.ok) j.text.clear();
  if (p.draining) add_reason(j, "draining");
  if (!p.listening) add_reason(j, "listeners not open");
  if (p.config_hash.empty()) add_reason(j, "no config loaded");
  if (p.fd_limit && p.open_fds > t.fd_ratio * static_cast<double>(p.fd_limit))
    add_reason(j, fmt::format("open fds {} above {:.0f}% of the limit {}", p.open_fds, t.fd_ratio * 100, p.fd_limit));
  if (p.worker_queue > 0 && p.worker_idle_for > t.worker_wedged_after)
    add_reason(j, fmt::format("worker pool wedged: {} jobs waiting, none finished for {:.0f}s", p.worker_queue,
                              p.worker_idle_for));
  if (j.ok) j.text = "ok";
  return j;
}

std::string health_json(const Probe& p, const Thresholds& t) {
  Judgement live = livez(p, t), ready = readyz(p, t);
  std::string lags;
  for (double l : p.loop_lag) lags += fmt::format("{}{:.3f}", lags.empty() ? "" : ",", l);
  std::string deps;
  for (const auto& d : p.dependencies)
    deps += fmt::format(
        "{}{{\"kind\":\"{}\",\"name\":\"{}\",\"up\":{},\"checked\":{},\"consecutive_failures\":{},"
        "\"last_error\":\"{}\",\"latency_ms\":{:.2f},\"detail\":\"{}\",\"passive_error\":\"{}\"}}",
        deps.empty() ? "" : ",", json_escape(d.kind), json_escape(d.name), d.up, d.checked, d.consecutive_failures,
        json_escape(d.last_error), d.last_latency_ms, json_escape(d.detail), json_escape(d.passive_error));
  return fmt::format(
      "{{\"version\":\"{}\",\"build\":\"{}\",\"config\":{{\"sha256\":\"{}\",\"source\":\"{}\",\"last_reload_error\":\"{}\"}},"
      "\"uptime_seconds\":{:.0f},\"live\":{},\"ready\":{},\"reasons\":\"{}\",\"draining\":{},"
      "\"sessions\":{},\"transactions\":{},\"inflight_bytes\":{},\"open_fds\":{},\"fd_limit\":{},"
      "\"workers\":{{\"threads\":{},\"queue\":{},\"queue_limit\":{}}},\"io_loop_lag_seconds\":[{}],"
      "\"dependencies\":[{}]}}\n",
      core::kVersion, core::kGitRev, p.config_hash, json_escape(p.config_source), json_escape(p.last_reload_error),
      p.uptime, live.ok, ready.ok, json_escape(ready.ok ? "" : ready.text), p.draining, p.sessions, p.transactions,
      p.inflight_bytes, p.open_fds, p.fd_limit, p.worker_threads, p.worker_queue, p.worker_queue_limit, lags, deps);
}

std::string metrics_text(const Probe& p) {
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP mxfront_{0} {1}\n# TYPE mxfront_{0} gauge\nmxfront_{0} {2}\n", name, help, v);
  };
  out += fmt::format("# HELP mxfront_build_info Version, build and config of this instance.\n"
                     "# TYPE mxfront_build_info gauge\nmxfront_build_info{{version=\"{}\",build=\"{}\",config=\"{}\"}} 1\n",
                     core::kVersion, core::kGitRev, p.config_hash.substr(0, 12));
  for (size_t i = 0; i < static_cast<size_t>(core::Counter::kCount); ++i) {
    auto c = static_cast<core::Counter>(i);
    out += fmt::format("# TYPE mxfront_{}_total counter\nmxfront_{}_total {}\n", core::name(c), core::name(c), core::value(c));
  }
  out += "# HELP mxfront_filter_verdicts_total Filter verdicts by filter and outcome.\n"
         "# TYPE mxfront_filter_verdicts_total counter\n";
  for (const auto& [filter, values] : core::filter_counters_snapshot())
    for (size_t o = 0; o < values.size(); ++o)
      out += fmt::format("mxfront_filter_verdicts_total{{filter=\"{}\",outcome=\"{}\"}} {}\n", filter,
                         core::name(static_cast<core::FilterOutcome>(o)), values[o]);
  gauge("uptime_seconds", "Seconds since start.", p.uptime);
  gauge("sessions", "Open SMTP sessions.", static_cast<double>(p.sessions));
  out += "# TYPE mxfront_sessions_by_profile gauge\n";
  for (const auto& [profile, n] : p.sessions_by_profile)
    out += fmt::format("mxfront_sessions_by_profile{{profile=\"{}\"}} {}\n", profile, n);
  gauge("transactions", "Sessions inside a mail transaction.", static_cast<double>(p.transactions));
  gauge("inflight_bytes", "Message bytes held in memory.", static_cast<double>(p.inflight_bytes));
  gauge("open_fds", "Open file descriptors.", static_cast<double>(p.open_fds));
  gauge("fd_limit", "RLIMIT_NOFILE.", static_cast<double>(p.fd_limit));
  gauge("worker_threads", "Filter worker threads.", static_cast<double>(p.worker_threads));
  gauge("worker_queue_depth", "Filter jobs waiting for a worker.", static_cast<double>(p.worker_queue));
  gauge("draining", "1 while draining after SIGTERM.", p.draining ? 1 : 0);
  for (const auto& f : core::counter_families()) {
    if (!f.help.empty()) out += fmt::format("# HELP mxfront_{} {}\n", f.name, f.help);
    out += fmt::format("# TYPE mxfront_{} counter\n", f.name);
    for (const auto& [labels, n] : core::labeled_counters_snapshot(f.name))
      out += fmt::format("mxfront_{}{{{}}} {}\n", f.name, labels, n);
  }
  for (const auto& f : core::gauge_families()) {
    if (!f.help.empty()) out += fmt::format("# HELP mxfront_{} {}\n", f.name, f.help);
    out += fmt::format("# TYPE mxfront_{} gauge\n", f.name);
    for (const auto& [labels, v] : core::labeled_gauges_snapshot(f.name))
      out += fmt::format("mxfront_{}{{{}}} {}\n", f.name, labels, v);
  }
  std::string last;
  auto hists = core::histograms_snapshot();
  std::stable_sort(hists.begin(), hists.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& h : hists) {
    if (h.name != last) out += fmt::format("# TYPE mxfront_{} histogram\n", last = h.name);
    for (size_t i = 0; i < h.bounds.size(); ++i)
      out += fmt::format("mxfront_{}_bucket{{{},le=\"{:g}\"}} {}\n", h.name, h.labels, h.bounds[i], h.cumulative[i]);
    out += fmt::format("mxfront_{}_bucket{{{},le=\"+Inf\"}} {}\n", h.name, h.labels, h.cumulative.back());
    out += fmt::format("mxfront_{0}_sum{{{1}}} {2:.6f}\nmxfront_{0}_count{{{1}}} {3}\n", h.name, h.labels, h.sum, h.count);
  }
  out += "# HELP mxfront_dependency_up Shared dependency health from background checks and passive judgements such as an open QMQP circuit breaker (1 up, 0 down).\n"
         "# TYPE mxfront_dependency_up gauge\n";
  for (const auto& d : p.dependencies)
    out += fmt::format("mxfront_dependency_up{{kind=\"{}\",name=\"{}\"}} {}\n", d.kind, d.name, d.up ? 1 : 0);
  out += "# TYPE mxfront_io_loop_lag_seconds gauge\n";
  for (size_t i = 0; i < p.loop_lag.size(); ++i)
    out += fmt::format("mxfront_io_loop_lag_seconds{{thread=\"{}\"}} {:.3f}\n", i, p.loop_lag[i]);
  return out;
}

}  // namespace ops
