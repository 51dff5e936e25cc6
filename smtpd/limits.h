// Process-wide bounds shared by all I/O threads: concurrent connections (total and per client
// address) and the bytes of message data held in memory (in all, and per client network).
// Thread-safe; RAII handles release. A client is counted by core::IpAddress::network_key(): an
// IPv4 address (IPv4-mapped IPv6 folded to it), or the /64 of an IPv6 address, so one host cannot
// get past the per-client bound by cycling through the addresses of its /64.
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
    Ticket(Ticket&& o) noexcept : owner_(o.owner_), ip_(o.ip_), keyed_(o.keyed_) { o.owner_ = nullptr; }
    ~Ticket();

   private:
    friend class ConnectionLimiter;
    ConnectionLimiter* owner_ = nullptr;
    core::IpAddress ip_;  // the network key
    bool keyed_ = false;  // false: counted against the total only
  };

  ConnectionLimiter(size_t total, size_t per_ip) : total_(total), per_ip_(per_ip) {}
  Result acquire(const core::IpAddress& ip, Ticket& t);
  // Counts against the total only: a trusted balancer's connection before its PROXY header named
  // the client. rekey() then counts it against that client's address as well (on TooManyFromIp
  // the ticket stays counted against the total only, until released).
  Result acquire_total(Ticket& t);
  Result rekey(Ticket& t, const core::IpAddress& ip);
  size_t current() const;

 private:
  void release(const core::IpAddress& key, bool keyed);
  size_t total_, per_ip_;
  mutable std::mutex mu_;
  size_t count_ = 0;
  std::unordered_map<core::IpAddress, size_t> by_ip_;  // by network key
};

// The bytes of message data held in memory: `limit` by all sessions together, `per_client` by the
// sessions of one client (keyed by client_network(): a /24 or /64), so that a few slow senders
// cannot hold the whole budget (0 = no per-client bound).
class MemoryBudget {
 public:
  explicit MemoryBudget(size_t limit, size_t per_client = 0) : limit_(limit), per_client_(per_client) {}
  bool reserve(size_t n);
  void release(size_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  bool reserve(const std::string& client, size_t n);  // the client's share first, then the total
  void release(const std::string& client, size_t n);
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t used_by(const std::string& client) const;
  // Whether `n` more bytes would fit, for `client` and in all (a hint: nothing is reserved).
  bool room_for(const std::string& client, size_t n) const;

 private:
  size_t limit_, per_client_;
  std::atomic<size_t> used_{0};
  mutable std::mutex mu_;  // by_client_
  std::unordered_map<std::string, size_t> by_client_;
};

// One session's share of a MemoryBudget, kept equal to what the session holds.
class Reservation {
 public:
  explicit Reservation(MemoryBudget& b) : b_(b) {}
  ~Reservation() { b_.release(client_, held_); }
  // The client network the bytes are counted for (set while nothing is held; "" = none).
  void set_client(std::string client);
  bool update(size_t want);  // false if growing to `want` would exceed the budget (nothing reserved)
  bool room_for(size_t more) const { return b_.room_for(client_, more); }

 private:
  MemoryBudget& b_;
  std::string client_;
  size_t held_ = 0;
};

// The key of the per-client memory share: the /24 of an IPv4 address ("192.0.2.0/24"), the /64 of
// an IPv6 one ("2001:db8:1:2::/64"); IPv4-mapped IPv6 counts as IPv4 (core::IpAddress folds it).
std::string client_network(const core::IpAddress& ip);

}  // namespace smtpd
