// app::Operations — what an operator sees and what the service manager hears: the admin HTTP
// listener (/livez /readyz /health /metrics, POST /reload), the background dependency checks, and
// the systemd notifications and watchdog, joined to a running smtpd::Server through its Hooks.
#pragma once
#include <memory>

#include "config/config.h"
#include "smtpd/server.h"

namespace app {

class Operations {
 public:
  Operations();
  ~Operations();
  // The hooks the server is built with; `rebuild` makes the next generation (SIGHUP, POST /reload).
  smtpd::Hooks hooks(std::function<smtpd::SnapshotOrError(const smtpd::Snapshot&)> rebuild);
  // Opens the admin listener of `c` before the first generation is built (loading a full ClamAV
  // signature set takes a minute): /livez answers 200 and /readyz 503 until the server's
  // listeners are open. false = cannot listen (logged). Without it, the server opens it itself.
  bool open_admin_early(const config::Config& c);
  // The server the admin endpoints report on; set before Server::run().
  void attach(smtpd::Server& server);
  // Stops the admin listener and the checks (before the server is destroyed); idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace app
