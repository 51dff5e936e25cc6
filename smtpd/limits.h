// Process-wide bounds shared by all I/O threads: concurrent connections (total and per client
// address) and the bytes of message data held in memory. Thread-safe; RAII handles release.
#pragma once
#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

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
    std::string ip_;
  };

  ConnectionLimiter(size_t total, size_t per_ip) : total_(total), per_ip_(per_ip) {}
  Result acquire(const std::string& ip, Ticket& t);
  size_t current() const;

 private:
  void release(const std::string& ip);
  size_t total_, per_ip_;
  mutable std::mutex mu_;
  size_t count_ = 0;
  std::unordered_map<std::string, size_t> by_ip_;
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
