// Process-wide event counters: one row per counter (name and meaning in metrics.cc), lock-free
// increments from any thread. Logged as one "stats" line at shutdown; the operations work will
// export the same table over HTTP.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace core {

enum class Counter {
  ConnectionsAccepted,
  ConnectionsRefused,      // over a connection limit, or while draining
  TlsHandshakes,
  TlsHandshakeFailures,
  AuthSuccesses,
  AuthFailures,            // wrong credentials or disabled account
  AuthUnavailable,         // directory could not answer
  MessagesRelayed,         // K from the mailbox server, 250 to the client
  MessagesTempFailed,      // 4xx after DATA (Z, no server, no answer, memory bound)
  MessagesRejected,        // 5xx after DATA (D, size, line length)
  RecipientsRejected,      // RCPT refused by the filter chain
  ProtocolViolations,      // bare CR/LF (smuggling defence), too many errors
  Timeouts,                // 421 4.4.2
  RblZoneFailures,         // a DNS list lookup timed out or failed: the zone was skipped (fail open)
  kCount
};

// Per-filter outcome counters, registered by filter name on first use and never freed (stable
// across config reloads). Outcomes: the five actions plus timeout, error and cancelled.
enum class FilterOutcome { Continue, Accept, Reject, TempFail, Disconnect, Timeout, Error, Cancelled, kCount };
struct FilterCounters;
FilterCounters* filter_counters(std::string_view filter);
void count(FilterCounters* f, FilterOutcome o);
uint64_t value(const FilterCounters* f, FilterOutcome o);
const char* name(FilterOutcome o);
// A copy of every filter's counters, for exporters: (filter name, value per outcome).
std::vector<std::pair<std::string, std::vector<uint64_t>>> filter_counters_snapshot();

// Latency histograms with fixed buckets (seconds), keyed by metric name and label set
// ("filter=\"rbl\"", "server=\"10.0.0.10:628\""); registered on first use, never freed.
struct Histogram;
Histogram* histogram(std::string_view name, std::string_view labels);
void observe(Histogram* h, double seconds);
struct HistogramSnapshot {
  std::string name, labels;
  std::vector<double> bounds;        // upper bounds; +Inf is implicit
  std::vector<uint64_t> cumulative;  // per bound, then +Inf last
  double sum = 0;
  uint64_t count = 0;
};
std::vector<HistogramSnapshot> histograms_snapshot();

// Counters with a label set, e.g. qmqp_answers{server="..",answer="K"}; registered on first use.
struct LabeledCounter;
LabeledCounter* labeled_counter(std::string_view name, std::string_view labels);
void count(LabeledCounter* c, uint64_t n = 1);
std::vector<std::pair<std::string, uint64_t>> labeled_counters_snapshot(std::string_view name);  // (labels, value)
// A family of labeled counters with its HELP text; /metrics shows every described family (even
// before its first count). Described by whoever owns the family (a filter's descriptor, the relay).
struct CounterFamily {
  std::string name;  // without the mxfront_ prefix: "ocr_images_total"
  std::string help;
};
void describe(const CounterFamily& f);  // idempotent
std::vector<CounterFamily> counter_families();  // described ones, then any other in use (help "")

// Gauges with a label set, e.g. qmqp_breaker_state{server=".."}: set to a value by their owner,
// registered on first use, never freed. Families are described like counter families.
struct LabeledGauge;
LabeledGauge* labeled_gauge(std::string_view name, std::string_view labels);
void set(LabeledGauge* g, double v);
std::vector<std::pair<std::string, double>> labeled_gauges_snapshot(std::string_view name);  // (labels, value)
void describe_gauge(const CounterFamily& f);    // idempotent
std::vector<CounterFamily> gauge_families();    // described ones, then any other in use (help "")

void count(Counter c, uint64_t n = 1);
uint64_t value(Counter c);
const char* name(Counter c);
std::string counters_line();  // "connections_accepted=12 ... filter_rbl_reject=3 ..."

}  // namespace core
