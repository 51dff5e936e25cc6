// ops::DependencyMonitor — background health checks of the shared dependencies (mailbox servers,
// directory servers, DNS lists, the virus engine), for /health and /metrics only: readiness never
// depends on them (a shared outage must not empty the balancer's pool).
//
// Each check is a blocking function bounded by its own timeout, run one after another on the
// monitor's own thread every `interval` (or less often: Dependency::check_every; a dependency
// without a check has only its passive judgement) — never on the request path and never on an
// I/O thread.
// A dependency turns "down" after `fall` consecutive failures and "up" after `rise` consecutive
// successes (no flapping). A dependency whose owner judges it down from the traffic it sees
// (Dependency::passive, e.g. a mailbox server's open circuit breaker) is reported down at once,
// with that reason, whatever the background check says.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/dependency.h"

namespace ops {

using core::Dependency;  // the check, described by its owner (core/dependency.h)

struct DependencyStatus {
  std::string kind, name;
  bool up = true;                          // judged with rise/fall
  bool checked = false;                    // at least one check ran
  unsigned consecutive_failures = 0, consecutive_successes = 0;
  std::string last_error;
  double last_latency_ms = 0;
  std::string detail;                      // the last successful check's text after "ok: ", if any
  std::string passive_error;               // Dependency::passive's verdict when reported; non-empty = down
  std::chrono::steady_clock::time_point last_check{};  // when the last active check ran
};

class DependencyMonitor {
 public:
  DependencyMonitor(std::chrono::milliseconds interval, unsigned rise, unsigned fall);
  ~DependencyMonitor();
  void set(std::vector<Dependency> deps);  // replaces the list (config reload); statuses of kept names stay
  void start();
  void stop();
  std::vector<DependencyStatus> statuses() const;
  void run_once();                         // one round, on the calling thread (tests)

 private:
  void loop();
  bool due(const Dependency& d) const;
  std::chrono::milliseconds interval_;
  unsigned rise_, fall_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<Dependency> deps_;
  std::vector<DependencyStatus> status_;
  std::thread thread_;
};

// A TCP connect to host:port within `timeout` (then closed): "" or the error.
std::string tcp_connect_check(const std::string& host, uint16_t port, std::chrono::milliseconds timeout);

}  // namespace ops
