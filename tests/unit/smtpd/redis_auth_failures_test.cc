// smtpd::RedisAuthFailures: two stores (two instances) on one real redis-server share their AUTH
// failure counts; with Redis killed each keeps counting locally (fail open, counted in metrics,
// the dependency down), and after a restart the counts are farm-wide again.
#include "smtpd/redis_auth_failures.h"

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

uint64_t fallbacks() {
  uint64_t n = 0;
  for (const auto& [labels, v] : core::labeled_counters_snapshot("redis_fallbacks_total")) n += v;
  return n;
}

TEST(RedisAuthFailures, CountsAreSharedByInstances) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  smtpd::RedisAuthFailures a(config_for(server), "t1:", 1000), b(config_for(server), "t1:", 1000);
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
  smtpd::RedisAuthFailures other(config_for(server), "t2:", 1000);
  ASSERT_TRUE(eventually([&] { return other.up(); }));
  a.add("a\n192.0.2.1", AuthClock::now(), 60s);
  EXPECT_TRUE(eventually([&] { return b.count("a\n192.0.2.1", AuthClock::now()) == 2; }));
  EXPECT_EQ(other.count("a\n192.0.2.1", AuthClock::now()), 0u);
}

TEST(RedisAuthFailures, FailsOpenWhileRedisIsDownThenSharesAgain) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  smtpd::RedisAuthFailures a(config_for(server), "t3:", 1000), b(config_for(server), "t3:", 1000);
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
TEST(RedisAuthFailures, NetworkCountIsFarmWide) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  auto sa = std::make_shared<smtpd::RedisAuthFailures>(config_for(server), "t4:", 1000);
  auto sb = std::make_shared<smtpd::RedisAuthFailures>(config_for(server), "t4:", 1000);
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

}  // namespace
