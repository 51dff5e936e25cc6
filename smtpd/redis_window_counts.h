// RedisWindowCounts — counts per key with a window shared by the farm (issue 16: the AUTH brake's
// failures, the recipient brake's refusals per client address): a WindowCounts whose local view
// answers every count() at once, while each add() and forgive() also runs atomically in Redis (a
// Lua script: INCR/DECRBY + PEXPIRE + PUBLISH of the new farm-wide count on the store's channel);
// every instance subscribes to that channel and sets its local view to the published counts, so a
// guesser or harvester spread over the farm meets the same count as against one instance.
// Fails open: Redis slow or down means local counts only; each fallback is counted in /metrics
// (redis_fallbacks_total{counts=<name>}), each state change logged, and /health shows the
// dependency (passive).
// Owns one thread running the two Redis connections (commands, subscription).
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "core/dependency.h"
#include "core/expiring_lru.h"
#include "redis/client.h"
#include "smtpd/window_counts.h"

namespace smtpd {

class RedisWindowCounts final : public WindowCounts {
 public:
  // `name`: what is counted, for logs and metrics ("auth", "rcpt"); the keys are
  // <prefix><name>:<key> in Redis, their updates published on <prefix><channel>; `capacity`: keys of
  // the local view.
  RedisWindowCounts(redis::ClientConfig cfg, const std::string& prefix, std::string name, const std::string& channel,
                    size_t capacity);
  ~RedisWindowCounts() override;
  size_t count(const std::string& key, CountsClock::time_point now) override;
  void add(const std::string& key, CountsClock::time_point now, CountsClock::duration window) override;
  void forgive(const std::string& key, size_t n, CountsClock::time_point now) override;

  bool up() const;             // both connections up
  std::string down_reason() const;  // "" when up
  core::Dependency dependency() const;

 private:
  struct Entry {
    size_t n = 0;
    CountsClock::time_point expires;
  };
  void set_local(const std::string& key, size_t n, CountsClock::duration ttl);
  void on_message(const std::string& payload);
  void run_script(const char* script, const std::string& key, const std::string& arg);
  void on_state(const char* which, bool up, const std::string& why);

  std::string name_, prefix_, channel_;
  redis::ClientConfig cfg_;
  core::ExpiringLru<Entry> local_;
  std::mutex update_mu_;  // count-then-put of the local view as one step
  mutable std::mutex state_mu_;
  std::string down_why_ = "connecting";
  bool cmd_up_ = false, sub_up_ = false;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::shared_ptr<redis::Client> cmd_, sub_;
  std::thread thread_;
};

// The farm's counts on [redis] (made at start, kept by reloads): one store per brake, one /health
// row for both (the same server).
struct FarmCounts {
  std::shared_ptr<RedisWindowCounts> auth;  // AUTH failures (<prefix>auth:..., channel <prefix>auth-failures)
  std::shared_ptr<RedisWindowCounts> rcpt;  // refused recipients per address (<prefix>rcpt:..., <prefix>rcpt-refusals)
  core::Dependency dependency() const;
};

}  // namespace smtpd
