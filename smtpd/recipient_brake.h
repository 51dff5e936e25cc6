// The brake on recipient harvesting (issues 12 and 16; Postfix's smtpd_soft_error_limit,
// smtpd_hard_error_limit and smtpd_error_sleep_time): every recipient refused for good (unknown,
// disabled, relay denied — not a temporary failure) counts twice: in its session and for its client
// address across connections (limits.rejected_recipients_window; this instance's count, or the
// farm's with [redis]). Each count has its brake: the first `soft` refusals are answered at once,
// the n-th after them waits (n - soft) * limits.rejected_recipient_delay (at most 60 s), and at
// `hard` the refusal is followed by 421 4.7.0 and the close. The stronger step wins (the longer
// wait; the close if either closes). Only refusals decide: an address past its hard limit still
// has a valid recipient accepted, and its next session closes at its first refused recipient.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "smtpd/window_counts.h"

namespace smtpd {

struct RecipientBrakeSettings {
  size_t soft = 10;                             // limits.rejected_recipients_soft
  size_t hard = 50;                             // limits.rejected_recipients
  std::chrono::steady_clock::duration step{};   // limits.rejected_recipient_delay
  size_t address_soft = 20;                     // limits.address_rejected_recipients_soft
  size_t address_hard = 100;                    // limits.address_rejected_recipients (0 = no address brake)
  std::chrono::steady_clock::duration window = std::chrono::seconds(600);  // limits.rejected_recipients_window
};

enum class BrakeScope { None, Session, Address };  // what closes the session

struct RecipientBrakeStep {
  std::chrono::steady_clock::duration delay{};  // before the refusal is sent
  bool close = false;                           // then 421 4.7.0 and close
  BrakeScope closed_by = BrakeScope::None;      // Session when both close
};

inline constexpr std::chrono::seconds kRecipientBrakeMaxDelay{60};

// One brake: `refused` (this one included, >= 1) against `soft` and `hard`.
inline RecipientBrakeStep brake_step(size_t refused, size_t soft, size_t hard, std::chrono::steady_clock::duration step) {
  RecipientBrakeStep st;
  if (refused > soft)
    st.delay = std::min<std::chrono::steady_clock::duration>(step * static_cast<long long>(refused - soft),
                                                             kRecipientBrakeMaxDelay);
  st.close = refused >= hard;
  return st;
}

// `refused`: refused recipients in this session, this one included (>= 1).
inline RecipientBrakeStep recipient_brake(size_t refused, const RecipientBrakeSettings& s) {
  RecipientBrakeStep st = brake_step(refused, s.soft, s.hard, s.step);
  if (st.close) st.closed_by = BrakeScope::Session;
  return st;
}

// The stronger of the session's step and the address's: `address_refused` counted for the client
// address in the window, this one included (ignored when s.address_hard is 0).
inline RecipientBrakeStep recipient_brake(size_t refused, size_t address_refused, const RecipientBrakeSettings& s) {
  RecipientBrakeStep st = recipient_brake(refused, s);
  if (s.address_hard == 0) return st;
  RecipientBrakeStep a = brake_step(address_refused, s.address_soft, s.address_hard, s.step);
  st.delay = std::max(st.delay, a.delay);
  if (a.close && !st.close) st.closed_by = BrakeScope::Address;
  st.close = st.close || a.close;
  return st;
}

// The counts per client address behind the address brake, in `store` (this instance's or the farm's).
class AddressRecipientBrake {
 public:
  explicit AddressRecipientBrake(std::shared_ptr<WindowCounts> store) : store_(std::move(store)) {}

  // Counts one refusal of `ip` (unless the address brake is off) and returns the address's count,
  // this one included (0 when off).
  size_t refused(const std::string& ip, const RecipientBrakeSettings& s, CountsClock::time_point now) {
    if (s.address_hard == 0) return 0;
    store_->add(ip, now, s.window);
    return store_->count(ip, now);
  }

 private:
  std::shared_ptr<WindowCounts> store_;
};

}  // namespace smtpd
