// Counter storage and names.
#include "core/metrics.h"

#include <array>
#include <atomic>

namespace core {
namespace {
constexpr size_t kN = static_cast<size_t>(Counter::kCount);
std::array<std::atomic<uint64_t>, kN> g_counters{};
constexpr std::array<const char*, kN> kNames = {
    "connections_accepted", "connections_refused", "tls_handshakes",       "tls_handshake_failures",
    "auth_successes",       "auth_failures",       "auth_unavailable",     "messages_relayed",
    "messages_tempfailed",  "messages_rejected",   "recipients_rejected",  "protocol_violations",
    "timeouts",
};
}  // namespace

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
  return out;
}

}  // namespace core
