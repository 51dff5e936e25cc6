// sd_notify(3) calls (libsystemd).
#include "ops/service_manager.h"

#include <systemd/sd-daemon.h>

namespace ops {

void ServiceManager::ready(const std::string& status) {
  std::string msg = "READY=1\nSTATUS=" + status;
  sd_notify(0, msg.c_str());
}
void ServiceManager::reloading() { sd_notify(0, "RELOADING=1\nSTATUS=reloading"); }
void ServiceManager::stopping() { sd_notify(0, "STOPPING=1\nSTATUS=draining"); }
void ServiceManager::watchdog_ping() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> ServiceManager::watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace ops
