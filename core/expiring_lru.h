// core::ExpiringLru<V> — a bounded map whose entries expire, evicting the least recently used past
// its capacity: the mechanism under the directory's recipient cache (directory/cache.h), the OCR
// result cache (filters/ocr/cache.h) and the DNS answer cache (net/dns_cache.h), which only decide
// what is kept and for how long.
// Contract: thread-safe (one mutex; get/put O(1)); an entry at or past its expiry is never returned
// (it is dropped when met); at most capacity() entries; capacity 0 keeps nothing.
#pragma once
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace core {

template <class V>
class ExpiringLru {
 public:
  using Clock = std::chrono::steady_clock;
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;   // expired entries included
    uint64_t expired = 0;  // found but too old (and removed)
    uint64_t evicted = 0;  // removed to make room
    uint64_t stored = 0;   // put() calls that kept a value (a replacement included)
  };

  explicit ExpiringLru(size_t capacity) : capacity_(capacity) {}

  std::optional<V> get(const std::string& key, Clock::time_point now) {
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

  // Stores (or replaces) `key` until `expires`, as the most recently used entry.
  void put(const std::string& key, V value, Clock::time_point expires) {
    std::lock_guard lock(mu_);
    if (capacity_ == 0) return;
    ++stats_.stored;
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->value = std::move(value);
      it->second->expires = expires;
      lru_.splice(lru_.begin(), lru_, it->second);
      return;
    }
    lru_.push_front(Entry{key, std::move(value), expires});
    index_.emplace(key, lru_.begin());
    trim();
  }

  // Drops expired entries from the least recently used end, stopping at the first live one: a
  // cheap sweep (O(entries dropped)) so that dead entries do not hold room until they are met.
  void drop_expired_tail(Clock::time_point now) {
    std::lock_guard lock(mu_);
    while (!lru_.empty() && lru_.back().expires <= now) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
      ++stats_.expired;
    }
  }

  // New bound, applied at once (least recently used entries go first).
  void set_capacity(size_t capacity) {
    std::lock_guard lock(mu_);
    capacity_ = capacity;
    trim();
  }

  // Moves every entry's expiry by `delta` (a TTL changed by a reload). O(size).
  void shift_expiry(Clock::duration delta) {
    std::lock_guard lock(mu_);
    for (Entry& e : lru_) e.expires += delta;
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return lru_.size();
  }
  Stats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  struct Entry {
    std::string key;
    V value;
    Clock::time_point expires;
  };
  void trim() {  // mu_ held
    while (lru_.size() > capacity_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
      ++stats_.evicted;
    }
  }

  mutable std::mutex mu_;
  size_t capacity_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
  Stats stats_;
};

}  // namespace core
