// Recipient lookup cache: a bounded LRU map from a normalised (lower-case) address to the
// directory's answer, with separate lifetimes for positive and negative answers.
//  * Found is kept for positive_ttl; NotFound and Disabled for negative_ttl; Unavailable is never
//    kept (an outage must not be remembered). A ttl <= 0 disables that kind of entry.
//  * At most `capacity` entries (positive and negative together); past it the least recently
//    used entry is evicted. capacity 0 disables the cache (get() always misses, put() does nothing).
//  * Thread-safe (one mutex; every operation is O(1)). The clock is injectable for tests.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "ldap/directory.h"

namespace ldap {

class RecipientCache {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;   // expired entries included
    uint64_t expired = 0;  // found but too old (and removed)
    uint64_t evicted = 0;  // removed to make room
    uint64_t stored = 0;
  };

  RecipientCache(size_t capacity, std::chrono::duration<double> positive_ttl,
                 std::chrono::duration<double> negative_ttl, Now now = &Clock::now);

  std::optional<RecipientResult> get(const std::string& key);
  void put(const std::string& key, const RecipientResult& value);
  size_t size() const;
  Stats stats() const;

 private:
  struct Entry {
    std::string key;
    RecipientResult value;
    Clock::time_point expires;
  };
  std::optional<Clock::duration> ttl_for(Lookup status) const;
  void evict_to_capacity();  // mu_ held

  const size_t capacity_;
  const Clock::duration positive_ttl_, negative_ttl_;
  const Now now_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  Stats stats_;
};

}  // namespace ldap
