// Session ids: <unix seconds base36><pid base36><per-process counter base36>, upper-case.
#include "core/ids.h"

#include <unistd.h>

#include <atomic>
#include <chrono>

namespace core {
namespace {
void base36(std::string& out, unsigned long long v, int min_width) {
  static const char* digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string s;
  do {
    s.insert(s.begin(), digits[v % 36]);
    v /= 36;
  } while (v);
  while (static_cast<int>(s.size()) < min_width) s.insert(s.begin(), '0');
  out += s;
}
}  // namespace

std::string new_session_id() {
  static std::atomic<unsigned long long> counter{0};
  static const unsigned long long pid = static_cast<unsigned long long>(getpid());
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch()).count();
  std::string id;
  base36(id, static_cast<unsigned long long>(secs), 6);
  base36(id, pid, 4);
  base36(id, counter.fetch_add(1, std::memory_order_relaxed), 4);
  return id;
}
}  // namespace core
