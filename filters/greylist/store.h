// filters::greylist::Store — where triplets are kept: in Redis when a [redis] section exists
// (shared by the farm), else, and whenever Redis does not answer within redis.timeout, in this
// instance's LocalTable (fail open: Redis trouble never refuses mail by itself; the local table
// greylists what it has not seen, and accepts what this instance saw pass).
// Redis: one atomic round trip per check, a Lua script (redis/script.h: EVALSHA, EVAL after
// NOSCRIPT) applying table.h's rules to one key <redis.key_prefix>gl:<net>|<sender>|<rcpt> whose
// value is the first-seen time in ms (TTL retry_window, set once) or "p" once passed (TTL
// pass_ttl, refreshed at each acceptance): Redis drops expired triplets itself. Times come from
// the instances' clocks (the farm's clocks agree through NTP; seconds of skew do not matter
// against a delay of minutes). Each fallback is counted (greylist_redis_fallback_total{reason}),
// each change between farm-wide and local deciding is logged once, and /health shows Redis as a
// passive dependency. check() is awaited on the session's I/O thread (redis/thread_clients.h).
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "filters/greylist/table.h"
#include "redis/thread_clients.h"

namespace filters::greylist {

class Store {
 public:
  // No `redis`: local table only. `prefix`: redis.key_prefix.
  Store(std::optional<redis::ClientConfig> redis, std::string prefix, size_t local_capacity);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  struct Checked {
    Decision decision;
    bool farm = false;  // Redis decided (else the local table)
  };
  // Decides for `triplet` ("<net>|<sender>|<rcpt>") at `now` and records it.
  boost::asio::awaitable<Checked> check(std::string triplet, Millis now, Timing t);

  bool has_redis() const { return redis_ != nullptr; }
  std::string down_reason() const;  // "" when the connection is up (or no Redis is configured); never blocks
  LocalTable& local() { return local_; }
  const std::string& prefix() const { return prefix_; }

 private:
  void set_farm(bool farm, const std::string& why);

  std::string prefix_;
  LocalTable local_;
  redis::FarmState farm_;
  std::unique_ptr<redis::ThreadClients> redis_;  // null: no [redis]
};

}  // namespace filters::greylist
