// smtpd::RedisWindowCounts: two stores (two instances) on one real redis-server share their
// counts (AUTH failures, refused recipients per address); with Redis killed each keeps counting locally (fail open, counted in metrics,
// the dependency down), and after a restart the counts are farm-wide again.
#include "smtpd/redis_window_counts.h"
#include "smtpd/auth_brake.h"
#include "smtpd/recipient_brake.h"

#include <chrono>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "core/metrics.h"
#include "tests/unit/redis/redis_server.h"

namespace {
using namespace std::chrono_literals;
using smtpd::AuthClock;
using test_redis::RedisServer;

redis::ClientConfig config_for(const RedisServer& s) {
  redis::ClientConfig c;
  c.host = "127.0.0.1";
  c.port = s.port();
  c.timeout = 200ms;
  c.reconnect_min = 20ms;
  c.reconnect_max = 200ms;
  return c;
}

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit = 3000ms) {
  for (auto waited = 0ms; waited < limit; waited += 10ms) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

// One instance's AUTH failure counts under key prefix `prefix` (a shorter name for the tests).
smtpd::RedisWindowCounts auth_counts(const RedisServer& s, const std::string& prefix) {
  return smtpd::RedisWindowCounts(config_for(s), prefix, "auth", "auth-failures", 1000);
}

uint64_t fallbacks() {
  uint64_t n = 0;
  for (const auto& [labels, v] : core::labeled_counters_snapshot("redis_fallbacks_total")) n += v;
  return n;
}

TEST(RedisWindowCounts, CountsAreSharedByInstances) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  auto a = auth_counts(server, "t1:");
  auto b = auth_counts(server, "t1:");
  ASSERT_TRUE(eventually([&] { return a.up() && b.up(); }));
  EXPECT_EQ(a.dependency().passive(), "");
  for (int i = 0; i < 3; ++i) a.add("a\n192.0.2.1", AuthClock::now(), 60s);
  for (int i = 0; i < 2; ++i) b.add("a\n192.0.2.1", AuthClock::now(), 60s);
  EXPECT_TRUE(eventually([&] {
    return a.count("a\n192.0.2.1", AuthClock::now()) == 5 && b.count("a\n192.0.2.1", AuthClock::now()) == 5;
  })) << a.count("a\n192.0.2.1", AuthClock::now()) << " " << b.count("a\n192.0.2.1", AuthClock::now());
  b.forgive("a\n192.0.2.1", 4, AuthClock::now());
  EXPECT_TRUE(eventually([&] { return a.count("a\n192.0.2.1", AuthClock::now()) == 1; }));
  // Another prefix is another farm.
  auto other = auth_counts(server, "t2:");
  ASSERT_TRUE(eventually([&] { return other.up(); }));
  a.add("a\n192.0.2.1", AuthClock::now(), 60s);
  EXPECT_TRUE(eventually([&] { return b.count("a\n192.0.2.1", AuthClock::now()) == 2; }));
  EXPECT_EQ(other.count("a\n192.0.2.1", AuthClock::now()), 0u);
}

TEST(RedisWindowCounts, FailsOpenWhileRedisIsDownThenSharesAgain) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  auto a = auth_counts(server, "t3:");
  auto b = auth_counts(server, "t3:");
  ASSERT_TRUE(eventually([&] { return a.up() && b.up(); }));
  server.kill_now();
  ASSERT_TRUE(eventually([&] { return !a.up() && !b.up(); }));
  EXPECT_NE(a.dependency().passive(), "");
  uint64_t before = fallbacks();
  auto t0 = std::chrono::steady_clock::now();
  a.add("l\nuser", AuthClock::now(), 60s);
  a.add("l\nuser", AuthClock::now(), 60s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms);  // never waits for Redis
  EXPECT_EQ(a.count("l\nuser", AuthClock::now()), 2u);     // local count
  EXPECT_EQ(b.count("l\nuser", AuthClock::now()), 0u);
  EXPECT_TRUE(eventually([&] { return fallbacks() >= before + 2; }));
  server.start();
  ASSERT_TRUE(server.ready());
  ASSERT_TRUE(eventually([&] { return a.up() && b.up(); }, 5000ms));
  EXPECT_EQ(a.dependency().passive(), "");
  b.add("l\nuser", AuthClock::now(), 60s);
  EXPECT_TRUE(eventually([&] { return a.count("l\nuser", AuthClock::now()) == 1; }));  // the farm's count (Redis restarted empty)
}

}  // namespace

namespace {

// The /24 (/64) count of the AUTH brake on two instances sharing one Redis: failures from several
// addresses of one network, spread over both, refuse a fresh address of that network on either.
TEST(RedisWindowCounts, NetworkCountIsFarmWide) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  auto sa = std::make_shared<smtpd::RedisWindowCounts>(config_for(server), "t4:", "auth", "auth-failures", 1000);
  auto sb = std::make_shared<smtpd::RedisWindowCounts>(config_for(server), "t4:", "auth", "auth-failures", 1000);
  ASSERT_TRUE(eventually([&] { return sa->up() && sb->up(); }));
  smtpd::AuthBrake a(sa), b(sb);
  smtpd::AuthBrakeSettings s;
  s.network_limit = 4;
  s.window = 60s;
  for (int i = 0; i < 4; ++i)
    (i % 2 ? b : a).failed("198.51.100." + std::to_string(i + 1), "guess" + std::to_string(i), s, AuthClock::now());
  EXPECT_TRUE(eventually([&] {
    return a.standing("198.51.100.99", "x", 0, s, AuthClock::now()).refused &&
           b.standing("198.51.100.99", "x", 0, s, AuthClock::now()).refused;
  })) << a.standing("198.51.100.99", "x", 0, s, AuthClock::now()).network_failures << " "
      << b.standing("198.51.100.99", "x", 0, s, AuthClock::now()).network_failures;
  EXPECT_FALSE(a.standing("198.51.101.1", "x", 0, s, AuthClock::now()).refused);  // another /24
}

// The recipient brake's counts per client address on two instances: refusals spread over both
// close the next session of that address on either (the farm's count), the AUTH counts of the same
// farm are another key space, and the farm's one /health row is down while either store is.
TEST(RedisWindowCounts, RefusedRecipientsPerAddressAreFarmWide) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  smtpd::FarmCounts fa{std::make_shared<smtpd::RedisWindowCounts>(config_for(server), "t5:", "auth", "auth-failures", 1000),
                       std::make_shared<smtpd::RedisWindowCounts>(config_for(server), "t5:", "rcpt", "rcpt-refusals", 1000)};
  auto rb = std::make_shared<smtpd::RedisWindowCounts>(config_for(server), "t5:", "rcpt", "rcpt-refusals", 1000);
  ASSERT_TRUE(eventually([&] { return fa.auth->up() && fa.rcpt->up() && rb->up(); }));
  EXPECT_EQ(fa.dependency().passive(), "");
  smtpd::AddressRecipientBrake a(fa.rcpt), b(rb);
  smtpd::RecipientBrakeSettings s{10, 50, 100ms, 2, 6, 60s};
  for (int i = 0; i < 5; ++i) (i % 2 ? b : a).refused("192.0.2.7", s, AuthClock::now());
  ASSERT_TRUE(eventually([&] {
    return fa.rcpt->count("192.0.2.7", AuthClock::now()) == 5 && rb->count("192.0.2.7", AuthClock::now()) == 5;
  })) << fa.rcpt->count("192.0.2.7", AuthClock::now()) << " " << rb->count("192.0.2.7", AuthClock::now());
  // A new session (1 refusal of its own) on either instance: the address's 6th refusal closes it.
  size_t n = b.refused("192.0.2.7", s, AuthClock::now());
  EXPECT_EQ(n, 6u);
  auto step = smtpd::recipient_brake(1, n, s);
  EXPECT_TRUE(step.close);
  EXPECT_EQ(step.closed_by, smtpd::BrakeScope::Address);
  EXPECT_EQ(step.delay, 400ms);
  EXPECT_EQ(fa.auth->count("192.0.2.7", AuthClock::now()), 0u);  // not an AUTH count
  server.kill_now();
  ASSERT_TRUE(eventually([&] { return !fa.rcpt->up(); }));
  EXPECT_NE(fa.dependency().passive(), "");
  uint64_t before = fallbacks();
  EXPECT_EQ(a.refused("192.0.2.8", s, AuthClock::now()), 1u);  // local count, at once
  EXPECT_TRUE(eventually([&] { return fallbacks() >= before + 1; }));
  EXPECT_EQ(rb->count("192.0.2.8", AuthClock::now()), 0u);
}

}  // namespace
