// Unit tests for the recipient cache (lifetimes per kind of answer, LRU bound, disabled modes,
// thread safety) and for the LDAP directory's use of it when no server answers: Unavailable is
// never cached, never turned into NotFound, and an empty AUTH password never reaches the network.
#include "directory/cache.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "directory/factory.h"
#include "directory/ldap_directory.h"

namespace ldap {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = RecipientCache::Clock;

struct FakeClock {
  Clock::time_point now = Clock::time_point{} + 1000h;
  RecipientCache::Now fn() {
    return [this] { return now; };
  }
};

RecipientResult found(std::string mailbox) { return {Lookup::Found, std::move(mailbox), {}}; }
RecipientResult of(Lookup l) { return {l, {}, {}}; }

TEST(RecipientCache, FoundIsKeptForThePositiveTtl) {
  FakeClock clock;
  RecipientCache c(10, 300s, 60s, clock.fn());
  c.put("alice@example.org", found("alice@example.org"));
  clock.now += 299s;
  auto hit = c.get("alice@example.org");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->status, Lookup::Found);
  EXPECT_EQ(hit->mailbox, "alice@example.org");
  clock.now += 1s;
  EXPECT_FALSE(c.get("alice@example.org"));
  EXPECT_EQ(c.size(), 0u);  // the expired entry was removed
  auto s = c.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.expired, 1u);
}

TEST(RecipientCache, NotFoundAndDisabledAreKeptForTheNegativeTtl) {
  FakeClock clock;
  RecipientCache c(10, 300s, 60s, clock.fn());
  c.put("nobody@example.org", of(Lookup::NotFound));
  c.put("carol@example.org", of(Lookup::Disabled));
  clock.now += 59s;
  EXPECT_EQ(c.get("nobody@example.org")->status, Lookup::NotFound);
  EXPECT_EQ(c.get("carol@example.org")->status, Lookup::Disabled);
  clock.now += 1s;
  EXPECT_FALSE(c.get("nobody@example.org"));
  EXPECT_FALSE(c.get("carol@example.org"));
}

TEST(RecipientCache, UnavailableIsNeverKept) {
  FakeClock clock;
  RecipientCache c(10, 300s, 60s, clock.fn());
  c.put("alice@example.org", of(Lookup::Unavailable));
  EXPECT_FALSE(c.get("alice@example.org"));
  EXPECT_EQ(c.size(), 0u);
}

TEST(RecipientCache, UnavailableDoesNotReplaceAKeptAnswer) {
  FakeClock clock;
  RecipientCache c(10, 300s, 60s, clock.fn());
  c.put("alice@example.org", found("alice@example.org"));
  c.put("alice@example.org", of(Lookup::Unavailable));
  EXPECT_EQ(c.get("alice@example.org")->status, Lookup::Found);
}

TEST(RecipientCache, ANewAnswerReplacesTheOldOneAndItsLifetime) {
  FakeClock clock;
  RecipientCache c(10, 300s, 60s, clock.fn());
  c.put("bob@example.org", found("bob@example.org"));
  clock.now += 100s;
  c.put("bob@example.org", of(Lookup::NotFound));
  EXPECT_EQ(c.get("bob@example.org")->status, Lookup::NotFound);
  clock.now += 61s;
  EXPECT_FALSE(c.get("bob@example.org"));
  EXPECT_EQ(c.size(), 0u);
}

TEST(RecipientCache, EvictsTheLeastRecentlyUsed) {
  FakeClock clock;
  RecipientCache c(2, 300s, 60s, clock.fn());
  c.put("a", found("a"));
  c.put("b", found("b"));
  EXPECT_TRUE(c.get("a"));  // a is now more recent than b
  c.put("c", found("c"));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.get("a"));
  EXPECT_FALSE(c.get("b"));
  EXPECT_TRUE(c.get("c"));
  EXPECT_EQ(c.stats().evicted, 1u);
}

TEST(RecipientCache, PositiveAndNegativeShareTheBound) {
  FakeClock clock;
  RecipientCache c(3, 300s, 60s, clock.fn());
  for (int i = 0; i < 10; ++i) c.put("n" + std::to_string(i), of(Lookup::NotFound));
  c.put("alice", found("alice"));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_TRUE(c.get("alice"));
}

TEST(RecipientCache, SizeZeroDisablesTheCache) {
  RecipientCache c(0, 300s, 60s);
  c.put("alice@example.org", found("alice@example.org"));
  EXPECT_FALSE(c.get("alice@example.org"));
  EXPECT_EQ(c.size(), 0u);
}

TEST(RecipientCache, TtlZeroDisablesThatKindOnly) {
  FakeClock clock;
  RecipientCache c(10, 300s, 0s, clock.fn());
  c.put("alice", found("alice"));
  c.put("nobody", of(Lookup::NotFound));
  EXPECT_TRUE(c.get("alice"));
  EXPECT_FALSE(c.get("nobody"));
}

TEST(RecipientCache, ManyThreadsStayWithinTheBound) {
  RecipientCache c(64, 300s, 60s);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        std::string key = "k" + std::to_string((i * 7 + t) % 200);
        if (auto hit = c.get(key); hit && hit->mailbox != key) ++wrong;
        c.put(key, found(key));
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(c.size(), 64u);
  EXPECT_GT(c.stats().hits, 0u);
}

// ---- the LDAP directory with no server ------------------------------------------------------

// A loopback port nobody listens on: connects are refused at once.
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

config::Directory unreachable_ldap() {
  config::Directory o;
  o.type = "ldap";
  o.uris = {"ldap://127.0.0.1:" + std::to_string(closed_port()), "ldap://127.0.0.1:" + std::to_string(closed_port())};
  o.base_dn = "dc=example,dc=org";
  o.timeout = std::chrono::duration<double>(1);
  o.catchall_domains = {"catchall.example"};
  return o;
}

template <class T>
T run(asio::awaitable<T> a) {
  asio::io_context io;
  std::optional<T> out;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  io.run();
  return std::move(*out);
}

TEST(LdapDirectoryWithoutServer, EveryUriDownIsUnavailableAndNeverCached) {
  auto made = make_ldap_directory(unreachable_ldap(), std::make_shared<net::BlockingPool>("ldap", 1, 8));
  ASSERT_TRUE(made.dir) << made.error;
  for (int i = 0; i < 2; ++i) {
    auto r = run(made.dir->find_recipient("alice@example.org"));
    EXPECT_EQ(r.status, Lookup::Unavailable);
    EXPECT_NE(r.detail.find("connect"), std::string::npos) << r.detail;
  }
  // Even a catch-all domain is not "Found" when the directory cannot be asked.
  EXPECT_EQ(run(made.dir->find_recipient("x@catchall.example")).status, Lookup::Unavailable);
  auto s = made.dir->stats();
  EXPECT_EQ(s.unavailable, 3u);
  EXPECT_EQ(s.cache_hits, 0u);
  EXPECT_EQ(s.uri_failures, 6u);  // both URIs, every time: nothing was remembered
}

TEST(LdapDirectoryWithoutServer, AuthIsUnavailableNotBadCredentials) {
  auto made = make_ldap_directory(unreachable_ldap(), std::make_shared<net::BlockingPool>("ldap", 1, 8));
  ASSERT_TRUE(made.dir);
  EXPECT_EQ(run(made.dir->authenticate("alice", "alicepw")).status, AuthStatus::Unavailable);
}

TEST(LdapDirectoryWithoutServer, EmptyPasswordIsRefusedWithoutAsking) {
  auto made = make_ldap_directory(unreachable_ldap(), std::make_shared<net::BlockingPool>("ldap", 1, 8));
  ASSERT_TRUE(made.dir);
  auto r = run(made.dir->authenticate("alice", ""));
  EXPECT_EQ(r.status, AuthStatus::BadCredentials);
  EXPECT_EQ(made.dir->stats().uri_failures, 0u);
  EXPECT_EQ(run(made.dir->authenticate("alice", std::string("a\0b", 3))).status, AuthStatus::BadCredentials);
}

TEST(LdapDirectoryWithoutServer, AFullPoolIsUnavailable) {
  auto made = make_ldap_directory(unreachable_ldap(), std::make_shared<net::BlockingPool>("ldap", 1, 0));
  ASSERT_TRUE(made.dir);
  EXPECT_EQ(run(made.dir->find_recipient("alice@example.org")).status, Lookup::Unavailable);
  EXPECT_EQ(made.dir->stats().shed, 1u);
}

TEST(LdapDirectoryOptions, BadOptionsAreRefusedUpFront) {
  auto pool = std::make_shared<net::BlockingPool>("ldap", 1, 8);
  auto bad = [&](auto change) {
    config::Directory o = unreachable_ldap();
    change(o);
    auto made = make_directory(o, pool);
    EXPECT_FALSE(made.dir);
    return made.error;
  };
  EXPECT_NE(bad([](config::Directory& o) { o.recipient_filter = "(mail=alice)"; }).find("recipient_filter has no %s"),
            std::string::npos);
  EXPECT_NE(bad([](config::Directory& o) { o.login_filter = "(uid=*)"; }).find("login_filter has no %s"), std::string::npos);
  EXPECT_NE(bad([](config::Directory& o) { o.uris = {"http://x"}; }).find("not a valid LDAP URI"), std::string::npos);
  EXPECT_NE(bad([](config::Directory& o) { o.uris.clear(); }).find("URI"), std::string::npos);
  EXPECT_NE(bad([](config::Directory& o) { o.bind_dn = "cn=admin"; }).find("bind_password_file"), std::string::npos);
  EXPECT_NE(bad([](config::Directory& o) {
              o.bind_dn = "cn=admin";
              o.bind_password_file = "/nonexistent/pw";
            }).find("cannot read"),
            std::string::npos);
  EXPECT_NE(bad([](config::Directory& o) { o.type = "nis"; }).find("unknown type"), std::string::npos);
}

TEST(DirectoryFactory, TypeNoneIsNoDirectoryAndNoError) {
  config::Directory o;
  auto made = make_directory(o, nullptr);
  EXPECT_FALSE(made.dir);
  EXPECT_TRUE(made.error.empty());
}

TEST(DirectoryFactory, MakesItsOwnPoolWhenGivenNone) {
  auto made = make_directory(unreachable_ldap(), nullptr);
  ASSERT_TRUE(made.dir) << made.error;
  EXPECT_EQ(made.dir->describe().rfind("ldap ldap://127.0.0.1:", 0), 0u) << made.dir->describe();
  EXPECT_EQ(run(made.dir->find_recipient("alice@example.org")).status, Lookup::Unavailable);
}

}  // namespace
}  // namespace ldap
