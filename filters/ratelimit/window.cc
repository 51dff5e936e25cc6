// Sliding-window arithmetic and the per-instance counters (window.h).
#include "filters/ratelimit/window.h"

#include <algorithm>

namespace filters::ratelimit {

WindowPos position(Millis now, Millis window) {
  int64_t w = std::max<int64_t>(window.count(), 1);
  int64_t t = std::max<int64_t>(now.count(), 0);
  return {t / w, static_cast<double>(t % w) / static_cast<double>(w)};
}

double estimate(uint64_t prev, uint64_t cur, double elapsed) {
  elapsed = std::clamp(elapsed, 0.0, 1.0);
  return static_cast<double>(prev) * (1.0 - elapsed) + static_cast<double>(cur);
}

double LocalCounters::hit(const std::string& key, Millis now, Millis window) {
  WindowPos pos = position(now, window);
  std::lock_guard lock(mu_);
  auto it = slots_.find(key);
  if (it == slots_.end()) {
    if (slots_.size() >= capacity_) make_room(now);
    it = slots_.emplace(key, Slot{pos.index, 0, 0, window}).first;
  }
  Slot& s = it->second;
  if (s.index != pos.index) {
    s.prev = s.index == pos.index - 1 ? s.cur : 0;  // older than the previous window: expired
    s.cur = 0;
    s.index = pos.index;
  }
  s.window = window;
  ++s.cur;
  return estimate(s.prev, s.cur, pos.elapsed);
}

size_t LocalCounters::size() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

// Under mu_. A slot is dead once its current window and the next are over.
void LocalCounters::make_room(Millis now) {
  for (auto it = slots_.begin(); it != slots_.end();)
    it = position(now, it->second.window).index > it->second.index + 1 ? slots_.erase(it) : std::next(it);
  while (slots_.size() >= capacity_) slots_.erase(slots_.begin());
}

}  // namespace filters::ratelimit
