// Logger set-up: stderr sink always, syslog sink (facility mail) when enabled.
#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>

#include <memory>

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

void init_logging(std::string_view level, bool syslog) {
  auto l = make(syslog);
  l->set_level(spdlog::level::from_str(std::string(level)));
  std::atomic_store(&instance(), l);
}

spdlog::logger& log() { return *std::atomic_load(&instance()); }
}  // namespace core
