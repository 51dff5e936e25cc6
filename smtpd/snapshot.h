// What every session reads: one config generation as built by the program's wiring (app/) —
// the config, each profile's filter chain, the TLS context and the directory — swapped as a whole
// on reload; and the process-wide state that sessions on all threads share.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"
#include "filters/chain.h"
#include "filters/owned_headers.h"
#include "filters/resources.h"
#include "directory/directory.h"
#include "qmqp/types.h"
#include "smtpd/auth_brake.h"
#include "smtpd/limits.h"
#include "smtpd/recipient_brake.h"
#include "smtpd/redis_window_counts.h"

namespace smtpd {

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::map<std::string, std::shared_ptr<const filters::Chain>> chains;  // by profile name
  std::shared_ptr<boost::asio::ssl::context> tls;                      // null: no TLS configured
  std::shared_ptr<ldap::Directory> directory;                          // null: type "none"
  std::shared_ptr<filters::Resources> resources;                       // shared by all generations
  qmqp::ClientConfig relay;                                            // the mailbox servers, from config.qmqp
  std::vector<filters::OwnedHeader> owned_headers;                     // removed from clients' messages before the relay
  std::shared_ptr<FarmCounts> farm_counts;                             // null: no [redis]; made at start, kept by reloads
};
struct SnapshotOrError {
  std::shared_ptr<const Snapshot> snap;
  std::string error;
};

// What one client network may hold of the in-flight budget: limits.inflight_share of it, but
// never less than one largest message (with a DATA line), nor more than the whole budget.
inline size_t client_share(const config::Config& c) {
  size_t largest = c.limits.message_size;
  for (const auto& p : c.profiles) largest = std::max(largest, p.message_size);
  size_t share = static_cast<size_t>(static_cast<double>(c.limits.inflight_bytes) * c.limits.inflight_share);
  return std::min(c.limits.inflight_bytes, std::max(share, largest + c.limits.data_line_length));
}

// The drain's wake-up calls: each live session leaves one (it posts to the session's own thread);
// wake_all() runs them once `draining` is set, so that idle sessions close at once.
class DrainWakeups {
 public:
  uint64_t add(std::function<void()> wake) {
    std::lock_guard lock(mu_);
    wakeups_.emplace(++next_, std::move(wake));
    return next_;
  }
  void remove(uint64_t id) {
    std::lock_guard lock(mu_);
    wakeups_.erase(id);
  }
  void wake_all() {
    std::lock_guard lock(mu_);
    for (auto& [id, wake] : wakeups_) wake();
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, std::function<void()>> wakeups_;
  uint64_t next_ = 0;
};

// Process-wide state shared by sessions on all threads.
struct Shared {
  // `farm`: the counts shared by the farm (Redis); null: this instance's own.
  explicit Shared(const config::Config& c, const std::shared_ptr<FarmCounts>& farm = nullptr)
      : limiter(c.limits.connections, c.limits.connections_per_ip), budget(c.limits.inflight_bytes, client_share(c)),
        auth_brake(farm ? std::shared_ptr<WindowCounts>(farm->auth)
                        : std::make_shared<LocalWindowCounts>(c.auth.failure_table_size)),
        recipient_brake(farm ? std::shared_ptr<WindowCounts>(farm->rcpt)
                             : std::make_shared<LocalWindowCounts>(c.auth.failure_table_size)) {}
  ConnectionLimiter limiter;
  MemoryBudget budget;
  AuthBrake auth_brake;  // AUTH failures by address and login, across connections (this instance or the farm)
  AddressRecipientBrake recipient_brake;  // refused recipients by client address, across connections (idem)
  std::atomic<bool> draining{false};
  DrainWakeups drain_wakeups;
  std::atomic<size_t> sessions{0};      // live sessions
  std::array<std::atomic<size_t>, 3> sessions_by_profile{};  // indexed like config::Config::profiles
  std::atomic<size_t> transactions{0};  // sessions inside a mail transaction
};

}  // namespace smtpd
