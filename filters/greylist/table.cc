// Greylisting arithmetic and the per-instance table (table.h).
#include "filters/greylist/table.h"

namespace filters::greylist {
namespace {
// ExpiringLru keeps steady_clock time points: ours are ms since the epoch, carried as they are.
core::ExpiringLru<Entry>::Clock::time_point at(Millis t) {
  return core::ExpiringLru<Entry>::Clock::time_point(std::chrono::duration_cast<core::ExpiringLru<Entry>::Clock::duration>(t));
}
}  // namespace

bool accepted(Outcome o) { return o == Outcome::PassedAfterDelay || o == Outcome::Known; }

long long retry_in_seconds(const Decision& d, const Timing& t) {
  long long ms = (t.delay - d.waited).count();
  long long s = (ms + 999) / 1000;
  return s < 1 ? 1 : s;
}

Decision decide(const Entry* e, Millis now, const Timing& t) {
  if (!e) return {Outcome::New, Millis(0)};
  if (e->passed) return {Outcome::Known, Millis(0)};
  Millis waited = now - e->first_seen;
  if (waited < t.delay) return {Outcome::Early, waited};
  return {Outcome::PassedAfterDelay, waited};  // an entry past retry_window has expired: not here
}

Decision LocalTable::check(const std::string& key, Millis now, const Timing& t) {
  std::lock_guard lock(mu_);
  auto e = entries_.get(key, at(now));
  Decision d = decide(e ? &*e : nullptr, now, t);
  record(key, d, now, t);
  return d;
}

void LocalTable::mirror(const std::string& key, const Decision& d, Millis now, const Timing& t) {
  std::lock_guard lock(mu_);
  record(key, d, now, t);
}

void LocalTable::record(const std::string& key, const Decision& d, Millis now, const Timing& t) {
  switch (d.outcome) {
    case Outcome::New:
    case Outcome::Early: {
      Millis first = now - d.waited;  // an early retry keeps the first sight and its expiry
      entries_.put(key, Entry{false, first}, at(first + t.retry_window));
      return;
    }
    case Outcome::PassedAfterDelay:
    case Outcome::Known: entries_.put(key, Entry{true, Millis(0)}, at(now + t.pass_ttl)); return;
  }
}

}  // namespace filters::greylist
