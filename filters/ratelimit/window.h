// The sliding-window arithmetic of the ratelimit filter: pure, the time is always passed in (unit
// tests use a fake clock). Shared by the Redis path (redis_counters.h computes the window index
// here and lets Redis count) and the per-instance fallback (LocalCounters).
//
// Method: two fixed windows weighted, not a Redis sorted set. The estimate of the events in the
// last `window` is prev * (1 - elapsed) + cur, where cur counts the current fixed window, prev
// the one before it and elapsed is the fraction of the current window already gone. It costs two
// small integer keys per (limit, key) in Redis and one INCR + one GET per check whatever the
// limit, where a sorted set keeps one member per event (memory and ZREMRANGEBYSCORE work grow
// with the rate being limited: exactly what an attacker controls). Its error assumes events were
// spread evenly over the previous window, which is the accepted trade (rspamd, Cloudflare).
// Window indexes come from the wall clock (ms since the epoch / window), so instances of a farm
// agree on them as long as their clocks are synchronised (NTP).
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace filters::ratelimit {

using Millis = std::chrono::milliseconds;  // since the epoch for a time, a length for a window

struct WindowPos {
  int64_t index = 0;     // now / window
  double elapsed = 0;    // fraction of the current window gone, in [0, 1)
};
WindowPos position(Millis now, Millis window);
// The sliding-window estimate from the two fixed windows' counts.
double estimate(uint64_t prev, uint64_t cur, double elapsed);

// Per-instance counters with the same arithmetic, bounded to `capacity` keys (past it, keys whose
// windows are over go first, then arbitrary ones: failing open). Thread-safe.
class LocalCounters {
 public:
  explicit LocalCounters(size_t capacity) : capacity_(capacity ? capacity : 1) {}
  // Counts one event for `key` (whose limit has `window`) at `now`; returns the estimate, this one included.
  double hit(const std::string& key, Millis now, Millis window);
  size_t size() const;

 private:
  struct Slot {
    int64_t index = 0;
    uint64_t cur = 0, prev = 0;
    Millis window{1};
  };
  void make_room(Millis now);

  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace filters::ratelimit
