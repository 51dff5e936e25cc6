// Counts per key with a window, in memory (window_counts.h).
#include "smtpd/window_counts.h"

#include <mutex>

namespace smtpd {
namespace {

// count-then-put is one step for every store of this process (ExpiringLru locks each call only).
std::mutex& update_mutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

size_t LocalWindowCounts::count(const std::string& key, CountsClock::time_point now) {
  auto e = lru_.get(key, now);
  return e ? e->n : 0;
}

void LocalWindowCounts::add(const std::string& key, CountsClock::time_point now, CountsClock::duration window) {
  std::lock_guard lock(update_mutex());
  auto e = lru_.get(key, now);
  Entry next{e ? e->n + 1 : 1, now + window};
  lru_.put(key, next, next.expires);
}

void LocalWindowCounts::forgive(const std::string& key, size_t n, CountsClock::time_point now) {
  std::lock_guard lock(update_mutex());
  auto e = lru_.get(key, now);
  if (!e) return;
  if (e->n <= n) {
    lru_.put(key, Entry{0, now}, now);  // expired at once: dropped when next met
    return;
  }
  e->n -= n;
  lru_.put(key, *e, e->expires);
}

}  // namespace smtpd
