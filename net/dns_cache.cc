// DnsCache: a map plus an insertion-order list for eviction, under one mutex.
#include "net/dns_cache.h"

#include <algorithm>

namespace net {

void DnsCache::erase(std::unordered_map<std::string, Entry>::iterator it) {
  order_.erase(it->second.age);
  entries_.erase(it);
}

std::optional<DnsAnswer> DnsCache::get(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    erase(it);
    return std::nullopt;
  }
  return it->second.answer;
}

void DnsCache::put(const std::string& key, const DnsAnswer& a, Clock::time_point now, std::chrono::seconds max_ttl,
                   size_t capacity) {
  auto life = std::min<std::chrono::seconds>(std::chrono::seconds(a.ttl), max_ttl);
  if (capacity == 0 || life <= std::chrono::seconds(0)) return;
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) erase(it);
  // Expired entries among the oldest go first, then the oldest while over capacity.
  while (!order_.empty()) {
    auto oldest = entries_.find(order_.front());
    if (entries_.size() < capacity && oldest->second.expires > now) break;
    erase(oldest);
  }
  order_.push_back(key);
  entries_.emplace(key, Entry{a, now + life, std::prev(order_.end())});
}

size_t DnsCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace net
