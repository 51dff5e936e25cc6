// The AUTH brake across connections (smtpd/auth_brake.h): same wait for every outcome, counts per
// address, per network (/24, /64) and per login, 454 past a limit, a success forgives only its own login's failures from
// its own address, counts expire, memory is bounded.
#include "smtpd/auth_brake.h"

#include <gtest/gtest.h>

namespace smtpd {
namespace {
using std::chrono::milliseconds;
using std::chrono::seconds;

AuthBrakeSettings settings() {
  AuthBrakeSettings s;
  s.delay = milliseconds(100);
  s.max_delay = seconds(1);
  s.address_limit = 5;
  s.login_limit = 3;
  s.window = seconds(60);
  return s;
}

struct Brake : ::testing::Test {
  AuthBrake brake{std::make_unique<LocalWindowCounts>(1000)};
  AuthClock::time_point now = AuthClock::now();
  AuthBrakeSettings s = settings();
};

TEST_F(Brake, FirstAttemptIsAnsweredAtOnceWhateverItsOutcome) {
  auto st = brake.standing("192.0.2.1", "alice", 0, s, now);
  EXPECT_FALSE(st.refused);
  EXPECT_EQ(st.delay, milliseconds(0));  // the same (no) wait for the success and for the failure
}

TEST_F(Brake, FailuresOnOtherConnectionsGrowTheWait) {
  brake.failed("192.0.2.1", "alice", s, now);
  brake.failed("192.0.2.1", "bob", s, now);
  // a fresh connection (0 failures of its own) from the same address
  EXPECT_EQ(brake.standing("192.0.2.1", "carol", 0, s, now).delay, milliseconds(200));
  EXPECT_EQ(brake.standing("192.0.2.9", "carol", 0, s, now).delay, milliseconds(0));    // another address
  EXPECT_EQ(brake.standing("192.0.2.9", "carol", 4, s, now).delay, milliseconds(400));  // its own failures
  EXPECT_EQ(brake.standing("192.0.2.9", "carol", 40, s, now).delay, seconds(1));        // max_delay
}

TEST_F(Brake, AddressPastItsLimitIsRefusedForEveryLogin) {
  for (int i = 0; i < 5; ++i) brake.failed("192.0.2.1", "user" + std::to_string(i), s, now);
  auto st = brake.standing("192.0.2.1", "alice", 0, s, now);
  EXPECT_TRUE(st.refused);
  EXPECT_EQ(st.address_failures, 5u);
  EXPECT_FALSE(brake.standing("192.0.2.2", "alice", 0, s, now).refused);
}

TEST_F(Brake, LoginPastItsLimitIsRefusedFromEveryAddress) {
  for (int i = 0; i < 3; ++i) brake.failed("192.0.2." + std::to_string(i), "Alice@Example.org", s, now);
  EXPECT_TRUE(brake.standing("198.51.100.7", "alice@example.org", 0, s, now).refused);  // case-insensitive
  EXPECT_FALSE(brake.standing("198.51.100.7", "bob@example.org", 0, s, now).refused);
}

TEST_F(Brake, ASuccessDoesNotResetTheAddressCountForOtherLogins) {
  for (int i = 0; i < 4; ++i) brake.failed("192.0.2.1", "victim" + std::to_string(i), s, now);
  brake.succeeded("192.0.2.1", "attacker-own-account", s, now);
  brake.failed("192.0.2.1", "victim9", s, now);
  EXPECT_TRUE(brake.standing("192.0.2.1", "anyone", 0, s, now).refused);
}

TEST_F(Brake, ASuccessForgivesItsOwnTypos) {
  for (int i = 0; i < 2; ++i) brake.failed("192.0.2.1", "alice", s, now);
  for (int i = 0; i < 2; ++i) brake.failed("192.0.2.1", "mallory", s, now);
  brake.succeeded("192.0.2.1", "ALICE", s, now);
  auto st = brake.standing("192.0.2.1", "alice", 0, s, now);
  EXPECT_EQ(st.address_failures, 2u);  // mallory's remain
  EXPECT_EQ(st.login_failures, 0u);
}

TEST_F(Brake, CountsAreForgottenAfterTheWindow) {
  for (int i = 0; i < 5; ++i) brake.failed("192.0.2.1", "x", s, now);
  EXPECT_TRUE(brake.standing("192.0.2.1", "y", 0, s, now + seconds(59)).refused);
  EXPECT_FALSE(brake.standing("192.0.2.1", "y", 0, s, now + seconds(61)).refused);
}

TEST_F(Brake, LimitsOffMeansNothingIsCounted) {
  s.address_limit = s.login_limit = 0;
  for (int i = 0; i < 50; ++i) brake.failed("192.0.2.1", "x", s, now);
  auto st = brake.standing("192.0.2.1", "x", 0, s, now);
  EXPECT_FALSE(st.refused);
  EXPECT_EQ(st.delay, milliseconds(0));
}

TEST_F(Brake, NetworkPastItsLimitIsRefusedForEveryAddressInIt) {
  s.address_limit = s.login_limit = 0;
  s.network_limit = 4;
  for (int i = 0; i < 4; ++i) brake.failed("192.0.2." + std::to_string(10 + i), "user" + std::to_string(i), s, now);
  auto st = brake.standing("192.0.2.200", "alice", 0, s, now);  // a fresh address of the same /24
  EXPECT_TRUE(st.refused);
  EXPECT_EQ(st.network_failures, 4u);
  EXPECT_EQ(st.delay, milliseconds(400));
  EXPECT_FALSE(brake.standing("192.0.3.1", "alice", 0, s, now).refused);  // the next /24
}

TEST_F(Brake, Ipv6NetworkIsTheSlash64) {
  s.address_limit = s.login_limit = 0;
  s.network_limit = 2;
  brake.failed("2001:db8:1:2::1", "a", s, now);
  brake.failed("2001:db8:1:2:ffff::9", "b", s, now);
  EXPECT_TRUE(brake.standing("2001:db8:1:2:abcd::1", "c", 0, s, now).refused);
  EXPECT_FALSE(brake.standing("2001:db8:1:3::1", "c", 0, s, now).refused);
}

TEST_F(Brake, NetworkLimitOffCountsNoNetwork) {
  s.address_limit = s.login_limit = s.network_limit = 0;
  for (int i = 0; i < 10; ++i) brake.failed("192.0.2." + std::to_string(i), "x", s, now);
  s.network_limit = 5;  // turned on later: nothing was counted under it
  EXPECT_EQ(brake.standing("192.0.2.50", "y", 0, s, now).network_failures, 0u);
}

TEST_F(Brake, ASuccessForgivesItsOwnTyposInTheNetworkCountToo) {
  s.network_limit = 10;
  for (int i = 0; i < 2; ++i) brake.failed("192.0.2.1", "alice", s, now);
  brake.failed("192.0.2.2", "mallory", s, now);
  brake.succeeded("192.0.2.1", "alice", s, now);
  EXPECT_EQ(brake.standing("192.0.2.3", "bob", 0, s, now).network_failures, 1u);  // mallory's remains
}

TEST(LocalWindowCounts, MemoryIsBounded) {
  LocalWindowCounts store(100);
  auto now = AuthClock::now();
  for (int i = 0; i < 10000; ++i) store.add("k" + std::to_string(i), now, seconds(60));
  EXPECT_LE(store.size(), 100u);
  EXPECT_EQ(store.count("k9999", now), 1u);
}

}  // namespace
}  // namespace smtpd
