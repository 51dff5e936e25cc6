// qmqp::Breakers — passive health of the mailbox servers: one circuit breaker per server address
// ("host:port"), fed by what the relays themselves observe, shared by every session of the process.
//
// A TCP connect check cannot see a server that accepts connections but never answers (a stopped
// qmqpd: the kernel completes the handshake). The relays can: a failure is a connect failure or
// timeout, an answer timeout, a missing, broken or unknown answer, or a send cut off. An answer K,
// Z or D is the server's verdict on the message and counts as proof of life (Z is not a failure).
//
//   closed    -> open       after policy.failure_threshold consecutive failures
//   open      -> half_open  policy.open_time after it opened, when the next message wants it: that
//                           message is the one trial; other messages keep skipping the server
//   half_open -> closed     the trial got a verdict (K/Z/D)
//   half_open -> open       the trial failed (open_time starts again)
//   any       -> closed     any verdict from the server (a message sent before it opened, a forced try)
//
// The state lives here, not in a config generation: a reload keeps the state of every server whose
// address is unchanged (the key is its "host:port"), a new address starts closed. Thread-safe: one
// mutex, held for a few comparisons per message and server, never across I/O.
// Every transition is logged and counted (/metrics: qmqp_breaker_state, qmqp_breaker_transitions_total,
// qmqp_breaker_skips_total).
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "qmqp/types.h"

namespace qmqp {

enum class BreakerState { Closed = 0, Open = 1, HalfOpen = 2 };
const char* name(BreakerState s);  // "closed", "open", "half_open"

class Breakers {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Admit { Yes, Trial, Skip };

  Breakers();
  ~Breakers();
  // May a message be sent to `server` now? Skip while open (counted), Trial for the one message
  // let through once open_time has passed (the breaker turns half-open), Yes when closed.
  Admit admit(const std::string& server, const BreakerPolicy& p, Clock::time_point now = Clock::now());
  // The server gave a verdict (K, Z or D).
  void succeeded(const std::string& server, Clock::time_point now = Clock::now());
  // The server failed this message (what went wrong in `why`).
  void failed(const std::string& server, const std::string& why, const BreakerPolicy& p,
              Clock::time_point now = Clock::now());
  // A trial that ended without a result (its relay was abandoned): the next message may try.
  void abandon_trial(const std::string& server);
  // Of `servers`, the index of the one whose last failure is the oldest (never failed = oldest).
  size_t least_recently_failed(const std::vector<std::string>& servers) const;

  struct View {
    BreakerState state = BreakerState::Closed;
    unsigned consecutive_failures = 0;
    std::string last_error;
    bool trial_in_flight = false;
  };
  View view(const std::string& server) const;
  // "" while closed, else why the server is judged down (for /health).
  std::string down_reason(const std::string& server, const BreakerPolicy& p, Clock::time_point now = Clock::now()) const;

 private:
  struct Entry;
  Entry& entry(const std::string& server);  // mu_ held
  void move(Entry& e, const std::string& server, BreakerState to, const std::string& why);  // mu_ held

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
};

// The breakers of this process: every config generation's relays use these.
std::shared_ptr<Breakers> process_breakers();

}  // namespace qmqp
