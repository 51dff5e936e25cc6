// Logger set-up: stderr sink always, syslog sink (facility mail) when enabled. On a terminal or a
// file, each line starts with an ISO 8601 timestamp with its zone; when stderr is the journal
// (systemd sets JOURNAL_STREAM), each line starts with its syslog priority as sd-daemon(3) says
// ("<3>" for errors), so journalctl -p works, and the journal's own timestamp is used.
#include "core/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <memory>
#include <mutex>
#include <vector>

namespace core {
namespace {
// "%*": the line's syslog priority as an sd-daemon prefix, "<3>".
class PriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& m, const std::tm&, spdlog::memory_buf_t& dest) override {
    int p = LOG_INFO;
    switch (m.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: p = LOG_DEBUG; break;
      case spdlog::level::info: p = LOG_INFO; break;
      case spdlog::level::warn: p = LOG_WARNING; break;
      case spdlog::level::err: p = LOG_ERR; break;
      case spdlog::level::critical: p = LOG_CRIT; break;
      default: break;
    }
    const char text[] = {'<', static_cast<char>('0' + p), '>'};
    dest.append(text, text + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PriorityFlag>(); }
};

// True when stderr is the stream systemd connected to the journal: JOURNAL_STREAM is
// "device:inode" of that stream (systemd.exec(5)); a redirected stderr no longer matches.
bool stderr_is_journal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

std::shared_ptr<spdlog::logger> make(bool syslog) {
  auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<PriorityFlag>('*');
  f->set_pattern(stderr_is_journal() ? "%*%l %v" : "%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  err->set_formatter(std::move(f));
  std::vector<spdlog::sink_ptr> sinks{err};
  if (syslog) {
    auto sys = std::make_shared<spdlog::sinks::syslog_sink_mt>("mxfront", LOG_PID, LOG_MAIL, false);
    sys->set_pattern("%l %v");  // syslog has the time and the priority
    sinks.push_back(sys);
  }
  auto l = std::make_shared<spdlog::logger>("mxfront", sinks.begin(), sinks.end());
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
