// ops::Probe — one reading of the instance's local state, taken by the admin thread from atomics
// the server keeps (never by blocking an I/O thread), and the pure judgements made from it:
// /livez (the event loops answer), /readyz (this instance can take traffic: local health only,
// never a shared dependency), /health (JSON) and /metrics (Prometheus text format 0.0.4).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/dependencies.h"

namespace ops {

struct Probe {
  std::vector<double> loop_lag;     // seconds since each I/O thread's last heartbeat
  double uptime = 0;                // seconds
  bool draining = false;            // SIGTERM received
  bool listening = false;           // every configured listener is open
  size_t open_fds = 0, fd_limit = 0;
  size_t sessions = 0, transactions = 0, inflight_bytes = 0;
  size_t worker_threads = 0, worker_queue = 0, worker_queue_limit = 0;
  double worker_idle_for = 0;       // seconds since the worker pool last finished a job while jobs wait
  uint64_t worker_jobs_completed = 0, worker_jobs_shed = 0;  // since start (net::BlockingPool::stats)
  std::string config_hash, config_source, last_reload_error;
  std::vector<std::pair<std::string, size_t>> sessions_by_profile;
  std::vector<DependencyStatus> dependencies;  // shared dependencies: reported, never judged
};

struct Thresholds {
  double stall_after = 5;           // an I/O thread silent this long fails /livez
  double fd_ratio = 0.9;            // open fds above this share of the limit fail /readyz
  double worker_wedged_after = 30;  // a full-ish queue with no progress this long fails /readyz
};

struct Judgement {
  bool ok = true;
  std::string text;                 // "ok" or the reasons, one per line
};

Judgement livez(const Probe& p, const Thresholds& t);
Judgement readyz(const Probe& p, const Thresholds& t);
std::string health_json(const Probe& p, const Thresholds& t);
// Every family carries # HELP and # TYPE; label values are escaped (core::labels). A counter
// family whose owner did not describe it gets a HELP starting with kUndescribed (tests look for it).
inline constexpr const char* kUndescribed = "Undescribed:";
std::string metrics_text(const Probe& p, const Thresholds& t = {});

}  // namespace ops
