// The OCR result cache (cache.h): what is kept and for how long; core::ExpiringLru holds it.
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

ResultCache::ResultCache(size_t capacity, Clock::duration ttl) : ttl_(clamp_ttl(ttl).count()), map_(capacity) {}

void ResultCache::put(const std::string& key, std::string text, Clock::time_point now) {
  Clock::duration ttl(ttl_.load(std::memory_order_relaxed));
  if (ttl > Clock::duration::zero()) map_.put(key, std::move(text), now + ttl);
}

void ResultCache::configure(size_t capacity, Clock::duration ttl) {
  ttl = clamp_ttl(ttl);
  Clock::duration old(ttl_.exchange(ttl.count()));
  map_.shift_expiry(ttl - old);
  map_.set_capacity(capacity);
}

}  // namespace filters::ocr
