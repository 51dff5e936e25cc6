// The greylisting arithmetic of one triplet (pure: the time is always passed in, unit tests use a
// fake clock) and the per-instance table that applies it without Redis or while Redis fails.
// A triplet is either first-seen (at first_seen; forgotten retry_window after it, an early retry
// does not move it) or passed (accepted at once; forgotten pass_ttl after its last acceptance).
// The Redis script of store.cc applies the same rules; each of its answers is also mirrored into
// the local table, so that an outage keeps what this instance learnt from the farm.
#pragma once
#include <chrono>
#include <mutex>
#include <string>

#include "core/expiring_lru.h"

namespace filters::greylist {

using Millis = std::chrono::milliseconds;  // since the epoch for a time, a length for a duration

struct Timing {
  Millis delay{300'000};
  Millis retry_window{172'800'000};
  Millis pass_ttl{3'110'400'000};
};

enum class Outcome {
  New,               // first sight: greylisted
  Early,             // retried before the delay: greylisted again
  PassedAfterDelay,  // retried within [delay, retry_window): accepted, now passed
  Known,             // passed before: accepted, pass_ttl refreshed
};
bool accepted(Outcome o);  // PassedAfterDelay or Known

struct Decision {
  Outcome outcome = Outcome::New;
  Millis waited{0};  // since the first sight (0 for New and Known)
};
// Seconds the client still has to wait before a retry is accepted (New, Early), at least 1.
long long retry_in_seconds(const Decision& d, const Timing& t);

struct Entry {
  bool passed = false;
  Millis first_seen{0};  // first-seen entries only
};

// What a check at `now` decides for a triplet whose entry (if any, and not yet expired) is `e`.
Decision decide(const Entry* e, Millis now, const Timing& t);

// Per-instance triplets, bounded to `capacity` (least recently used go first past it: a forgotten
// triplet is greylisted again, never refused otherwise). Thread-safe.
class LocalTable {
 public:
  explicit LocalTable(size_t capacity) : entries_(capacity ? capacity : 1) {}
  // Decides for `key` at `now` and records the outcome.
  Decision check(const std::string& key, Millis now, const Timing& t);
  // Records what Redis decided for `key` at `now` (the mirror of a farm-wide answer).
  void mirror(const std::string& key, const Decision& d, Millis now, const Timing& t);
  size_t size() const { return entries_.size(); }

 private:
  void record(const std::string& key, const Decision& d, Millis now, const Timing& t);  // under mu_

  std::mutex mu_;  // a check's read and write are one step
  core::ExpiringLru<Entry> entries_;
};

}  // namespace filters::greylist
