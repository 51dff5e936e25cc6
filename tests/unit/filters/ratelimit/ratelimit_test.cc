// The ratelimit filter (filters/ratelimit/): the sliding-window arithmetic with a fake clock
// (boundaries, the weighted previous window, expiry), the per-instance counters, the keys and
// verdicts of the filter, the config rows and their errors (file:line), and the Redis path against
// a real redis-server: counts shared by two instances, NOSCRIPT, and the fallback to local
// counters within the client's timeout when Redis is paused or gone.
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "config/load.h"
#include "core/metrics.h"
#include "filters/ratelimit/counters.h"
#include "filters/ratelimit/ratelimit.h"
#include "filters/ratelimit/window.h"
#include "filters/registry/registry.h"
#include "tests/unit/redis/redis_server.h"

namespace asio = boost::asio;
using namespace filters::ratelimit;
using filters::Action;
using filters::Phase;
using std::chrono::milliseconds;

namespace {

constexpr Millis kMinute{60'000};
// A time at the start of a window of one minute (any multiple of 60 000 ms).
constexpr Millis kT0{1'800'000'000'000 - 1'800'000'000'000 % 60'000};

// One io_context for the whole test program, never destroyed before exit: a Redis client thread
// may still be inside the io_context's wake-up (post + signal) when run() returns, and destroying
// a local io_context there is a race (TSan saw it). Server I/O threads' contexts live as long.
template <class T>
T run(asio::awaitable<T> aw) {
  static asio::io_context* io = new asio::io_context;
  io->restart();
  auto f = asio::co_spawn(*io, std::move(aw), asio::use_future);
  // Until the answer: the store's Redis client for this context (redis/thread_clients.h) stays on it.
  while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io->run_one_for(std::chrono::milliseconds(50));
  return f.get();
}

uint64_t counter(const std::string& family, const std::string& labels) {
  for (auto& [l, v] : core::labeled_counters_snapshot(family))
    if (l == labels) return v;
  return 0;
}

// --- arithmetic ----------------------------------------------------------------------------

TEST(Window, PositionAtBoundaries) {
  EXPECT_EQ(position(kT0, kMinute).index * 60'000, kT0.count());
  EXPECT_DOUBLE_EQ(position(kT0, kMinute).elapsed, 0.0);
  EXPECT_EQ(position(kT0 - Millis(1), kMinute).index, position(kT0, kMinute).index - 1);
  EXPECT_NEAR(position(kT0 - Millis(1), kMinute).elapsed, 59'999.0 / 60'000, 1e-12);
  EXPECT_DOUBLE_EQ(position(kT0 + Millis(15'000), kMinute).elapsed, 0.25);
}

TEST(Window, EstimateWeighsThePreviousWindow) {
  EXPECT_DOUBLE_EQ(estimate(10, 0, 0.0), 10.0);
  EXPECT_DOUBLE_EQ(estimate(10, 2, 0.25), 9.5);
  EXPECT_DOUBLE_EQ(estimate(10, 2, 0.5), 7.0);
  EXPECT_DOUBLE_EQ(estimate(10, 3, 1.0), 3.0);
}

TEST(LocalCounters, CountsWithinOneWindow) {
  LocalCounters c(100);
  for (int i = 1; i <= 5; ++i) EXPECT_DOUBLE_EQ(c.hit("k", kT0 + Millis(i), kMinute), i);
  EXPECT_DOUBLE_EQ(c.hit("other", kT0, kMinute), 1.0);  // keys are apart
}

TEST(LocalCounters, PreviousWindowFadesOut) {
  LocalCounters c(100);
  for (int i = 0; i < 10; ++i) c.hit("k", kT0 + Millis(59'000), kMinute);
  // a quarter into the next window: 10 * 0.75 + 1
  EXPECT_DOUBLE_EQ(c.hit("k", kT0 + kMinute + Millis(15'000), kMinute), 8.5);
  // three quarters in: 10 * 0.25 + 2
  EXPECT_DOUBLE_EQ(c.hit("k", kT0 + kMinute + Millis(45'000), kMinute), 4.5);
}

TEST(LocalCounters, TwoWindowsLaterEverythingExpired) {
  LocalCounters c(100);
  for (int i = 0; i < 10; ++i) c.hit("k", kT0, kMinute);
  EXPECT_DOUBLE_EQ(c.hit("k", kT0 + 2 * kMinute, kMinute), 1.0);
}

TEST(LocalCounters, BoundedTableDropsExpiredKeysFirst) {
  LocalCounters c(2);
  c.hit("old", kT0, kMinute);
  c.hit("live", kT0 + 3 * kMinute, kMinute);
  c.hit("new", kT0 + 3 * kMinute, kMinute);  // "old" is two windows gone: it goes
  EXPECT_EQ(c.size(), 2u);
  EXPECT_DOUBLE_EQ(c.hit("live", kT0 + 3 * kMinute, kMinute), 2.0);
}

// --- the filter ----------------------------------------------------------------------------

Limit limit(std::string name, Key k, What w, size_t n, OnHit a = OnHit::TempFail) {
  Limit l;
  l.name = std::move(name);
  l.key = k;
  l.what = w;
  l.limit = n;
  l.window = config::Seconds(60);
  l.action = a;
  return l;
}

std::shared_ptr<filters::Context> context(std::string ip, std::string sender = "a@example.net") {
  auto ctx = std::make_shared<filters::Context>();
  ctx->session_id = "S1";
  ctx->client_ip = *core::IpAddress::parse(ip);
  auto at = sender.find('@');
  if (at != std::string::npos) ctx->sender = {sender.substr(0, at), sender.substr(at + 1)};
  ctx->cancel = std::make_shared<filters::Cancel>();
  return ctx;
}

struct Fixture {
  Millis now = kT0;
  std::shared_ptr<filters::RateLimit> make(std::vector<Limit> limits) {
    Settings s;
    s.limits = std::move(limits);
    return std::make_shared<filters::RateLimit>(s, std::make_shared<Counters>(std::nullopt, "t:", 1000),
                                                [this] { return now; });
  }
};

TEST(Keys, EachKindOfKey) {
  Settings s;
  auto ctx = context("192.0.2.77", "Alice@Example.NET");
  EXPECT_EQ(*key_value(s, limit("x", Key::Client, What::Messages, 1), *ctx), "192.0.2.77");
  EXPECT_EQ(*key_value(s, limit("x", Key::ClientNet, What::Messages, 1), *ctx), "192.0.2.0/24");
  EXPECT_EQ(*key_value(s, limit("x", Key::Sender, What::Messages, 1), *ctx), "alice@example.net");
  EXPECT_EQ(*key_value(s, limit("x", Key::SenderDomain, What::Messages, 1), *ctx), "example.net");
  EXPECT_FALSE(key_value(s, limit("x", Key::User, What::Messages, 1), *ctx));  // not authenticated
  auto v6 = context("2001:db8:1:2:3:4:5:6");
  EXPECT_EQ(*key_value(s, limit("x", Key::ClientNet, What::Messages, 1), *v6), "2001:db8:1:2::/64");
  s.ipv4_prefix = 16;
  EXPECT_EQ(*key_value(s, limit("x", Key::ClientNet, What::Messages, 1), *ctx), "192.0.0.0/16");
  auto null = context("192.0.2.77", "");
  EXPECT_EQ(*key_value(s, limit("x", Key::Sender, What::Messages, 1), *null), "<>");
  EXPECT_EQ(*key_value(s, limit("x", Key::SenderDomain, What::Messages, 1), *null), "<>");
}

TEST(Keys, AuthenticatedUsers) {
  Settings s;
  auto ctx = context("192.0.2.77");
  ctx->authenticated = true;
  ctx->login = "Bob";
  EXPECT_EQ(*key_value(s, limit("x", Key::User, What::Messages, 1), *ctx), "bob");
  auto per_client = limit("x", Key::Client, What::Messages, 1);
  EXPECT_TRUE(key_value(s, per_client, *ctx));  // still counted by default
  per_client.skip_authenticated = true;
  EXPECT_FALSE(key_value(s, per_client, *ctx));
}

TEST(RateLimit, TempfailsTheMessageAfterTheLimit) {
  Fixture f;
  auto rl = f.make({limit("per_client", Key::Client, What::Messages, 3)});
  EXPECT_TRUE(rl->wants(Phase::MailFrom));
  EXPECT_FALSE(rl->wants(Phase::RcptTo));
  auto ctx = context("192.0.2.1");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(rl->check(Phase::MailFrom, ctx)).action, Action::Continue) << i;
  uint64_t hits = counter("ratelimit_hits_total", "limit=\"per_client\",action=\"tempfail\"");
  auto v = run(rl->check(Phase::MailFrom, ctx));
  EXPECT_EQ(v.action, Action::TempFail);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 451);
  EXPECT_EQ(v.reply->enhanced, "4.7.1");
  EXPECT_NE(v.reply->text.find("per_client"), std::string::npos) << v.reply->text;
  EXPECT_EQ(counter("ratelimit_hits_total", "limit=\"per_client\",action=\"tempfail\""), hits + 1);
  // another client is not limited; two windows later this one is free again
  EXPECT_EQ(run(rl->check(Phase::MailFrom, context("192.0.2.2"))).action, Action::Continue);
  f.now += 2 * kMinute;
  EXPECT_EQ(run(rl->check(Phase::MailFrom, ctx)).action, Action::Continue);
}

TEST(RateLimit, DisconnectAndScore) {
  Fixture f;
  auto rl = f.make({limit("conn", Key::ClientNet, What::Connections, 1, OnHit::Disconnect),
                    limit("rcpt", Key::Sender, What::Recipients, 1, OnHit::Score)});
  auto ctx = context("192.0.2.1");
  EXPECT_EQ(run(rl->check(Phase::Connect, ctx)).action, Action::Continue);
  auto v = run(rl->check(Phase::Connect, context("192.0.2.200")));  // same /24
  EXPECT_EQ(v.action, Action::Disconnect);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 421);
  EXPECT_EQ(v.reply->enhanced, "4.7.0");
  EXPECT_EQ(run(rl->check(Phase::RcptTo, ctx)).action, Action::Continue);
  auto s = run(rl->check(Phase::RcptTo, ctx));
  EXPECT_EQ(s.action, Action::Continue);  // never Accept: relay_control decides on the recipient
  EXPECT_DOUBLE_EQ(s.score, 1.0);
  ASSERT_EQ(s.tags.size(), 1u);
  EXPECT_EQ(s.tags[0], "RATELIMIT_RCPT=1");
}

TEST(RateLimit, DisconnectWinsOverTempfail) {
  Fixture f;
  auto rl = f.make({limit("soft", Key::Client, What::Messages, 1), limit("hard", Key::Sender, What::Messages, 1, OnHit::Disconnect)});
  auto ctx = context("192.0.2.1");
  run(rl->check(Phase::MailFrom, ctx));
  EXPECT_EQ(run(rl->check(Phase::MailFrom, ctx)).action, Action::Disconnect);
}

// --- config --------------------------------------------------------------------------------

const std::string kBase =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\n"                 // 1-2
    "[relay]\nlocal_domains = [\"example.org\"]\n"                  // 3-4
    "[qmqp]\nservers = [\"127.0.0.1:628\"]\n"                       // 5-6
    "[profile.mx]\nfilters = [\"ratelimit\", \"relay_control\"]\n";  // 7-8

TEST(Config, LimitsAreRead) {
  auto r = config::load_string(kBase +
                                   "[ratelimit]\nipv6_prefix = 48\n"
                                   "[[ratelimit.limit]]\nname = \"per_client\"\nkey = \"client\"\nwhat = \"messages\"\nlimit = 30\nwindow = 600\n"
                                   "[[ratelimit.limit]]\nname = \"conn\"\nkey = \"client_net\"\nwhat = \"connections\"\nlimit = 100\n"
                                   "action = \"disconnect\"\nskip_authenticated = true\n",
                               "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  const auto& s = r.config->sections.get<Settings>("ratelimit");
  EXPECT_EQ(s.ipv6_prefix, 48u);
  ASSERT_EQ(s.limits.size(), 2u);
  EXPECT_EQ(s.limits[0].limit, 30u);
  EXPECT_DOUBLE_EQ(s.limits[0].window.count(), 600);
  EXPECT_EQ(s.limits[0].action, OnHit::TempFail);
  EXPECT_EQ(s.limits[1].key, Key::ClientNet);
  EXPECT_EQ(s.limits[1].action, OnHit::Disconnect);
  EXPECT_TRUE(s.limits[1].skip_authenticated);
}

struct Bad {
  const char* name;
  std::string text;
  std::string expect;
};
class BadLimit : public ::testing::TestWithParam<Bad> {};
TEST_P(BadLimit, IsRefusedWithFileLine) {
  auto r = config::load_string(kBase + GetParam().text, "t.toml", filters::config_schema());
  EXPECT_FALSE(r.config);
  EXPECT_NE(r.error.find(GetParam().expect), std::string::npos) << r.error;
}
INSTANTIATE_TEST_SUITE_P(
    Ratelimit, BadLimit,
    ::testing::Values(
        Bad{"NoLimit", "[ratelimit]\nipv4_prefix = 24\n", "at least one [[ratelimit.limit]]"},
        Bad{"UnknownKey", "[[ratelimit.limit]]\nname = \"a\"\nkey = \"helo\"\nwhat = \"messages\"\nlimit = 1\n",
            "t.toml:11: ratelimit.limit.key"},
        Bad{"MissingLimit", "[[ratelimit.limit]]\nname = \"a\"\nkey = \"client\"\nwhat = \"messages\"\n", "t.toml:9:"},
        Bad{"BadName", "[[ratelimit.limit]]\nname = \"a b\"\nkey = \"client\"\nwhat = \"messages\"\nlimit = 1\n",
            "t.toml:10:"},
        Bad{"ZeroLimit", "[[ratelimit.limit]]\nname = \"a\"\nkey = \"client\"\nwhat = \"messages\"\nlimit = 0\n",
            "t.toml:13:"},
        Bad{"ConnectionsBySender",
            "[[ratelimit.limit]]\nname = \"a\"\nkey = \"sender\"\nwhat = \"connections\"\nlimit = 5\n",
            "counted at connect"},
        Bad{"Twice",
            "[[ratelimit.limit]]\nname = \"a\"\nkey = \"client\"\nwhat = \"messages\"\nlimit = 5\n"
            "[[ratelimit.limit]]\nname = \"a\"\nkey = \"sender\"\nwhat = \"messages\"\nlimit = 5\n",
            "defined twice"}),
    [](const auto& info) { return std::string(info.param.name); });

// --- Redis ---------------------------------------------------------------------------------

redis::ClientConfig redis_at(uint16_t port) {
  redis::ClientConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  c.timeout = milliseconds(150);
  c.reconnect_min = milliseconds(20);
  c.reconnect_max = milliseconds(100);
  return c;
}

bool wait_until(const std::function<bool()>& f) {
  for (int i = 0; i < 300; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

TEST(Redis, ScriptArgumentsNameBothWindows) {
  auto a = Counters::script_args("mxf:rl:", {{"per_client:192.0.2.1", kMinute}}, kT0 + Millis(10), true);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[0], "EVALSHA");
  EXPECT_EQ(a[1].size(), 40u);
  EXPECT_EQ(a[2], "2");
  int64_t index = kT0.count() / 60'000;
  EXPECT_EQ(a[3], "mxf:rl:per_client:192.0.2.1:" + std::to_string(index));
  EXPECT_EQ(a[4], "mxf:rl:per_client:192.0.2.1:" + std::to_string(index - 1));
  EXPECT_EQ(a[5], "120000");  // expiry: two windows
}

TEST(Redis, TwoInstancesShareTheCountsWithExpiry) {
  test_redis::RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not start";
  Counters a(redis_at(server.port()), "t:", 100), b(redis_at(server.port()), "t:", 100);
  ASSERT_TRUE(wait_until([&] { return a.down_reason().empty() && b.down_reason().empty(); }));
  Millis now = kT0 + Millis(59'000);
  std::vector<Count> one{{"lim:192.0.2.1", kMinute}};
  EXPECT_DOUBLE_EQ(run(a.hit(one, now))[0], 1.0);
  EXPECT_DOUBLE_EQ(run(b.hit(one, now))[0], 2.0);
  EXPECT_DOUBLE_EQ(run(a.hit(one, now))[0], 3.0);
  // half into the next window the previous one weighs half: 3 * 0.5 + 1
  EXPECT_DOUBLE_EQ(run(b.hit(one, kT0 + kMinute + Millis(30'000)))[0], 2.5);
  // several limits in one round trip
  auto two = run(a.hit({{"lim:192.0.2.1", kMinute}, {"other:x", kMinute}}, kT0 + kMinute + Millis(30'000)));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_DOUBLE_EQ(two[0], 3.5);
  EXPECT_DOUBLE_EQ(two[1], 1.0);
  EXPECT_EQ(a.local().size(), 0u);  // nothing fell back
  // the keys carry a TTL of at most two windows
  asio::io_context io;
  auto probe = redis::Client::create(io.get_executor(), redis_at(server.port()));
  probe->start();
  for (int i = 0; i < 200 && !probe->up(); ++i) io.run_for(milliseconds(10));
  ASSERT_TRUE(probe->up());
  int64_t index = (kT0 + kMinute).count() / 60'000;
  auto ttl = asio::co_spawn(io, probe->command({"PTTL", "t:rl:lim:192.0.2.1:" + std::to_string(index)}), asio::use_future);
  io.run_for(std::chrono::seconds(2));
  auto r = ttl.get();
  EXPECT_GT(r.integer, 100'000);
  EXPECT_LE(r.integer, 120'000);
  probe->stop();
}

TEST(Redis, LoadsTheScriptAgainAfterAFlush) {
  test_redis::RedisServer server;
  ASSERT_TRUE(server.ready());
  Counters a(redis_at(server.port()), "t:", 100);
  ASSERT_TRUE(wait_until([&] { return a.down_reason().empty(); }));
  std::vector<Count> one{{"lim:x", kMinute}};
  EXPECT_DOUBLE_EQ(run(a.hit(one, kT0))[0], 1.0);  // EVALSHA -> NOSCRIPT -> EVAL
  EXPECT_DOUBLE_EQ(run(a.hit(one, kT0))[0], 2.0);  // EVALSHA
  EXPECT_EQ(a.local().size(), 0u);
}

TEST(Redis, PausedOrGoneFallsBackToLocalCountersInTime) {
  test_redis::RedisServer server;
  ASSERT_TRUE(server.ready());
  Counters a(redis_at(server.port()), "t:", 100);
  ASSERT_TRUE(wait_until([&] { return a.down_reason().empty(); }));
  std::vector<Count> one{{"lim:y", kMinute}};
  EXPECT_DOUBLE_EQ(run(a.hit(one, kT0))[0], 1.0);
  uint64_t timeouts = counter("ratelimit_redis_fallback_total", "reason=\"timeout\"");
  server.pause();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_DOUBLE_EQ(run(a.hit(one, kT0))[0], 1.0);  // local: this instance's first
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1000));  // the client's timeout, not Redis's pause
  EXPECT_EQ(counter("ratelimit_redis_fallback_total", "reason=\"timeout\""), timeouts + 1);
  server.resume();
  server.kill_now();
  ASSERT_TRUE(wait_until([&] { return !a.down_reason().empty(); }));
  t0 = std::chrono::steady_clock::now();
  EXPECT_DOUBLE_EQ(run(a.hit(one, kT0))[0], 2.0);  // local again
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1000));
}

}  // namespace
