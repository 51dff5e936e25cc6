// Process-wide logger: one line per event to stderr (and syslog when configured).
// Message bodies and passwords are never passed to it.
#pragma once
#include <spdlog/spdlog.h>

#include <string_view>

namespace core {
// Call once at start-up (and again after a config reload); safe before init (logs to stderr at info).
void init_logging(std::string_view level, bool syslog);
spdlog::logger& log();
}  // namespace core
