// net::DnsCache — DNS answers (positive and negative) by query key, shared by every thread (one
// mutex). An entry lives min(answer TTL, max_ttl); at most `capacity` entries (the oldest goes
// first; expired ones are dropped when met). The clock is a parameter so tests can fake it.
#pragma once
#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "net/dns.h"

namespace net {

class DnsCache {
 public:
  using Clock = std::chrono::steady_clock;

  std::optional<DnsAnswer> get(const std::string& key, Clock::time_point now);
  // Stores `a` unless capacity is 0 or its lifetime min(a.ttl, max_ttl) is zero.
  void put(const std::string& key, const DnsAnswer& a, Clock::time_point now, std::chrono::seconds max_ttl,
           size_t capacity);
  size_t size() const;

 private:
  struct Entry {
    DnsAnswer answer;
    Clock::time_point expires;
    std::list<std::string>::iterator age;  // position in order_
  };
  void erase(std::unordered_map<std::string, Entry>::iterator it);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // keys, oldest first
};

}  // namespace net
