// The recipient brake (smtpd/recipient_brake.h): the session's brake alone, the stronger of the
// session's and the address's steps, the address count across connections and its window.
#include "smtpd/recipient_brake.h"

#include <gtest/gtest.h>

namespace smtpd {
namespace {
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RecipientBrake, SoftLimitThenGrowingDelayThenClose) {
  RecipientBrakeSettings s{3, 6, milliseconds(200)};
  EXPECT_EQ(recipient_brake(1, s).delay, milliseconds(0));
  EXPECT_EQ(recipient_brake(3, s).delay, milliseconds(0));
  EXPECT_EQ(recipient_brake(4, s).delay, milliseconds(200));
  EXPECT_EQ(recipient_brake(5, s).delay, milliseconds(400));
  EXPECT_FALSE(recipient_brake(5, s).close);
  EXPECT_TRUE(recipient_brake(6, s).close);
  EXPECT_EQ(recipient_brake(6, s).closed_by, BrakeScope::Session);
  EXPECT_EQ(recipient_brake(6, s).delay, milliseconds(600));
  RecipientBrakeSettings big{0, 100000, seconds(10)};
  EXPECT_EQ(recipient_brake(50, big).delay, kRecipientBrakeMaxDelay);
}

TEST(RecipientBrake, DefaultsLeaveALegitimateSenderAlone) {
  RecipientBrakeSettings d;  // the config defaults: 10 at once, 50 before the close; 20 and 100 per address
  for (size_t n = 1; n <= 10; ++n) EXPECT_EQ(recipient_brake(n, n, d).delay.count(), 0);
  EXPECT_FALSE(recipient_brake(49, 49, d).close);
}

// Session 3/6, address 5/8, step 100 ms.
RecipientBrakeSettings combined() { return {3, 6, milliseconds(100), 5, 8, seconds(60)}; }

TEST(RecipientBrake, TheStrongerOfSessionAndAddressWins) {
  auto s = combined();
  // Few refusals anywhere: at once.
  EXPECT_EQ(recipient_brake(2, 4, s).delay, milliseconds(0));
  // The address's wait when it is the longer: 2nd of the session, 7th of the address.
  EXPECT_EQ(recipient_brake(2, 7, s).delay, milliseconds(200));
  EXPECT_FALSE(recipient_brake(2, 7, s).close);
  // The session's when it is: 5th of the session (200 ms), 6th of the address (100 ms).
  EXPECT_EQ(recipient_brake(5, 6, s).delay, milliseconds(200));
  // The address closes a young session: its first refusal past the address's hard limit.
  auto st = recipient_brake(1, 8, s);
  EXPECT_TRUE(st.close);
  EXPECT_EQ(st.closed_by, BrakeScope::Address);
  EXPECT_EQ(st.delay, milliseconds(300));
  // Both close: the session's own limit is named.
  EXPECT_EQ(recipient_brake(6, 9, s).closed_by, BrakeScope::Session);
  // The address brake off (hard 0): the session's brake alone, whatever the address count.
  s.address_hard = 0;
  EXPECT_FALSE(recipient_brake(1, 1000, s).close);
  EXPECT_EQ(recipient_brake(1, 1000, s).delay, milliseconds(0));
}

TEST(AddressRecipientBrake, CountsAcrossSessionsWithinTheWindow) {
  auto store = std::make_shared<LocalWindowCounts>(1000);
  AddressRecipientBrake brake(store);
  auto s = combined();
  auto t0 = CountsClock::now();  // the clock is passed in: a fake time line
  // Three sessions of two refusals each from one address, one refusal from another.
  for (int session = 0; session < 3; ++session)
    for (size_t i = 1; i <= 2; ++i) {
      size_t n = brake.refused("192.0.2.1", s, t0 + seconds(session));
      EXPECT_EQ(n, static_cast<size_t>(session * 2) + i);
      EXPECT_FALSE(recipient_brake(i, n, s).close);
    }
  EXPECT_EQ(brake.refused("192.0.2.2", s, t0), 1u);
  // A fourth session: its first refusal is the address's 7th (waits), its second the 8th (closes).
  EXPECT_EQ(recipient_brake(1, brake.refused("192.0.2.1", s, t0 + seconds(3)), s).delay, milliseconds(200));
  auto st = recipient_brake(2, brake.refused("192.0.2.1", s, t0 + seconds(4)), s);
  EXPECT_TRUE(st.close);
  EXPECT_EQ(st.closed_by, BrakeScope::Address);
  // Past the window after the last refusal: forgotten, the next is the first again.
  EXPECT_EQ(store->count("192.0.2.1", t0 + seconds(4) + s.window - milliseconds(1)), 8u);
  EXPECT_EQ(brake.refused("192.0.2.1", s, t0 + seconds(4) + s.window), 1u);
}

TEST(AddressRecipientBrake, OffCountsNothing) {
  auto store = std::make_shared<LocalWindowCounts>(1000);
  AddressRecipientBrake brake(store);
  auto s = combined();
  s.address_hard = 0;
  EXPECT_EQ(brake.refused("192.0.2.1", s, CountsClock::now()), 0u);
  EXPECT_EQ(store->size(), 0u);
}

}  // namespace
}  // namespace smtpd
