// The OCR result cache: spam campaigns send the same picture thousands of times, so the text read
// from an image is kept by the image's pixel hash (and, optionally, its perceptual hash) in a
// bounded LRU with a TTL. Contract: thread-safe (one mutex, O(1) per call); an entry older than the
// TTL is never returned; at most `capacity` entries are held (the least recently used go first;
// the mechanism is core::ExpiringLru).
#pragma once
#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "core/expiring_lru.h"

namespace filters::ocr {

class ResultCache {
 public:
  using Clock = std::chrono::steady_clock;
  using Stats = core::ExpiringLru<std::string>::Stats;

  ResultCache(size_t capacity, Clock::duration ttl);
  std::optional<std::string> get(const std::string& key, Clock::time_point now = Clock::now()) {
    return map_.get(key, now);
  }
  // A zero TTL stores nothing; replacing a key counts as stored.
  void put(const std::string& key, std::string text, Clock::time_point now = Clock::now());
  // A reload: the new capacity applies at once, and every expiry moves by the TTL change, so an
  // entry older than a shorter TTL is never returned.
  void configure(size_t capacity, Clock::duration ttl);
  size_t size() const { return map_.size(); }
  Stats stats() const { return map_.stats(); }

 private:
  std::atomic<Clock::rep> ttl_;  // Clock::duration ticks, clamped to [0, 100 years]
  core::ExpiringLru<std::string> map_;
};

}  // namespace filters::ocr
