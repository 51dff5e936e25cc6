// Counter storage and names.
#include "core/metrics.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <deque>
#include <mutex>

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
