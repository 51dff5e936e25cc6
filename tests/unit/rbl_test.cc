// The rbl filter's pure parts (reverse query names, answer codes, tags, the judgement of an
// answer), and the filter against a DNS server that never answers (cancel, fail open).
#include "filters/rbl.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

using namespace filters::rbl;

namespace {
uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d; }

config::RblZone zone(std::string name, std::string kind = "ip", Codes codes = {}) {
  config::RblZone z;
  z.zone = std::move(name);
  z.kind = std::move(kind);
  z.codes = std::move(codes);
  return z;
}
}  // namespace

TEST(RblReverse, Ipv4OctetsReversed) {
  EXPECT_EQ(reverse_name("127.0.0.2"), "2.0.0.127");
  EXPECT_EQ(reverse_name("192.0.2.99"), "99.2.0.192");
}

TEST(RblReverse, Ipv6NibblesReversed) {
  EXPECT_EQ(reverse_name("2001:db8::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  EXPECT_EQ(reverse_name("::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0");
  EXPECT_EQ(reverse_name("[2001:db8::abcd]"), "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  auto n = reverse_name("fe80::1234:5678");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->size(), 63u);  // 32 nibbles and 31 dots
}

TEST(RblReverse, MappedIpv6IsIpv4) {
  EXPECT_EQ(reverse_name("::ffff:127.0.0.2"), "2.0.0.127");
  EXPECT_EQ(reverse_name("::ffff:c000:263"), "99.2.0.192");
}

TEST(RblReverse, NotAnAddress) {
  EXPECT_FALSE(reverse_name(""));
  EXPECT_FALSE(reverse_name("localhost"));
  EXPECT_FALSE(reverse_name("1.2.3"));
  EXPECT_FALSE(reverse_name("1.2.3.4.5"));
}

TEST(RblCodes, EmptyCodesMeanLoopbackButNotTheErrorRange) {
  EXPECT_TRUE(code_honoured({}, ip(127, 0, 0, 2)));
  EXPECT_TRUE(code_honoured({}, ip(127, 0, 1, 4)));
  EXPECT_TRUE(code_honoured({}, ip(127, 255, 254, 1)));
  EXPECT_FALSE(code_honoured({}, ip(127, 255, 255, 254)));  // "query refused" style error answers
  EXPECT_FALSE(code_honoured({}, ip(127, 255, 255, 0)));
  EXPECT_FALSE(code_honoured({}, ip(10, 0, 0, 2)));
  EXPECT_FALSE(code_honoured({}, ip(128, 0, 0, 2)));
}

TEST(RblCodes, RangesAreInclusive) {
  Codes c = {{ip(127, 0, 0, 2), ip(127, 0, 0, 3)}, {ip(127, 0, 0, 10), ip(127, 0, 0, 10)}};
  EXPECT_TRUE(code_honoured(c, ip(127, 0, 0, 2)));
  EXPECT_TRUE(code_honoured(c, ip(127, 0, 0, 3)));
  EXPECT_TRUE(code_honoured(c, ip(127, 0, 0, 10)));
  EXPECT_FALSE(code_honoured(c, ip(127, 0, 0, 4)));
  EXPECT_FALSE(code_honoured(c, ip(127, 0, 0, 11)));
  EXPECT_FALSE(code_honoured(c, ip(127, 0, 0, 1)));
}

TEST(RblTags, UpperCasedNonAlnumToUnderscore) {
  EXPECT_EQ(tag_name(zone("zen.test")), "RBL_ZEN_TEST");
  EXPECT_EQ(tag_name(zone("b.barracuda-central.org")), "RBL_B_BARRACUDA_CENTRAL_ORG");
  EXPECT_EQ(tag_name(zone("dbl.test", "domain")), "RHSBL_DBL_TEST");
}

TEST(RblDomain, OnlyPlainHostNames) {
  EXPECT_TRUE(valid_domain("spammer.example"));
  EXPECT_TRUE(valid_domain("a-b.example_x"));
  EXPECT_FALSE(valid_domain(""));
  EXPECT_FALSE(valid_domain("[127.0.0.1]"));
  EXPECT_FALSE(valid_domain("a..b"));
  EXPECT_FALSE(valid_domain(".a"));
  EXPECT_FALSE(valid_domain("a b"));
}

TEST(RblJudge, ListedByTheFirstHonouredAnswer) {
  net::DnsAnswer a;
  a.status = net::DnsStatus::Ok;
  a.a = {ip(127, 0, 0, 11), ip(127, 0, 0, 4), ip(127, 0, 0, 2)};
  auto r = judge(zone("zen.test", "ip", {{ip(127, 0, 0, 2), ip(127, 0, 0, 9)}}), a);
  EXPECT_EQ(r.status, ZoneResult::Status::Listed);
  EXPECT_EQ(r.code, ip(127, 0, 0, 4));
}

TEST(RblJudge, AnswersOutsideTheCodesAreNotAListing) {
  net::DnsAnswer a;
  a.status = net::DnsStatus::Ok;
  a.a = {ip(127, 0, 0, 11)};
  auto r = judge(zone("zen.test", "ip", {{ip(127, 0, 0, 2), ip(127, 0, 0, 9)}}), a);
  EXPECT_EQ(r.status, ZoneResult::Status::NotListed);
  EXPECT_EQ(r.detail, "127.0.0.11 not honoured");
  a.a = {ip(127, 255, 255, 254)};
  EXPECT_EQ(judge(zone("x.test"), a).status, ZoneResult::Status::NotListed);
}

TEST(RblJudge, NxdomainIsNotListedFailuresFailOpen) {
  net::DnsAnswer a;
  a.status = net::DnsStatus::NxDomain;
  EXPECT_EQ(judge(zone("bl.test"), a).status, ZoneResult::Status::NotListed);
  a.status = net::DnsStatus::NoData;
  EXPECT_EQ(judge(zone("bl.test"), a).status, ZoneResult::Status::NotListed);
  a.status = net::DnsStatus::Timeout;
  a.error = "Timeout while contacting DNS servers";
  auto r = judge(zone("bl.test"), a);
  EXPECT_EQ(r.status, ZoneResult::Status::Failed);
  EXPECT_EQ(r.detail, "timeout: Timeout while contacting DNS servers");
  a.status = net::DnsStatus::Failure;
  EXPECT_EQ(judge(zone("bl.test"), a).status, ZoneResult::Status::Failed);
}

TEST(RblText, Ipv4Text) { EXPECT_EQ(ipv4_text(ip(127, 255, 0, 10)), "127.255.0.10"); }

// ------------------------------------------------------------------------------------------------
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

struct SilentDnsCase {
  asio::io_context io;
  asio::ip::udp::socket hole{io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::shared_ptr<filters::Rbl> filter;
  std::shared_ptr<filters::Cancel> cancel = std::make_shared<filters::Cancel>();

  explicit SilentDnsCase(double query_timeout) {
    config::Rbl cfg;
    cfg.servers = {"127.0.0.1:" + std::to_string(hole.local_endpoint().port())};
    cfg.query_timeout = config::Seconds(query_timeout);
    cfg.tries = 1;
    cfg.zones.push_back(zone("bl.test"));
    cfg.zones.back().action = "reject";
    filter = std::make_shared<filters::Rbl>(cfg, std::make_shared<net::DnsCache>());
  }
  // connect() then the MailFrom check; returns the verdict and how long the check took.
  std::pair<std::optional<filters::Verdict>, std::chrono::steady_clock::duration> run(std::chrono::milliseconds cancel_after) {
    filters::Context base;
    base.session_id = "T1";
    base.client_ip = "127.0.0.2";
    auto ctx = std::make_shared<filters::Context>(base);
    ctx->state = filter->connect(base, io.get_executor());
    ctx->cancel = cancel;
    std::optional<filters::Verdict> v;
    auto t0 = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration took{};
    asio::steady_timer t(io, cancel_after);
    t.async_wait([this](boost::system::error_code ec) {
      if (!ec) cancel->flag = true;
    });
    auto check = [&, ctx]() -> asio::awaitable<void> {
      v = co_await filter->check(filters::Phase::MailFrom, ctx);
      took = std::chrono::steady_clock::now() - t0;
      t.cancel();
    };
    auto work = check();
    asio::co_spawn(io, std::move(work), asio::detached);
    // until the verdict: an abandoned query still pending is dropped with the io_context
    for (auto end = std::chrono::steady_clock::now() + 10s; !v && std::chrono::steady_clock::now() < end;)
      io.run_one_for(100ms);
    return {v, took};
  }
};
}  // namespace

TEST(RblFilter, CancelStopsTheWait) {
  SilentDnsCase c(5.0);  // the query would take 5 s
  auto [v, took] = c.run(50ms);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->failed);
  EXPECT_LT(took, 1s);
}

TEST(RblFilter, ZoneThatNeverAnswersIsSkipped) {
  SilentDnsCase c(0.2);
  auto [v, took] = c.run(9s);  // no cancel before the query times out
  ASSERT_TRUE(v);
  EXPECT_EQ(v->action, filters::Action::Continue);
  EXPECT_FALSE(v->failed);
  EXPECT_EQ(v->score, 0);
  EXPECT_LT(took, 3s);
}
