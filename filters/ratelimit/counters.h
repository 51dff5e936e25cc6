// filters::ratelimit::Counters — where the ratelimit filter counts: in Redis when a [redis]
// section exists (farm-wide), else, and whenever Redis does not answer in time, in this
// instance's LocalCounters (fail open, loudly).
// Redis: one atomic round trip per check, however many limits it counts: a Lua script (EVALSHA,
// EVAL when the server answers NOSCRIPT) that INCRs each limit's current-window key, sets its
// expiry to 2 windows when the INCR creates it, and reads the previous window's count. Keys:
// <redis.key_prefix>rl:<limit name>:<key value>:<window index>. Every command has the client's
// timeout (redis.timeout): a check never waits on a dead or paused Redis longer than that.
// Each fallback is counted (ratelimit_redis_fallback_total{reason}); the change between farm-wide
// and local counting is logged once per change; /health shows Redis as a passive dependency.
// Redis: one client per I/O thread (redis/thread_clients.h): hit() is awaited on the session's I/O thread.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "filters/ratelimit/window.h"
#include "redis/thread_clients.h"

namespace filters::ratelimit {

struct Count {
  std::string key;  // "<limit name>:<key value>"
  Millis window{1};
};

class Counters {
 public:
  // No `redis`: local counting only. `prefix`: redis.key_prefix.
  Counters(std::optional<redis::ClientConfig> redis, std::string prefix, size_t local_capacity);
  ~Counters();
  Counters(const Counters&) = delete;
  Counters& operator=(const Counters&) = delete;

  // Counts one event for each of `counts` at `now`; the estimates in the same order.
  boost::asio::awaitable<std::vector<double>> hit(std::vector<Count> counts, Millis now);

  bool has_redis() const { return redis_ != nullptr; }
  std::string down_reason() const;  // "" when the Redis connection is up (or none is configured); never blocks
  LocalCounters& local() { return local_; }

  // The Redis arguments of one check (pure; exposed for tests): EVALSHA <sha> <2n> cur,prev... ttl...
  static std::vector<std::string> script_args(const std::string& prefix, const std::vector<Count>& counts, Millis now,
                                              bool by_sha);

 private:
  std::vector<double> local_hit(const std::vector<Count>& counts, Millis now);
  void set_farm(bool farm, const std::string& why);

  std::string prefix_;
  LocalCounters local_;
  redis::FarmState farm_;                    // Redis counted the last check, or the local counters
  std::unique_ptr<redis::ThreadClients> redis_;  // null: no [redis]
};

}  // namespace filters::ratelimit
