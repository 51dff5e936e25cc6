// core::Dependency — a shared dependency (mailbox server, directory server, DNS list, virus engine)
// and its bounded health check. Whoever knows the dependency (a filter's descriptor, the wiring in
// app/) describes it; ops::DependencyMonitor runs the checks in the background for /health.
#pragma once
#include <functional>
#include <string>

namespace core {

struct Dependency {
  std::string kind;                    // "qmqp", "ldap", "dns", "clamav", ...
  std::string name;                    // "10.0.0.10:628"
  std::function<std::string()> check;  // "" = healthy, else what is wrong; must be bounded; "ok: ..." adds a detail
};

}  // namespace core
