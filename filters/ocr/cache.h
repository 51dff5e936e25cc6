// The OCR result cache: spam campaigns send the same picture thousands of times, so the text read
// from an image is kept by the image's pixel hash (and, optionally, its perceptual hash) in a
// bounded LRU with a TTL. Contract: thread-safe (one mutex, O(1) per call); an entry older than the
// TTL is never returned; at most `capacity` entries are held (the least recently used go first).
#pragma once
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace filters::ocr {

class ResultCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Stats {
    uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0, expirations = 0;
  };

  ResultCache(size_t capacity, Clock::duration ttl);
  std::optional<std::string> get(const std::string& key, Clock::time_point now = Clock::now());
  void put(const std::string& key, std::string text, Clock::time_point now = Clock::now());
  // A reload: new bounds apply at once (entries past the new capacity are evicted).
  void configure(size_t capacity, Clock::duration ttl);
  size_t size() const;
  Stats stats() const;

 private:
  struct Item {
    std::string key;
    std::string text;
    Clock::time_point expires;
  };
  void trim_locked();

  mutable std::mutex mu_;
  size_t capacity_;
  Clock::duration ttl_;
  std::list<Item> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Item>::iterator> index_;
  Stats stats_;
};

}  // namespace filters::ocr
