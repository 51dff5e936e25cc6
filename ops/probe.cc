// Judgements and renderings of a Probe; pure functions (unit-tested).
#include "ops/probe.h"

#include <algorithm>
#include <iterator>

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

namespace {

// The built-in counters (core::Counter) as Prometheus families: one name per thing counted with
// the outcome as a label, not one name per outcome. The enum keeps its names (the "stats" log
// line uses them); only this mapping decides what /metrics shows. Renames: docs/operations.md.
struct CounterFamilyDef {
  const char* name;
  const char* help;
  const char* label;  // null: the family is one unlabeled counter
};
constexpr CounterFamilyDef kCounterFamilies[] = {
    {"connections_total",
     "SMTP connections by outcome: accepted (greeted), or refused (turned away at the greeting: a connection "
     "limit, draining, a connect-phase filter, a bad PROXY header).",
     "outcome"},
    {"tls_handshakes_total", "TLS handshakes (STARTTLS or implicit TLS) by outcome: success or failure.", "outcome"},
    {"auth_attempts_total",
     "AUTH attempts by outcome: success, failure (wrong credentials or disabled account) or unavailable (the "
     "directory could not answer).",
     "outcome"},
    {"messages_total",
     "Messages at the end of DATA by outcome: relayed (250 after the mailbox server's K), tempfailed (4xx) or "
     "rejected (5xx).",
     "outcome"},
    {"recipients_rejected_total", "Recipients refused at RCPT by the filter chain (reject or tempfail).", nullptr},
    {"protocol_violations_total",
     "Sessions closed for a protocol violation (a bare CR or LF: the smuggling defence) or too many errors.", nullptr},
    {"timeouts_total", "Sessions closed because a wait timed out (421 4.4.2).", nullptr},
    {"rbl_zone_failures_total", "DNS list lookups that timed out or failed; the zone was skipped (fail open).", nullptr},
};

struct Exported {
  int family = -1;            // index into kCounterFamilies; -1: not mapped (exported under its own name)
  const char* value = nullptr;  // the label value, for a labeled family
};

Exported exported(core::Counter c) {
  using C = core::Counter;
  switch (c) {  // no default: a new Counter gets a -Wswitch warning here
    case C::ConnectionsAccepted: return {0, "accepted"};
    case C::ConnectionsRefused: return {0, "refused"};
    case C::TlsHandshakes: return {1, "success"};
    case C::TlsHandshakeFailures: return {1, "failure"};
    case C::AuthSuccesses: return {2, "success"};
    case C::AuthFailures: return {2, "failure"};
    case C::AuthUnavailable: return {2, "unavailable"};
    case C::MessagesRelayed: return {3, "relayed"};
    case C::MessagesTempFailed: return {3, "tempfailed"};
    case C::MessagesRejected: return {3, "rejected"};
    case C::RecipientsRejected: return {4, nullptr};
    case C::ProtocolViolations: return {5, nullptr};
    case C::Timeouts: return {6, nullptr};
    case C::RblZoneFailures: return {7, nullptr};
    case C::kCount: break;
  }
  return {};
}

// HELP text: backslash and newline escaped (the text format's rule for HELP lines).
std::string escape_help(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string undescribed(std::string_view name) {
  return fmt::format("{} {} (not described: its owner should call core::describe)", kUndescribed, name);
}

// {a="b",c="d"} or "" for an empty label set.
std::string braces(const std::string& labels) { return labels.empty() ? std::string() : "{" + labels + "}"; }

}  // namespace

std::string metrics_text(const Probe& p, const Thresholds& t) {
  std::string out;
  auto family = [&](std::string_view name, std::string_view help, const char* type) {
    out += fmt::format("# HELP mxfront_{0} {1}\n# TYPE mxfront_{0} {2}\n", name,
                       escape_help(help.empty() ? undescribed(name) : help), type);
  };
  auto sample = [&](std::string_view name, const std::string& labels, auto value) {
    out += fmt::format("mxfront_{}{} {}\n", name, braces(labels), value);
  };
  auto gauge = [&](const char* name, const char* help, double v) {
    family(name, help, "gauge");
    sample(name, "", v);
  };

  family("build_info", "Version, build and config (SHA-256 prefix) of this instance; always 1.", "gauge");
  sample("build_info",
         core::labels({{"version", core::kVersion}, {"build", core::kGitRev}, {"config", p.config_hash.substr(0, 12)}}).text(),
         1);

  // Built-in counters, grouped into their families.
  constexpr size_t kCounters = static_cast<size_t>(core::Counter::kCount);
  for (int f = 0; f < static_cast<int>(std::size(kCounterFamilies)); ++f) {
    const CounterFamilyDef& def = kCounterFamilies[f];
    family(def.name, def.help, "counter");
    for (size_t i = 0; i < kCounters; ++i) {
      auto c = static_cast<core::Counter>(i);
      Exported e = exported(c);
      if (e.family != f) continue;
      sample(def.name, def.label ? core::labels({{def.label, e.value}}).text() : std::string(), core::value(c));
    }
  }
  for (size_t i = 0; i < kCounters; ++i) {
    auto c = static_cast<core::Counter>(i);
    if (exported(c).family >= 0) continue;
    std::string name = fmt::format("{}_total", core::name(c));
    family(name, "", "counter");
    sample(name, "", core::value(c));
  }

  family("filter_verdicts_total",
         "Filter verdicts by filter and outcome (continue, accept, reject, tempfail, disconnect, timeout, error, "
         "cancelled); filter=\"score\" counts rejects by the summed score.",
         "counter");
  for (const auto& [filter, values] : core::filter_counters_snapshot())
    for (size_t o = 0; o < values.size(); ++o)
      sample("filter_verdicts_total",
             core::labels({{"filter", filter}, {"outcome", core::name(static_cast<core::FilterOutcome>(o))}}).text(),
             values[o]);

  gauge("uptime_seconds", "Seconds since start.", p.uptime);
  gauge("sessions", "Open SMTP sessions.", static_cast<double>(p.sessions));
  family("sessions_by_profile", "Open SMTP sessions by the profile of their listener.", "gauge");
  for (const auto& [profile, n] : p.sessions_by_profile) sample("sessions_by_profile", core::labels({{"profile", profile}}).text(), n);
  gauge("transactions", "Sessions inside a mail transaction (after MAIL FROM).", static_cast<double>(p.transactions));
  gauge("inflight_bytes", "Message bytes held in memory.", static_cast<double>(p.inflight_bytes));
  gauge("open_fds", "Open file descriptors.", static_cast<double>(p.open_fds));
  gauge("fd_limit", "File descriptor limit (RLIMIT_NOFILE soft limit).", static_cast<double>(p.fd_limit));
  gauge("worker_threads", "Filter worker threads.", static_cast<double>(p.worker_threads));
  gauge("worker_queue_depth", "Filter jobs waiting for a worker.", static_cast<double>(p.worker_queue));
  gauge("worker_queue_limit", "Filter jobs that may wait for a worker; past it new jobs get 451 4.3.0 at once.",
        static_cast<double>(p.worker_queue_limit));
  family("worker_jobs_total", "Filter jobs run on the worker pool (completed) or refused with 451 4.3.0 at once (shed).", "counter");
  sample("worker_jobs_total", core::labels({{"outcome", "completed"}}).text(), p.worker_jobs_completed);
  sample("worker_jobs_total", core::labels({{"outcome", "shed"}}).text(), p.worker_jobs_shed);
  gauge("draining", "1 while draining after SIGTERM.", p.draining ? 1 : 0);
  gauge("live", "1 while GET /livez answers ok (every I/O event loop runs).", livez(p, t).ok ? 1 : 0);
  gauge("ready", "1 while GET /readyz answers ok (local health: not draining, listening, fds, worker pool).",
        readyz(p, t).ok ? 1 : 0);

  for (const auto& f : core::counter_families()) {
    family(f.name, f.help, "counter");
    for (const auto& [labels, n] : core::labeled_counters_snapshot(f.name)) sample(f.name, labels, n);
  }
  for (const auto& f : core::gauge_families()) {
    family(f.name, f.help, "gauge");
    for (const auto& [labels, v] : core::labeled_gauges_snapshot(f.name)) sample(f.name, labels, v);
  }

  auto hists = core::histograms_snapshot();
  for (const auto& f : core::histogram_families()) {
    family(f.name, f.help, "histogram");
    for (const auto& h : hists) {
      if (h.name != f.name) continue;
      std::string sep = h.labels.empty() ? "" : ",";
      for (size_t i = 0; i < h.bounds.size(); ++i)
        out += fmt::format("mxfront_{}_bucket{{{}{}le=\"{:g}\"}} {}\n", h.name, h.labels, sep, h.bounds[i], h.cumulative[i]);
      out += fmt::format("mxfront_{}_bucket{{{}{}le=\"+Inf\"}} {}\n", h.name, h.labels, sep, h.cumulative.back());
      out += fmt::format("mxfront_{}_sum{} {:.6f}\n", h.name, braces(h.labels), h.sum);
      out += fmt::format("mxfront_{}_count{} {}\n", h.name, braces(h.labels), h.count);
    }
  }

  family("dependency_up", "Shared dependency health from background checks and passive judgements such as an open QMQP circuit breaker (1 up, 0 down), by kind and name.", "gauge");
  for (const auto& d : p.dependencies)
    sample("dependency_up", core::labels({{"kind", d.kind}, {"name", d.name}}).text(), d.up ? 1 : 0);
  family("io_loop_lag_seconds", "Seconds since each I/O thread's event loop last ran its heartbeat.", "gauge");
  for (size_t i = 0; i < p.loop_lag.size(); ++i)
    out += fmt::format("mxfront_io_loop_lag_seconds{} {:.3f}\n", braces(core::labels({{"thread", std::to_string(i)}}).text()),
                       p.loop_lag[i]);
  return out;
}

}  // namespace ops
