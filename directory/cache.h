// Recipient lookup cache: a bounded LRU map from a normalised (lower-case) address to the
// directory's answer, with separate lifetimes for positive and negative answers.
//  * Found is kept for positive_ttl; NotFound and Disabled for negative_ttl; Unavailable is never
//    kept (an outage must not be remembered). A ttl <= 0 disables that kind of entry.
//  * At most `capacity` entries (positive and negative together); past it the least recently
//    used entry is evicted. capacity 0 disables the cache (get() always misses, put() does nothing).
//  * Thread-safe, O(1) per operation (core::ExpiringLru). The clock is injectable for tests.
#pragma once
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "core/expiring_lru.h"
#include "directory/directory.h"

namespace ldap {

class RecipientCache {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  using Stats = core::ExpiringLru<RecipientResult>::Stats;

  RecipientCache(size_t capacity, std::chrono::duration<double> positive_ttl,
                 std::chrono::duration<double> negative_ttl, Now now = &Clock::now);

  std::optional<RecipientResult> get(const std::string& key) { return map_.get(key, now_()); }
  void put(const std::string& key, const RecipientResult& value);
  size_t size() const { return map_.size(); }
  Stats stats() const { return map_.stats(); }

 private:
  std::optional<Clock::duration> ttl_for(Lookup status) const;

  const Clock::duration positive_ttl_, negative_ttl_;
  const Now now_;
  core::ExpiringLru<RecipientResult> map_;
};

}  // namespace ldap
