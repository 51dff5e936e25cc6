// Logger set-up: stderr sink always, syslog sink (facility mail) when enabled.
#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>

#include <memory>
#include <mutex>
#include <vector>

namespace core {
namespace {
std::shared_ptr<spdlog::logger> make(bool syslog) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_sink_mt>()};
  if (syslog) sinks.push_back(std::make_shared<spdlog::sinks::syslog_sink_mt>("mxfront", LOG_PID, LOG_MAIL, false));
  auto l = std::make_shared<spdlog::logger>("mxfront", sinks.begin(), sinks.end());
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  l->flush_on(spdlog::level::trace);
  return l;
}
std::shared_ptr<spdlog::logger>& instance() {
  static std::shared_ptr<spdlog::logger> l = make(false);
  return l;
}
}  // namespace

// log() hands out a reference, so a logger must outlive every caller that may still hold one: a
// reload only changes the level of the running logger (atomic in spdlog); a new logger is made
// only when the syslog setting changes, and the one it replaces is kept for the life of the
// process (one per change; freeing it raced with I/O threads logging, ASan caught it in the soak).
void init_logging(std::string_view level, bool syslog) {
  static std::mutex mu;
  static bool with_syslog = false;
  static std::vector<std::shared_ptr<spdlog::logger>> retired;
  std::lock_guard lock(mu);
  auto l = std::atomic_load(&instance());
  if (syslog != with_syslog) {
    retired.push_back(l);
    l = make(syslog);
    with_syslog = syslog;
  }
  l->set_level(spdlog::level::from_str(std::string(level)));
  std::atomic_store(&instance(), l);
}

spdlog::logger& log() { return *std::atomic_load(&instance()); }
}  // namespace core
