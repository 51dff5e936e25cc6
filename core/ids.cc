// Session ids: <unix seconds, 6 base36><instance, 6 base36><per-process counter, 4+ base36>,
// upper-case, 16 characters for the first 1.7 million sessions of a process.
#include "core/ids.h"

#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>

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
  // 31 random bits (36^6 > 2^31): two of a farm's instances collide once in two billion.
  static const unsigned long long instance = [] {
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) r = static_cast<uint32_t>(getpid()) * 2654435761u;
    return static_cast<unsigned long long>(r & 0x7fffffffu);
  }();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch()).count();
  std::string id;
  base36(id, static_cast<unsigned long long>(secs), 6);
  base36(id, instance, 6);
  base36(id, counter.fetch_add(1, std::memory_order_relaxed), 4);
  return id;
}
}  // namespace core
