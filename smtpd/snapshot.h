// What every session reads: one config generation as built by the program's wiring (app/) —
// the config, each profile's filter chain, the TLS context and the directory — swapped as a whole
// on reload; and the process-wide state that sessions on all threads share.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"
#include "filters/chain.h"
#include "filters/owned_headers.h"
#include "filters/resources.h"
#include "directory/directory.h"
#include "qmqp/types.h"
#include "smtpd/limits.h"

namespace smtpd {

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::map<std::string, std::shared_ptr<const filters::Chain>> chains;  // by profile name
  std::shared_ptr<boost::asio::ssl::context> tls;                      // null: no TLS configured
  std::shared_ptr<ldap::Directory> directory;                          // null: type "none"
  std::shared_ptr<filters::Resources> resources;                       // shared by all generations
  qmqp::ClientConfig relay;                                            // the mailbox servers, from config.qmqp
  std::vector<filters::OwnedHeader> owned_headers;                     // removed from clients' messages before the relay
};
struct SnapshotOrError {
  std::shared_ptr<const Snapshot> snap;
  std::string error;
};

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

}  // namespace smtpd
