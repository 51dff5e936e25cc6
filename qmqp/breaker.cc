// Circuit breakers per mailbox server: state, transitions, logs and metrics.
#include "qmqp/breaker.h"

#include <fmt/format.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"

namespace qmqp {

const char* name(BreakerState s) {
  switch (s) {
    case BreakerState::Closed: return "closed";
    case BreakerState::Open: return "open";
    case BreakerState::HalfOpen: return "half_open";
  }
  return "?";
}

struct Breakers::Entry {
  BreakerState state = BreakerState::Closed;
  unsigned consecutive_failures = 0;
  std::string last_error;
  Clock::time_point opened_at{};
  Clock::time_point last_failure{};  // epoch = never failed
  bool trial_in_flight = false;
  core::LabeledGauge* state_gauge = nullptr;
  core::LabeledCounter* skips = nullptr;
  core::LabeledCounter* to[3] = {};  // transitions, indexed by the state moved to
};

Breakers::Breakers() {
  core::describe_gauge({"qmqp_breaker_state",
                        "Circuit breaker of each mailbox server (0 closed, 1 open: skipped, 2 half-open: one trial message)."});
  core::describe({"qmqp_breaker_transitions_total", "Circuit breaker transitions by mailbox server and state entered."});
  core::describe({"qmqp_breaker_skips_total", "Messages that skipped a mailbox server because its circuit breaker was open."});
}

Breakers::~Breakers() = default;

Breakers::Entry& Breakers::entry(const std::string& server) {
  auto it = entries_.find(server);
  if (it != entries_.end()) return *it->second;
  auto e = std::make_unique<Entry>();
  std::string label = core::labels({{"server", server}}).text();
  e->state_gauge = core::labeled_gauge("qmqp_breaker_state", label);
  core::set(e->state_gauge, 0);
  e->skips = core::labeled_counter("qmqp_breaker_skips_total", label);
  for (BreakerState s : {BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen})
    e->to[static_cast<int>(s)] =
        core::labeled_counter("qmqp_breaker_transitions_total",
                              core::labels({{"server", server}, {"to", std::string(name(s))}}).text());
  return *entries_.emplace(server, std::move(e)).first->second;
}

void Breakers::move(Entry& e, const std::string& server, BreakerState to, const std::string& why) {
  if (e.state == to) return;
  BreakerState from = e.state;
  e.state = to;
  core::set(e.state_gauge, static_cast<double>(static_cast<int>(to)));
  core::count(e.to[static_cast<int>(to)]);
  auto& log = core::log();
  std::string text = core::safe_text(why);
  if (to == BreakerState::Open)
    log.warn("qmqp breaker server={} {} -> open after {} consecutive failure(s): {}", server, name(from),
             e.consecutive_failures, text);
  else
    log.info("qmqp breaker server={} {} -> {}: {}", server, name(from), name(to), text);
}

Breakers::Admit Breakers::admit(const std::string& server, const BreakerPolicy& p, Clock::time_point now) {
  std::lock_guard lock(mu_);
  Entry& e = entry(server);
  if (e.state == BreakerState::Open && now - e.opened_at >= p.open_time) {
    move(e, server, BreakerState::HalfOpen, "open_time passed, the next message is a trial");
    e.trial_in_flight = false;
  }
  switch (e.state) {
    case BreakerState::Closed: return Admit::Yes;
    case BreakerState::HalfOpen:
      if (!e.trial_in_flight) {
        e.trial_in_flight = true;
        return Admit::Trial;
      }
      break;
    case BreakerState::Open: break;
  }
  core::count(e.skips);
  return Admit::Skip;
}

void Breakers::succeeded(const std::string& server, Clock::time_point) {
  std::lock_guard lock(mu_);
  Entry& e = entry(server);
  e.consecutive_failures = 0;
  e.trial_in_flight = false;
  move(e, server, BreakerState::Closed, "the server answered");
}

void Breakers::failed(const std::string& server, const std::string& why, const BreakerPolicy& p,
                      Clock::time_point now) {
  std::lock_guard lock(mu_);
  Entry& e = entry(server);
  ++e.consecutive_failures;
  e.last_error = why;
  e.last_failure = now;
  switch (e.state) {
    case BreakerState::Closed:
      if (p.failure_threshold > 0 && e.consecutive_failures >= p.failure_threshold) {
        e.opened_at = now;
        move(e, server, BreakerState::Open, why);
      }
      break;
    case BreakerState::HalfOpen:  // the trial (or a message sent before) failed: open again
      e.trial_in_flight = false;
      e.opened_at = now;
      move(e, server, BreakerState::Open, "trial failed: " + why);
      break;
    case BreakerState::Open: break;  // a message sent before it opened, or a forced try
  }
}

void Breakers::abandon_trial(const std::string& server) {
  std::lock_guard lock(mu_);
  entry(server).trial_in_flight = false;
}

size_t Breakers::least_recently_failed(const std::vector<std::string>& servers) const {
  std::lock_guard lock(mu_);
  size_t best = 0;
  Clock::time_point best_at = Clock::time_point::max();
  for (size_t i = 0; i < servers.size(); ++i) {
    auto it = entries_.find(servers[i]);
    Clock::time_point at = it == entries_.end() ? Clock::time_point{} : it->second->last_failure;
    if (at < best_at) best = i, best_at = at;
  }
  return best;
}

Breakers::View Breakers::view(const std::string& server) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(server);
  if (it == entries_.end()) return {};
  const Entry& e = *it->second;
  return {e.state, e.consecutive_failures, e.last_error, e.trial_in_flight};
}

std::string Breakers::down_reason(const std::string& server, const BreakerPolicy& p, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(server);
  if (it == entries_.end()) return {};
  const Entry& e = *it->second;
  using Sec = std::chrono::duration<double>;
  switch (e.state) {
    case BreakerState::Closed: return {};
    case BreakerState::Open: {
      double open_for = Sec(now - e.opened_at).count();
      double left = Sec(p.open_time).count() - open_for;
      return fmt::format("circuit breaker open for {:.1f}s after {} consecutive failure(s), last: {}; {}", open_for,
                         e.consecutive_failures, e.last_error,
                         left > 0 ? fmt::format("a trial message in {:.1f}s at the earliest", left)
                                  : std::string("the next message is a trial"));
    }
    case BreakerState::HalfOpen:
      return fmt::format("circuit breaker half-open: {}, last failure: {}",
                         e.trial_in_flight ? "a trial message is under way" : "the next message is a trial",
                         e.last_error);
  }
  return {};
}

std::shared_ptr<Breakers> process_breakers() {
  static const std::shared_ptr<Breakers> breakers = std::make_shared<Breakers>();
  return breakers;
}

}  // namespace qmqp
