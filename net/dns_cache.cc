// DnsCache: the lifetime and capacity rules (dns_cache.h) over core::ExpiringLru.
#include "net/dns_cache.h"

#include <algorithm>

namespace net {

std::optional<DnsAnswer> DnsCache::get(const std::string& key, Clock::time_point now) { return map_.get(key, now); }

void DnsCache::put(const std::string& key, const DnsAnswer& a, Clock::time_point now, std::chrono::seconds max_ttl,
                   size_t capacity) {
  auto life = std::min<std::chrono::seconds>(std::chrono::seconds(a.ttl), max_ttl);
  if (capacity == 0 || life <= std::chrono::seconds(0)) return;
  map_.set_capacity(capacity);
  map_.drop_expired_tail(now);
  map_.put(key, a, now + life);
}

size_t DnsCache::size() const { return map_.size(); }

}  // namespace net
