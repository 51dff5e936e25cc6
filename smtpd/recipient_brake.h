// The brake on recipient harvesting (issue 12; Postfix's smtpd_soft_error_limit,
// smtpd_hard_error_limit and smtpd_error_sleep_time): every recipient a session is refused
// (unknown, disabled, relay denied — not a temporary failure) counts; the first
// limits.rejected_recipients_soft are answered at once, the n-th after them waits
// n * limits.rejected_recipient_delay (at most 60 s), and the limits.rejected_recipients-th is
// answered and followed by 421 4.7.0 and the close. Pure: the session waits and closes.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>

namespace smtpd {

struct RecipientBrakeSettings {
  size_t soft = 10;                             // limits.rejected_recipients_soft
  size_t hard = 50;                             // limits.rejected_recipients
  std::chrono::steady_clock::duration step{};   // limits.rejected_recipient_delay
};

struct RecipientBrakeStep {
  std::chrono::steady_clock::duration delay{};  // before the refusal is sent
  bool close = false;                           // then 421 4.7.0 and close
};

inline constexpr std::chrono::seconds kRecipientBrakeMaxDelay{60};

// `refused`: refused recipients in this session, this one included (>= 1).
inline RecipientBrakeStep recipient_brake(size_t refused, const RecipientBrakeSettings& s) {
  RecipientBrakeStep st;
  if (refused > s.soft)
    st.delay = std::min<std::chrono::steady_clock::duration>(s.step * static_cast<long long>(refused - s.soft),
                                                             kRecipientBrakeMaxDelay);
  st.close = refused >= s.hard;
  return st;
}

}  // namespace smtpd
