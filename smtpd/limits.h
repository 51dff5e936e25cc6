// Process-wide bounds shared by all I/O threads: concurrent connections (total and per client
// address) and the bytes of message data held in memory. Thread-safe; RAII handles release.
// A client is counted by core::IpAddress::network_key(): an IPv4 address (IPv4-mapped IPv6 folded
// to it), or the /64 of an IPv6 address, so one host cannot get past the per-client bound by
// cycling through the addresses of its /64.
#pragma once
#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/ip.h"

namespace smtpd {

class ConnectionLimiter {
 public:
  enum class Result { Ok, TooMany, TooManyFromIp };
  class Ticket {
   public:
    Ticket() = default;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Ticket(Ticket&& o) noexcept : owner_(o.owner_), ip_(std::move(o.ip_)) { o.owner_ = nullptr; }
    ~Ticket();

   private:
    friend class ConnectionLimiter;
    ConnectionLimiter* owner_ = nullptr;
    core::IpAddress ip_;  // the network key
  };

  ConnectionLimiter(size_t total, size_t per_ip) : total_(total), per_ip_(per_ip) {}
  Result acquire(const core::IpAddress& ip, Ticket& t);
  size_t current() const;

 private:
  void release(const core::IpAddress& key);
  size_t total_, per_ip_;
  mutable std::mutex mu_;
  size_t count_ = 0;
  std::unordered_map<core::IpAddress, size_t> by_ip_;  // by network key
};

class MemoryBudget {
 public:
  explicit MemoryBudget(size_t limit) : limit_(limit) {}
  bool reserve(size_t n);
  void release(size_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  size_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  size_t limit_;
  std::atomic<size_t> used_{0};
};

// One session's share of a MemoryBudget, kept equal to what the session holds.
class Reservation {
 public:
  explicit Reservation(MemoryBudget& b) : b_(b) {}
  ~Reservation() { b_.release(held_); }
  bool update(size_t want);  // false if growing to `want` would exceed the budget (nothing reserved)

 private:
  MemoryBudget& b_;
  size_t held_ = 0;
};

}  // namespace smtpd
