// ops::AdminServer — the HTTP listener for health checks and metrics (Boost.Beast), on its own
// thread and event loop, so it answers within milliseconds even when every SMTP thread is busy.
// GET /livez, /readyz, /health, /metrics; POST /reload (from loopback peers only: 403 otherwise)
// validates and applies the config file like SIGHUP and answers 200 or 409 with the error;
// anything else 404; one request per connection. Starvation guards (kubelet probes must answer
// while someone holds connections open): the request must arrive within 2 s of the connect, the
// answer within 5 s (the reload itself may take longer); at most 64 connections at once and 16 per
// peer address. A new connection is always taken: at a bound, the oldest connection of that peer
// (or, at the total bound, of anyone) still waiting for its request is closed to make room; only
// when none is waiting is the new one closed.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "ops/probe.h"

namespace ops {

class AdminServer {
 public:
  using ProbeFn = std::function<Probe()>;  // called on the admin thread; must not block long
  using ReloadFn = std::function<std::string()>;  // "" = reloaded, else why not
  AdminServer(std::string host, uint16_t port, Thresholds t, ProbeFn probe, ReloadFn reload = nullptr);
  ~AdminServer();
  bool start(std::string& error);  // binds and starts the thread
  void stop();                     // closes and joins (idempotent)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ops
