// Counter storage and names.
#include "core/metrics.h"

#include <algorithm>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <unordered_map>

namespace core {
namespace {
constexpr size_t kN = static_cast<size_t>(Counter::kCount);
std::array<std::atomic<uint64_t>, kN> g_counters{};
constexpr std::array<const char*, kN> kNames = {
    "connections_accepted", "connections_refused", "tls_handshakes",       "tls_handshake_failures",
    "auth_successes",       "auth_failures",       "auth_unavailable",     "messages_relayed",
    "messages_tempfailed",  "messages_rejected",   "recipients_rejected",  "protocol_violations",
    "timeouts",             "rbl_zone_failures",
};
constexpr size_t kOutcomes = static_cast<size_t>(FilterOutcome::kCount);
constexpr std::array<const char*, kOutcomes> kOutcomeNames = {"continue", "accept", "reject", "tempfail",
                                                               "disconnect", "timeout", "error", "cancelled"};
}  // namespace

struct FilterCounters {
  std::string name;
  std::array<std::atomic<uint64_t>, kOutcomes> n{};
};

namespace {
std::mutex g_filters_mu;
std::deque<FilterCounters> g_filters;  // deque: addresses stay valid as it grows
}  // namespace

FilterCounters* filter_counters(std::string_view filter) {
  std::lock_guard lock(g_filters_mu);
  for (auto& f : g_filters)
    if (f.name == filter) return &f;
  g_filters.emplace_back();
  g_filters.back().name = std::string(filter);
  return &g_filters.back();
}

void count(FilterCounters* f, FilterOutcome o) { f->n[static_cast<size_t>(o)].fetch_add(1, std::memory_order_relaxed); }
uint64_t value(const FilterCounters* f, FilterOutcome o) { return f->n[static_cast<size_t>(o)].load(std::memory_order_relaxed); }

const char* name(FilterOutcome o) { return kOutcomeNames[static_cast<size_t>(o)]; }

std::vector<std::pair<std::string, std::vector<uint64_t>>> filter_counters_snapshot() {
  std::lock_guard lock(g_filters_mu);
  std::vector<std::pair<std::string, std::vector<uint64_t>>> out;
  for (const auto& f : g_filters) {
    std::vector<uint64_t> v;
    for (const auto& n : f.n) v.push_back(n.load(std::memory_order_relaxed));
    out.emplace_back(f.name, std::move(v));
  }
  return out;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

LabelSet labels(std::initializer_list<Label> ls) {
  std::string t;
  for (const auto& l : ls) {
    if (!t.empty()) t += ',';
    t += l.name;
    t += "=\"";
    t += escape_label_value(l.value);
    t += '"';
  }
  return LabelSet(std::move(t));
}

namespace {
// Up to 300 s: filter timeouts are minutes (clamav 120 s by default, ocr 30 s), and a histogram
// whose last bound is below them hides exactly the slow scans one wants to see.
constexpr std::array<double, 18> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,    1,     2.5,    5,     10,   30,    60,   120, 300};
}  // namespace

std::vector<double> histogram_bounds() { return {kBounds.begin(), kBounds.end()}; }

struct Histogram {
  std::string name, labels;
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};  // non-cumulative; last = +Inf
  std::atomic<uint64_t> sum_us{0}, count{0};
};

struct LabeledCounter {
  std::string name, labels;
  std::atomic<uint64_t> n{0};
};

struct LabeledGauge {
  std::string name, labels;
  std::atomic<double> v{0};
};

namespace {
std::mutex g_hist_mu;
std::deque<Histogram> g_hists;         // deques: addresses stay valid as they grow
std::deque<LabeledCounter> g_labeled;
// name '\0' labels -> the entry, so that a lookup per event (e.g. per server tried) stays cheap.
std::unordered_map<std::string, Histogram*> g_hist_index;
std::unordered_map<std::string, LabeledCounter*> g_labeled_index;
std::vector<CounterFamily> g_families, g_hist_families;
std::deque<LabeledGauge> g_gauges;
std::vector<CounterFamily> g_gauge_families;

std::string key(std::string_view name, std::string_view labels) {
  std::string k;
  k.reserve(name.size() + 1 + labels.size());
  k.append(name).push_back('\0');
  k.append(labels);
  return k;
}

void describe_in(std::vector<CounterFamily>& families, const CounterFamily& f) {
  std::lock_guard lock(g_hist_mu);
  for (const auto& known : families)
    if (known.name == f.name) return;
  families.push_back(f);
}

template <class Entries>
std::vector<CounterFamily> families_of(const std::vector<CounterFamily>& described, const Entries& in_use) {
  std::lock_guard lock(g_hist_mu);
  std::vector<CounterFamily> out = described;
  for (const auto& c : in_use)
    if (std::none_of(out.begin(), out.end(), [&](const CounterFamily& f) { return f.name == c.name; }))
      out.push_back({c.name, ""});
  return out;
}
}  // namespace

void describe(const CounterFamily& f) { describe_in(g_families, f); }
void describe_histogram(const CounterFamily& f) { describe_in(g_hist_families, f); }
std::vector<CounterFamily> counter_families() { return families_of(g_families, g_labeled); }
std::vector<CounterFamily> histogram_families() { return families_of(g_hist_families, g_hists); }

namespace {
// The entry of `name` and `labels` in `all`, made on first use; found through `index`.
template <class T>
T* find_or_add(std::unordered_map<std::string, T*>& index, std::deque<T>& all, std::string_view name,
               std::string_view labels) {
  std::string k = key(name, labels);
  std::lock_guard lock(g_hist_mu);
  if (auto it = index.find(k); it != index.end()) return it->second;
  T& e = all.emplace_back();
  e.name = std::string(name);
  e.labels = std::string(labels);
  index.emplace(std::move(k), &e);
  return &e;
}
std::unordered_map<std::string, LabeledGauge*> g_gauge_index;
}  // namespace

Histogram* histogram(std::string_view name, std::string_view labels) {
  return find_or_add(g_hist_index, g_hists, name, labels);
}

Histogram* histogram(std::string_view name, const LabelSet& labels) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  return histogram(name, std::string_view(labels.text()));
#pragma GCC diagnostic pop
}

void observe(Histogram* h, double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // a clock step or NaN must not wrap the sum
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  h->buckets[i].fetch_add(1, std::memory_order_relaxed);
  h->sum_us.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  h->count.fetch_add(1, std::memory_order_relaxed);
}

std::vector<HistogramSnapshot> histograms_snapshot() {
  std::lock_guard lock(g_hist_mu);
  std::vector<HistogramSnapshot> out;
  for (const auto& h : g_hists) {
    HistogramSnapshot s{h.name, h.labels, std::vector<double>(kBounds.begin(), kBounds.end()), {}, 0, 0};
    uint64_t acc = 0;
    for (const auto& b : h.buckets) s.cumulative.push_back(acc += b.load(std::memory_order_relaxed));
    s.sum = static_cast<double>(h.sum_us.load(std::memory_order_relaxed)) / 1e6;
    // The count is the +Inf bucket: read separately, a concurrent observe() could make them differ.
    s.count = s.cumulative.back();
    out.push_back(std::move(s));
  }
  return out;
}

LabeledCounter* labeled_counter(std::string_view name, std::string_view labels) {
  return find_or_add(g_labeled_index, g_labeled, name, labels);
}

LabeledCounter* labeled_counter(std::string_view name, const LabelSet& labels) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  return labeled_counter(name, std::string_view(labels.text()));
#pragma GCC diagnostic pop
}

void count(LabeledCounter* c, uint64_t n) { c->n.fetch_add(n, std::memory_order_relaxed); }

std::vector<std::pair<std::string, uint64_t>> labeled_counters_snapshot(std::string_view name) {
  std::lock_guard lock(g_hist_mu);
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& c : g_labeled)
    if (c.name == name) out.emplace_back(c.labels, c.n.load(std::memory_order_relaxed));
  return out;
}

LabeledGauge* labeled_gauge(std::string_view name, std::string_view labels) {
  return find_or_add(g_gauge_index, g_gauges, name, labels);
}

void set(LabeledGauge* g, double v) { g->v.store(v, std::memory_order_relaxed); }

std::vector<std::pair<std::string, double>> labeled_gauges_snapshot(std::string_view name) {
  std::lock_guard lock(g_hist_mu);
  std::vector<std::pair<std::string, double>> out;
  for (const auto& g : g_gauges)
    if (g.name == name) out.emplace_back(g.labels, g.v.load(std::memory_order_relaxed));
  return out;
}

void describe_gauge(const CounterFamily& f) { describe_in(g_gauge_families, f); }
std::vector<CounterFamily> gauge_families() { return families_of(g_gauge_families, g_gauges); }

void count(Counter c, uint64_t n) { g_counters[static_cast<size_t>(c)].fetch_add(n, std::memory_order_relaxed); }
uint64_t value(Counter c) { return g_counters[static_cast<size_t>(c)].load(std::memory_order_relaxed); }
const char* name(Counter c) { return kNames[static_cast<size_t>(c)]; }

std::string counters_line() {
  std::string out;
  for (size_t i = 0; i < kN; ++i) {
    if (!out.empty()) out += ' ';
    out += kNames[i];
    out += '=';
    out += std::to_string(g_counters[i].load(std::memory_order_relaxed));
  }
  std::lock_guard lock(g_filters_mu);
  for (const auto& f : g_filters)
    for (size_t o = 0; o < kOutcomes; ++o)
      out += fmt::format(" filter_{}_{}={}", f.name, kOutcomeNames[o], f.n[o].load(std::memory_order_relaxed));
  return out;
}

}  // namespace core
