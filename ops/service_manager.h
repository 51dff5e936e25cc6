// ops::ServiceManager — tells systemd (Type=notify) what the process is doing: READY=1 once the
// listeners are open, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 when the drain
// starts, and WATCHDOG=1 at half the WatchdogSec interval, but only while every I/O event loop
// answers (a stuck loop stops the pings and systemd restarts the service). Without
// $NOTIFY_SOCKET (not started by systemd) every call does nothing.
#pragma once
#include <chrono>
#include <optional>
#include <string>

namespace ops {

class ServiceManager {
 public:
  static void ready(const std::string& status);
  static void reloading();
  static void stopping();
  static void watchdog_ping();
  // The interval at which to ping, when systemd asked for a watchdog (WATCHDOG_USEC).
  static std::optional<std::chrono::microseconds> watchdog_interval();
};

}  // namespace ops
