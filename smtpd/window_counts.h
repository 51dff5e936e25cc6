// Counts per key with a window (the AUTH brake's failures, the recipient brake's refusals per
// client address): each add() counts one more under a key and forgets all of them `window` later.
// WindowCounts is the interface; LocalWindowCounts keeps them in memory for this instance, and
// RedisWindowCounts (smtpd/redis_window_counts.h) shares them with the farm.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

#include "core/expiring_lru.h"

namespace smtpd {

using CountsClock = std::chrono::steady_clock;

// Thread-safe; never blocks (a remote store answers from a local view).
class WindowCounts {
 public:
  virtual ~WindowCounts() = default;
  // Counted under `key` at `now` (0 when none or forgotten).
  virtual size_t count(const std::string& key, CountsClock::time_point now) = 0;
  // One more under `key`; all of them are forgotten `window` after this one.
  virtual void add(const std::string& key, CountsClock::time_point now, CountsClock::duration window) = 0;
  // Takes back up to `n` of `key` (what a success explains).
  virtual void forgive(const std::string& key, size_t n, CountsClock::time_point now) = 0;
};

// In memory, this instance only: at most `capacity` keys (core::ExpiringLru: expired and least
// recently used keys go first).
class LocalWindowCounts final : public WindowCounts {
 public:
  explicit LocalWindowCounts(size_t capacity) : lru_(capacity) {}
  size_t count(const std::string& key, CountsClock::time_point now) override;
  void add(const std::string& key, CountsClock::time_point now, CountsClock::duration window) override;
  void forgive(const std::string& key, size_t n, CountsClock::time_point now) override;
  size_t size() const { return lru_.size(); }

 private:
  struct Entry {
    size_t n = 0;
    CountsClock::time_point expires;
  };
  core::ExpiringLru<Entry> lru_;
};

}  // namespace smtpd
