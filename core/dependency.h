// core::Dependency — a shared dependency (mailbox server, directory server, DNS list, virus engine)
// and its bounded health check. Whoever knows the dependency (a filter's descriptor, the wiring in
// app/) describes it; ops::DependencyMonitor runs the checks in the background for /health and adds
// the owner's passive judgement, if any.
#pragma once
#include <chrono>
#include <functional>
#include <string>

namespace core {

struct Dependency {
  std::string kind;                    // "qmqp", "ldap", "dns", "clamav", ...
  std::string name;                    // "10.0.0.10:628"
  std::function<std::string()> check;  // "" = healthy, else what is wrong; must be bounded; "ok: ..." adds a detail
                                       // none: no active check (the passive judgement alone)
  // Optional: what the traffic itself has shown (e.g. a mailbox server's circuit breaker is open),
  // read each time the status is reported: "" = nothing against it, else why the dependency is down
  // now, whatever the background check says. Must be cheap and never block (no I/O).
  std::function<std::string()> passive;
  std::chrono::milliseconds check_every{0};  // 0: every monitor round; else at most this often
};

}  // namespace core
