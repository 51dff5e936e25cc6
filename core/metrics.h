// Process-wide event counters: one row per counter (name and meaning in metrics.cc), lock-free
// increments from any thread. Logged as one "stats" line at shutdown and exported on /metrics by
// ops/probe.cc, which maps each Counter to its Prometheus family and label (e.g.
// MessagesRelayed -> mxfront_messages_total{outcome="relayed"}).
#pragma once
#include <cstdint>
#include <initializer_list>
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

// Label sets. core::labels({{"server", addr}, {"answer", "K"}}) is the one place where label values
// are escaped for the Prometheus text format (backslash, double quote and newline); every metric
// with labels should be registered through it. Label names must be [a-zA-Z_][a-zA-Z0-9_]* (not
// checked: they are literals in the code).
struct Label {
  std::string_view name, value;
};
class LabelSet {
 public:
  LabelSet() = default;
  const std::string& text() const { return text_; }  // name="escaped value",... (no braces)
 private:
  friend LabelSet labels(std::initializer_list<Label> ls);
  explicit LabelSet(std::string t) : text_(std::move(t)) {}
  std::string text_;
};
LabelSet labels(std::initializer_list<Label> ls);
std::string escape_label_value(std::string_view v);  // \ -> \\, " -> \", newline -> \n

// Latency histograms (seconds), keyed by metric name and label set; registered on first use, never
// freed. Buckets from 0.5 ms to 300 s (the longest filter timeouts are minutes: clamav 120 s).
struct Histogram;
Histogram* histogram(std::string_view name, const LabelSet& labels);
[[deprecated("pass core::labels({{\"name\", value}}) so that the value is escaped")]]
Histogram* histogram(std::string_view name, std::string_view labels);  // labels: already-escaped text
void observe(Histogram* h, double seconds);
std::vector<double> histogram_bounds();  // upper bounds of the buckets; +Inf is implicit
struct HistogramSnapshot {
  std::string name, labels;
  std::vector<double> bounds;        // upper bounds; +Inf is implicit
  std::vector<uint64_t> cumulative;  // per bound, then +Inf last
  double sum = 0;
  uint64_t count = 0;
};
std::vector<HistogramSnapshot> histograms_snapshot();

// Counters with a label set, e.g. qmqp_answers_total{server="..",answer="K"}; registered on first
// use (a hash lookup: cheap enough per event, e.g. one counter per server tried), never freed.
//   core::count(core::labeled_counter("qmqp_connect_failures_total", core::labels({{"server", s}})));
struct LabeledCounter;
LabeledCounter* labeled_counter(std::string_view name, const LabelSet& labels);
[[deprecated("pass core::labels({{\"name\", value}}) so that the value is escaped")]]
LabeledCounter* labeled_counter(std::string_view name, std::string_view labels);  // labels: already-escaped text
void count(LabeledCounter* c, uint64_t n = 1);
std::vector<std::pair<std::string, uint64_t>> labeled_counters_snapshot(std::string_view name);  // (labels, value)
// A family of labeled counters with its HELP text; /metrics shows every described family (even
// before its first count). Described by whoever owns the family (a filter's descriptor, the relay).
// Prometheus conventions: a counter's name ends in _total, one name per thing counted with the
// outcome as a label (not one name per outcome), base units (seconds, bytes).
struct CounterFamily {
  std::string name;  // without the mxfront_ prefix: "ocr_images_total"
  std::string help;
};
void describe(const CounterFamily& f);  // idempotent
std::vector<CounterFamily> counter_families();  // described ones, then any other in use (help "")
// The same for histogram families ("filter_duration_seconds").
void describe_histogram(const CounterFamily& f);  // idempotent
std::vector<CounterFamily> histogram_families();  // described ones, then any other in use (help "")

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
