// smtpd::Server — listeners, I/O threads (one io_context each), signals, drain and reload.
// The main thread owns the acceptors and signals and hands each accepted socket to the next
// I/O thread; a Session then lives entirely on that thread. What a reload builds, what the service
// manager hears and what the admin endpoints show is the program's wiring (app/), given as Hooks.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtpd/snapshot.h"

namespace smtpd {

// What the server asks of the program around it. Every hook is optional.
struct Hooks {
  // Builds the next generation (SIGHUP, Server::reload()); an error keeps the running one.
  std::function<SnapshotOrError(const Snapshot& current)> rebuild;
  // After a new generation went live.
  std::function<void(const Snapshot& now)> swapped;
  // Before the listeners are opened (state() already answers): false aborts start-up (exit 1).
  std::function<bool()> starting;
  // Service-manager notifications (systemd): status texts and the watchdog.
  std::function<void(const std::string& status)> ready;
  std::function<void()> reloading, stopping, watchdog_ping;
  std::optional<std::chrono::microseconds> watchdog_interval;
};

// What the server reports about itself, for health checks and metrics; read from any thread.
struct State {
  std::vector<double> loop_lag;  // seconds since each I/O thread's last heartbeat
  double uptime = 0;
  bool draining = false, listening = false;
  size_t sessions = 0, transactions = 0, inflight_bytes = 0;
  std::vector<std::pair<std::string, size_t>> sessions_by_profile;
  std::shared_ptr<const Snapshot> snapshot;
  std::string last_reload_error;
};

// SIGTERM, SIGINT and SIGHUP are blocked in the calling thread (and so in every thread it starts
// later); Server::run() unblocks them in the main thread only, once its handlers are installed.
// Call it first thing, before any thread exists: a control signal then always lands on the main
// thread's event loop, never on a pool or library thread (under ThreadSanitizer a signal taken by
// a thread blocked in an uninstrumented call could wait indefinitely).
void block_control_signals();

class Server {
 public:
  Server(std::shared_ptr<const Snapshot> s, Hooks hooks);
  ~Server();
  // Runs until SIGTERM/SIGINT and the drain are done. Returns the process exit code.
  int run();
  // Thread-safe: the reload runs on the main thread, like SIGHUP; returns "" or why it was refused.
  std::string reload();
  State state() const;  // thread-safe

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smtpd
