// The OCR result cache (cache.h): an LRU list with a key index, one mutex, O(1) per get/put.
// An entry expires `ttl` after its last put; expired entries are dropped when met by get() and
// never returned. configure() is a reload: it re-bases every expiry on the new TTL and trims.
#include "filters/ocr/cache.h"

#include <algorithm>

namespace filters::ocr {
namespace {

// TTLs are clamped to [0, 100 years] so that `now + ttl` cannot overflow the clock's range.
ResultCache::Clock::duration clamp_ttl(ResultCache::Clock::duration ttl) {
  constexpr auto kMaxTtl = std::chrono::duration_cast<ResultCache::Clock::duration>(std::chrono::hours(24 * 365 * 100));
  return std::clamp(ttl, ResultCache::Clock::duration::zero(), kMaxTtl);
}

}  // namespace

ResultCache::ResultCache(size_t capacity, Clock::duration ttl) : capacity_(capacity), ttl_(clamp_ttl(ttl)) {}

std::optional<std::string> ResultCache::get(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (it->second->expires <= now) {
    lru_.erase(it->second);
    index_.erase(it);
    ++stats_.expirations;
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->text;
}

// A cache of capacity 0, or with a zero TTL, stores nothing. Replacing a key counts as an insertion.
void ResultCache::put(const std::string& key, std::string text, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (capacity_ == 0 || ttl_ <= Clock::duration::zero()) return;
  const auto expires = now + ttl_;
  ++stats_.insertions;
  if (auto it = index_.find(key); it != index_.end()) {
    it->second->text = std::move(text);
    it->second->expires = expires;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Item{key, std::move(text), expires});
  index_.emplace(key, lru_.begin());
  trim_locked();
}

// O(size): every expiry moves by the TTL change, so an entry older than the new TTL is never
// returned (and one still younger than a longer TTL lives on).
void ResultCache::configure(size_t capacity, Clock::duration ttl) {
  std::lock_guard lock(mu_);
  ttl = clamp_ttl(ttl);
  const auto delta = ttl - ttl_;
  for (Item& item : lru_) item.expires += delta;
  capacity_ = capacity;
  ttl_ = ttl;
  trim_locked();
}

size_t ResultCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

ResultCache::Stats ResultCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void ResultCache::trim_locked() {
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

}  // namespace filters::ocr
