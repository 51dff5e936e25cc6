// Recipient cache: which answers are kept and for how long (cache.h); the LRU is core::ExpiringLru.
#include "directory/cache.h"

namespace ldap {

RecipientCache::RecipientCache(size_t capacity, std::chrono::duration<double> positive_ttl,
                               std::chrono::duration<double> negative_ttl, Now now)
    : positive_ttl_(std::chrono::duration_cast<Clock::duration>(positive_ttl)),
      negative_ttl_(std::chrono::duration_cast<Clock::duration>(negative_ttl)),
      now_(std::move(now)),
      map_(capacity) {}

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

void RecipientCache::put(const std::string& key, const RecipientResult& value) {
  if (auto ttl = ttl_for(value.status)) map_.put(key, value, now_() + *ttl);
}

}  // namespace ldap
