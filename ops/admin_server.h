// ops::AdminServer — the HTTP listener for health checks and metrics (Boost.Beast), on its own
// thread and event loop, so it answers within milliseconds even when every SMTP thread is busy.
// GET /livez, /readyz, /health, /metrics; POST /reload (from loopback peers only: 403 otherwise)
// validates and applies the config file like SIGHUP and answers 200 or 409 with the error;
// anything else 404; one request per connection; every connection has a 5 s deadline (the reload
// itself may take longer) and at most 64 are served at once (more are closed).
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
