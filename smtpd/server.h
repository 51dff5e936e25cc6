// smtpd::Server — listeners, I/O threads (one io_context each), signals, drain and reload.
// The main thread owns the acceptors and signals and hands each accepted socket to the next
// I/O thread; a Session then lives entirely on that thread.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "config/config.h"
#include <boost/asio/ssl/context.hpp>
#include <map>

#include "filters/chain.h"
#include "filters/resources.h"
#include "ldap/directory.h"
#include "smtpd/limits.h"

namespace smtpd {

// Everything a session needs from one config generation; swapped as a whole on reload.
struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::map<std::string, std::shared_ptr<const filters::Chain>> chains;  // by profile name
  std::shared_ptr<boost::asio::ssl::context> tls;                      // null: no TLS configured
  std::shared_ptr<ldap::Directory> directory;                          // null: type "none"
  std::shared_ptr<filters::Resources> resources;                       // shared by all generations
};
struct SnapshotOrError {
  std::shared_ptr<const Snapshot> snap;
  std::string error;
};
// Builds the filter chains, the TLS context and the directory of a config generation. The first
// generation creates the shared filter resources (resources == nullptr); reloads pass them on.
SnapshotOrError make_snapshot(std::shared_ptr<const config::Config> c,
                              std::shared_ptr<filters::Resources> resources = nullptr);

// Process-wide state shared by sessions on all threads.
struct Shared {
  explicit Shared(const config::Config& c)
      : limiter(c.limits.connections, c.limits.connections_per_ip), budget(c.limits.inflight_bytes) {}
  ConnectionLimiter limiter;
  MemoryBudget budget;
  std::atomic<bool> draining{false};
  std::atomic<size_t> sessions{0};      // live sessions
  std::array<std::atomic<size_t>, 3> sessions_by_profile{};  // indexed like config::Config::profiles
  std::atomic<size_t> transactions{0};  // sessions inside a mail transaction
};

// SIGTERM, SIGINT and SIGHUP are blocked in the calling thread (and so in every thread it starts
// later); Server::run() unblocks them in the main thread only, once its handlers are installed.
// Call it first thing, before any thread exists: a control signal then always lands on the main
// thread's event loop, never on a pool or library thread (under ThreadSanitizer a signal taken by
// a thread blocked in an uninstrumented call could wait indefinitely).
void block_control_signals();

class Server {
 public:
  explicit Server(std::shared_ptr<const Snapshot> s);
  ~Server();
  // Runs until SIGTERM/SIGINT and the drain are done. Returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smtpd
