// Bounded LRU with per-kind TTLs (cache.h).
#include "ldap/cache.h"

namespace ldap {

RecipientCache::RecipientCache(size_t capacity, std::chrono::duration<double> positive_ttl,
                               std::chrono::duration<double> negative_ttl, Now now)
    : capacity_(capacity),
      positive_ttl_(std::chrono::duration_cast<Clock::duration>(positive_ttl)),
      negative_ttl_(std::chrono::duration_cast<Clock::duration>(negative_ttl)),
      now_(std::move(now)) {}

std::optional<RecipientCache::Clock::duration> RecipientCache::ttl_for(Lookup status) const {
  Clock::duration ttl{};
  switch (status) {
    case Lookup::Found: ttl = positive_ttl_; break;
    case Lookup::NotFound:
    case Lookup::Disabled: ttl = negative_ttl_; break;
    case Lookup::Unavailable: return std::nullopt;
  }
  if (ttl <= Clock::duration::zero()) return std::nullopt;
  return ttl;
}

std::optional<RecipientResult> RecipientCache::get(const std::string& key) {
  if (capacity_ == 0) return std::nullopt;
  const auto now = now_();
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (it->second->expires <= now) {
    lru_.erase(it->second);
    index_.erase(it);
    ++stats_.expired;
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->value;
}

void RecipientCache::put(const std::string& key, const RecipientResult& value) {
  if (capacity_ == 0) return;
  auto ttl = ttl_for(value.status);
  if (!ttl) return;
  const auto expires = now_() + *ttl;
  std::lock_guard lock(mu_);
  ++stats_.stored;
  auto it = index_.find(key);
  if (it != index_.end()) {
    it->second->value = value;
    it->second->expires = expires;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Entry{key, value, expires});
  index_.emplace(key, lru_.begin());
  evict_to_capacity();
}

void RecipientCache::evict_to_capacity() {
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evicted;
  }
}

size_t RecipientCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

RecipientCache::Stats RecipientCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace ldap
