// net::DnsCache — DNS answers (positive and negative) by query key, shared by every thread: what
// is kept and for how long; the mechanism is core::ExpiringLru (thread-safe, O(1) get/put).
// An entry lives min(answer TTL, max_ttl); at most `capacity` entries (the least recently used go
// first; expired ones are dropped when met, and from the least recently used end before each
// put). The clock is a parameter so tests can fake it.
#pragma once
#include <chrono>
#include <optional>
#include <string>

#include "core/expiring_lru.h"
#include "net/dns.h"

namespace net {

class DnsCache {
 public:
  using Clock = core::ExpiringLru<DnsAnswer>::Clock;

  std::optional<DnsAnswer> get(const std::string& key, Clock::time_point now);
  // Stores `a` unless capacity is 0 or its lifetime min(a.ttl, max_ttl) is zero. `capacity` is the
  // current bound (rbl.cache_size, which a reload may change): a smaller one evicts at once.
  void put(const std::string& key, const DnsAnswer& a, Clock::time_point now, std::chrono::seconds max_ttl,
           size_t capacity);
  size_t size() const;

 private:
  core::ExpiringLru<DnsAnswer> map_{0};
};

}  // namespace net
