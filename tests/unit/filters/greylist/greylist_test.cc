// The greylist filter (filters/greylist/): the triplet arithmetic with a fake clock (first sight,
// early retry, pass after the delay, pass_ttl refresh, retry_window expiry), the bounded local
// table, the triplet's networks (/24, /64) and allow-lists, the filter's verdicts and counters,
// the config rows and their errors, and the Redis path against a real redis-server (two
// instances sharing a triplet; the fallback to the local table when Redis is gone).
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "config/load.h"
#include "core/metrics.h"
#include "filters/greylist/greylist.h"
#include "filters/greylist/store.h"
#include "filters/greylist/table.h"
#include "filters/registry/registry.h"
#include "tests/unit/redis/redis_server.h"

namespace asio = boost::asio;
using namespace filters::greylist;
using filters::Action;
using filters::Phase;
using std::chrono::milliseconds;

namespace {

constexpr Millis kT0{1'800'000'000'000};
constexpr Millis kSec{1000};
const Timing kTiming{300 * kSec, 4 * 3600 * kSec, 36 * 86400 * kSec};

// One io_context for the whole program, never destroyed (see ratelimit_test.cc).
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

// --- the local table's arithmetic ----------------------------------------------------------

TEST(Table, FirstSightEarlyRetryThenPassAfterDelay) {
  LocalTable t(100);
  EXPECT_EQ(t.check("k", kT0, kTiming).outcome, Outcome::New);
  Decision early = t.check("k", kT0 + 299 * kSec, kTiming);
  EXPECT_EQ(early.outcome, Outcome::Early);
  EXPECT_EQ(early.waited, 299 * kSec);
  EXPECT_EQ(retry_in_seconds(early, kTiming), 1);
  // the early retry did not reset the first sight: 300 s after it the retry passes
  Decision pass = t.check("k", kT0 + 300 * kSec, kTiming);
  EXPECT_EQ(pass.outcome, Outcome::PassedAfterDelay);
  EXPECT_EQ(pass.waited, 300 * kSec);
  EXPECT_EQ(t.check("k", kT0 + 301 * kSec, kTiming).outcome, Outcome::Known);
}

TEST(Table, RetryInSeconds) {
  EXPECT_EQ(retry_in_seconds({Outcome::New, Millis(0)}, kTiming), 300);
  EXPECT_EQ(retry_in_seconds({Outcome::Early, Millis(100'500)}, kTiming), 200);  // 199.5 s rounded up
}

TEST(Table, PassTtlIsRefreshedByEachAcceptance) {
  LocalTable t(100);
  t.check("k", kT0, kTiming);
  Millis passed = kT0 + 400 * kSec;
  EXPECT_EQ(t.check("k", passed, kTiming).outcome, Outcome::PassedAfterDelay);
  Millis again = passed + kTiming.pass_ttl - kSec;  // just within pass_ttl: known, and refreshed
  EXPECT_EQ(t.check("k", again, kTiming).outcome, Outcome::Known);
  EXPECT_EQ(t.check("k", again + kTiming.pass_ttl - kSec, kTiming).outcome, Outcome::Known);
  // not seen for pass_ttl: forgotten, greylisted from scratch
  EXPECT_EQ(t.check("k", again + 3 * kTiming.pass_ttl, kTiming).outcome, Outcome::New);
}

TEST(Table, FirstSightExpiresAfterTheRetryWindow) {
  LocalTable t(100);
  t.check("k", kT0, kTiming);
  t.check("k", kT0 + 100 * kSec, kTiming);  // an early retry does not extend the window
  Decision late = t.check("k", kT0 + kTiming.retry_window, kTiming);
  EXPECT_EQ(late.outcome, Outcome::New);  // the first sight was forgotten: a new one
  EXPECT_EQ(t.check("k", kT0 + kTiming.retry_window + 10 * kSec, kTiming).outcome, Outcome::Early);
}

TEST(Table, TripletsAreIndependent) {
  LocalTable t(100);
  t.check("a", kT0, kTiming);
  EXPECT_EQ(t.check("b", kT0 + 400 * kSec, kTiming).outcome, Outcome::New);
  EXPECT_EQ(t.check("a", kT0 + 400 * kSec, kTiming).outcome, Outcome::PassedAfterDelay);
}

TEST(Table, BoundedTableForgetsTheLeastRecentlyUsed) {
  LocalTable t(2);
  t.check("a", kT0, kTiming);
  t.check("b", kT0, kTiming);
  t.check("a", kT0 + kSec, kTiming);  // a is now the most recent
  t.check("c", kT0 + 2 * kSec, kTiming);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.check("b", kT0 + 400 * kSec, kTiming).outcome, Outcome::New);  // b went
  EXPECT_EQ(t.size(), 2u);
}

TEST(Table, MirrorRecordsWhatRedisDecided) {
  LocalTable t(100);
  t.mirror("k", {Outcome::Early, 100 * kSec}, kT0 + 100 * kSec, kTiming);  // first seen at kT0 elsewhere
  EXPECT_EQ(t.check("k", kT0 + 300 * kSec, kTiming).outcome, Outcome::PassedAfterDelay);
  t.mirror("p", {Outcome::Known, Millis(0)}, kT0, kTiming);
  EXPECT_EQ(t.check("p", kT0 + kSec, kTiming).outcome, Outcome::Known);
}

// --- triplet, allow-lists, verdicts ----------------------------------------------------------

std::shared_ptr<filters::Context> context(std::string ip, std::string sender = "Alice@Example.NET",
                                          std::string rcpt = "Bob@Example.ORG") {
  auto ctx = std::make_shared<filters::Context>();
  ctx->session_id = "S1";
  ctx->client_ip = *core::IpAddress::parse(ip);
  auto split = [](const std::string& a) {
    auto at = a.find('@');
    return at == std::string::npos ? smtp::Address{} : smtp::Address{a.substr(0, at), a.substr(at + 1)};
  };
  ctx->sender = split(sender);
  ctx->recipient = split(rcpt);
  ctx->cancel = std::make_shared<filters::Cancel>();
  return ctx;
}

TEST(Triplet, NetworksAndLowerCase) {
  Settings s;
  EXPECT_EQ(triplet(s, *context("192.0.2.77")), "192.0.2.0/24|alice@example.net|bob@example.org");
  EXPECT_EQ(triplet(s, *context("192.0.2.1")), triplet(s, *context("192.0.2.254")));  // one /24
  EXPECT_NE(triplet(s, *context("192.0.2.1")), triplet(s, *context("192.0.3.1")));
  EXPECT_EQ(triplet(s, *context("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64|alice@example.net|bob@example.org");
  EXPECT_EQ(triplet(s, *context("2001:db8:1:2::1")), triplet(s, *context("2001:db8:1:2:ffff::9")));  // one /64
  EXPECT_NE(triplet(s, *context("2001:db8:1:2::1")), triplet(s, *context("2001:db8:1:3::1")));
  EXPECT_EQ(triplet(s, *context("192.0.2.1", "")), "192.0.2.0/24|<>|bob@example.org");
  s.ipv4_prefix = 32;
  s.ipv6_prefix = 48;
  EXPECT_EQ(triplet(s, *context("192.0.2.77")).substr(0, 15), "192.0.2.77/32|a");
  EXPECT_EQ(triplet(s, *context("2001:db8:1:2::1")).substr(0, 16), "2001:db8:1::/48|");
}

TEST(Allow, EachList) {
  Settings s;
  s.client_allow = {*core::Cidr::parse("198.51.100.0/24")};
  s.recipient_allow = {"Postmaster@example.org", "open.example"};
  s.sender_allow = {"Partner.example"};
  s = normalized(s);
  EXPECT_FALSE(allowlisted(s, *context("192.0.2.1")));
  EXPECT_EQ(allowlisted(s, *context("198.51.100.9")), "client");
  EXPECT_EQ(allowlisted(s, *context("192.0.2.1", "a@partner.EXAMPLE")), "sender");
  EXPECT_FALSE(allowlisted(s, *context("192.0.2.1", "a@sub.partner.example")));  // a domain, not its subdomains
  EXPECT_EQ(allowlisted(s, *context("192.0.2.1", "a@x.net", "postmaster@Example.org")), "recipient");
  EXPECT_FALSE(allowlisted(s, *context("192.0.2.1", "a@x.net", "bob@example.org")));
  EXPECT_EQ(allowlisted(s, *context("192.0.2.1", "a@x.net", "anyone@open.example")), "recipient");
  auto auth = context("192.0.2.1");
  auth->authenticated = true;
  EXPECT_EQ(allowlisted(s, *auth), "authenticated");
  EXPECT_FALSE(allowlisted(s, *context("192.0.2.1", "")));  // the null sender is greylisted by default
  s.null_sender = false;
  EXPECT_EQ(allowlisted(s, *context("192.0.2.1", "")), "null_sender");
}

struct Fixture {
  Millis now = kT0;
  std::shared_ptr<filters::Greylist> make(Settings s = {}) {
    return std::make_shared<filters::Greylist>(s, std::make_shared<Store>(std::nullopt, "t:", 1000),
                                               [this] { return now; });
  }
};

TEST(Greylist, VerdictsAndCounters) {
  Fixture f;
  auto g = f.make();
  EXPECT_TRUE(g->wants(Phase::RcptTo));
  EXPECT_FALSE(g->wants(Phase::MailFrom));
  auto ctx = context("192.0.2.10");
  uint64_t grey = counter("greylist_results_total", "result=\"greylisted\"");
  auto v = run(g->check(Phase::RcptTo, ctx));
  EXPECT_EQ(v.action, Action::TempFail);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 451);
  EXPECT_EQ(v.reply->enhanced, "4.7.1");
  EXPECT_EQ(v.reply->text, "Greylisted, please try again in 300 seconds");
  f.now += 120 * kSec;
  v = run(g->check(Phase::RcptTo, ctx));
  EXPECT_EQ(v.action, Action::TempFail);
  EXPECT_EQ(v.reply->text, "Greylisted, please try again in 180 seconds");
  EXPECT_EQ(counter("greylist_results_total", "result=\"greylisted\""), grey + 2);
  f.now += 180 * kSec;
  uint64_t passed = counter("greylist_results_total", "result=\"passed_after_delay\"");
  EXPECT_EQ(run(g->check(Phase::RcptTo, ctx)).action, Action::Continue);  // never Accept: relay_control decides
  EXPECT_EQ(counter("greylist_results_total", "result=\"passed_after_delay\""), passed + 1);
  uint64_t known = counter("greylist_results_total", "result=\"known\"");
  EXPECT_EQ(run(g->check(Phase::RcptTo, context("192.0.2.99"))).action, Action::Continue);  // same /24
  EXPECT_EQ(counter("greylist_results_total", "result=\"known\""), known + 1);
  // another recipient is another triplet
  EXPECT_EQ(run(g->check(Phase::RcptTo, context("192.0.2.10", "alice@example.net", "carol@example.org"))).action,
            Action::TempFail);
}

TEST(Greylist, AllowlistedIsCountedAndContinues) {
  Fixture f;
  Settings s;
  s.client_allow = {*core::Cidr::parse("192.0.2.0/24")};
  auto g = f.make(s);
  uint64_t allow = counter("greylist_results_total", "result=\"allowlisted\"");
  EXPECT_EQ(run(g->check(Phase::RcptTo, context("192.0.2.10"))).action, Action::Continue);
  EXPECT_EQ(counter("greylist_results_total", "result=\"allowlisted\""), allow + 1);
}

// --- config --------------------------------------------------------------------------------

const std::string kBase =
    "[[listener]]\naddress = \"127.0.0.1:2525\"\n"                 // 1-2
    "[relay]\nlocal_domains = [\"example.org\"]\n"                  // 3-4
    "[qmqp]\nservers = [\"127.0.0.1:628\"]\n"                       // 5-6
    "[profile.mx]\nfilters = [\"greylist\", \"relay_control\"]\n";  // 7-8

TEST(Config, DefaultsAndRows) {
  auto r = config::load_string(kBase, "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  const auto& d = r.config->sections.get<Settings>("greylist");
  EXPECT_DOUBLE_EQ(d.delay.count(), 300);
  EXPECT_DOUBLE_EQ(d.retry_window.count(), 172800);
  EXPECT_DOUBLE_EQ(d.pass_ttl.count(), 36 * 86400);
  EXPECT_TRUE(d.null_sender);
  r = config::load_string(kBase +
                              "[greylist]\ndelay = 60\nretry_window = 7200\npass_ttl = 86400\nipv4_prefix = 32\n"
                              "client_allow = [\"192.0.2.0/24\"]\nrecipient_allow = [\"postmaster@example.org\"]\n"
                              "sender_allow = [\"example.net\"]\nnull_sender = false\nlocal_table_size = 10\n",
                          "t.toml", filters::config_schema());
  ASSERT_TRUE(r.config) << r.error;
  const auto& s = r.config->sections.get<Settings>("greylist");
  EXPECT_DOUBLE_EQ(s.delay.count(), 60);
  EXPECT_EQ(s.ipv4_prefix, 32u);
  EXPECT_EQ(s.client_allow.size(), 1u);
  EXPECT_EQ(s.recipient_allow, std::vector<std::string>{"postmaster@example.org"});
  EXPECT_FALSE(s.null_sender);
  EXPECT_EQ(s.local_table_size, 10u);
}

struct Bad {
  const char* name;
  std::string text;
  std::string expect;
};
class BadGreylist : public ::testing::TestWithParam<Bad> {};
TEST_P(BadGreylist, IsRefused) {
  auto r = config::load_string(kBase + GetParam().text, "t.toml", filters::config_schema());
  EXPECT_FALSE(r.config);
  EXPECT_NE(r.error.find(GetParam().expect), std::string::npos) << r.error;
}
INSTANTIATE_TEST_SUITE_P(
    Greylist, BadGreylist,
    ::testing::Values(
        Bad{"DelayNotShorter", "[greylist]\ndelay = 3600\nretry_window = 3600\n", "must be shorter than greylist.retry_window"},
        Bad{"BadCidr", "[greylist]\nclient_allow = [\"192.0.2.1/24\"]\n", "t.toml:10: greylist.client_allow"},
        Bad{"BadDomain", "[greylist]\nrecipient_allow = [\"not a domain\"]\n", "neither a domain nor an address"},
        Bad{"BadAddress", "[greylist]\nsender_allow = [\"@example.net\"]\n", "neither a domain nor an address"},
        Bad{"ZeroDelay", "[greylist]\ndelay = 0\n", "t.toml:10: greylist.delay"}),
    [](const auto& info) { return std::string(info.param.name); });

// --- Redis ---------------------------------------------------------------------------------

redis::ClientConfig redis_at(uint16_t port) {
  redis::ClientConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  c.timeout = milliseconds(300);
  c.reconnect_min = milliseconds(50);
  c.reconnect_max = milliseconds(200);
  return c;
}

template <class F>
bool wait_until(F f) {
  for (int i = 0; i < 300; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

TEST(Redis, TwoInstancesShareTheTriplet) {
  test_redis::RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not start";
  Store a(redis_at(server.port()), "t:", 100), b(redis_at(server.port()), "t:", 100);
  ASSERT_TRUE(wait_until([&] { return a.down_reason().empty() && b.down_reason().empty(); }));
  auto first = run(a.check("n|s|r", kT0, kTiming));
  EXPECT_TRUE(first.farm);
  EXPECT_EQ(first.decision.outcome, Outcome::New);
  auto early = run(b.check("n|s|r", kT0 + 10 * kSec, kTiming));
  EXPECT_EQ(early.decision.outcome, Outcome::Early);
  EXPECT_EQ(early.decision.waited, 10 * kSec);
  EXPECT_EQ(run(b.check("n|s|r", kT0 + 300 * kSec, kTiming)).decision.outcome, Outcome::PassedAfterDelay);
  EXPECT_EQ(run(a.check("n|s|r", kT0 + 301 * kSec, kTiming)).decision.outcome, Outcome::Known);
  // a's local table mirrored the farm's answers
  EXPECT_EQ(a.local().check("n|s|r", kT0 + 302 * kSec, kTiming).outcome, Outcome::Known);
}

TEST(Redis, GoneFallsBackToTheLocalTable) {
  test_redis::RedisServer server;
  ASSERT_TRUE(server.ready());
  Store a(redis_at(server.port()), "t:", 100);
  ASSERT_TRUE(wait_until([&] { return a.down_reason().empty(); }));
  EXPECT_EQ(run(a.check("x", kT0, kTiming)).decision.outcome, Outcome::New);
  EXPECT_EQ(run(a.check("x", kT0 + 400 * kSec, kTiming)).decision.outcome, Outcome::PassedAfterDelay);
  server.kill_now();
  ASSERT_TRUE(wait_until([&] { return !a.down_reason().empty(); }));
  uint64_t down = counter("greylist_redis_fallback_total", "reason=\"down\"");
  auto known = run(a.check("x", kT0 + 500 * kSec, kTiming));  // passed before the outage: still known here
  EXPECT_FALSE(known.farm);
  EXPECT_EQ(known.decision.outcome, Outcome::Known);
  EXPECT_EQ(run(a.check("y", kT0 + 500 * kSec, kTiming)).decision.outcome, Outcome::New);
  EXPECT_EQ(counter("greylist_redis_fallback_total", "reason=\"down\""), down + 2);
}

}  // namespace
