// The rbl filter's pure parts (reverse query names, answer codes, tags, the judgement of an
// answer), the filter against a DNS server that never answers (cancel, fail open), and the
// zones' dependency check (RFC 5782 test points) against a DNS server on its own thread.
#include "filters/rbl/rbl.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <thread>

using namespace filters::rbl;

namespace {
uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d; }
std::string reverse(const char* text) { return reverse_name(core::IpAddress::parse(text).value()); }

Zone zone(std::string name, std::string kind = "ip", Codes codes = {}) {
  Zone z;
  z.zone = std::move(name);
  z.kind = kind == "domain" ? ZoneKind::Domain : kind == "allow" ? ZoneKind::Allow : ZoneKind::Ip;
  z.codes = std::move(codes);
  return z;
}
}  // namespace

TEST(RblReverse, Ipv4OctetsReversed) {
  EXPECT_EQ(reverse("127.0.0.2"), "2.0.0.127");
  EXPECT_EQ(reverse("192.0.2.99"), "99.2.0.192");
}

TEST(RblReverse, Ipv6NibblesReversed) {
  EXPECT_EQ(reverse("2001:db8::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  EXPECT_EQ(reverse("::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0");
  EXPECT_EQ(reverse("2001:db8::abcd"), "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  EXPECT_EQ(reverse("fe80::1234:5678").size(), 63u);  // 32 nibbles and 31 dots
}

TEST(RblReverse, MappedIpv6IsIpv4) {
  EXPECT_EQ(reverse("::ffff:127.0.0.2"), "2.0.0.127");
  EXPECT_EQ(reverse("::ffff:c000:263"), "99.2.0.192");
  EXPECT_EQ(reverse_name(core::IpAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 2})), "2.0.0.127");
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
    Settings cfg;
    cfg.servers = {"127.0.0.1:" + std::to_string(hole.local_endpoint().port())};
    cfg.query_timeout = std::chrono::duration<double>(query_timeout);
    cfg.tries = 1;
    cfg.zones.push_back(zone("bl.test"));
    cfg.zones.back().action = ZoneAction::Reject;
    filter = std::make_shared<filters::Rbl>(cfg, std::make_shared<net::DnsCache>());
  }
  // connect() then the MailFrom check; returns the verdict and how long the check took.
  std::pair<std::optional<filters::Verdict>, std::chrono::steady_clock::duration> run(std::chrono::milliseconds cancel_after) {
    filters::Context base;
    base.session_id = "T1";
    base.client_ip = core::IpAddress::v4({127, 0, 0, 2});
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

// ------------------------------------------------------------------------------------------------
// The dependency check of a zone (filters::rbl::zone_check) against a DNS server on its own
// thread: zone_check runs its private io_context on the calling thread, like the monitor's.
namespace {

// Answers A queries from `answers` (name -> addresses; an empty list = REFUSED), NXDOMAIN with an
// SOA otherwise; records every name asked.
using Answers = std::map<std::string, std::vector<uint32_t>>;

class ThreadDns {
 public:
  explicit ThreadDns(Answers answers = {}) : answers_(std::move(answers)) {
    asio::co_spawn(io_, serve(), asio::detached);  // the io_context has work before the thread runs it
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ThreadDns() {
    asio::post(io_, [this] { sock_.close(); });
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> asked() {
    std::lock_guard lock(mu_);
    return asked_;
  }

 private:
  using Bytes = std::vector<unsigned char>;
  static void u16(Bytes& b, unsigned v) {
    b.push_back(static_cast<unsigned char>(v >> 8));
    b.push_back(static_cast<unsigned char>(v));
  }
  asio::awaitable<void> serve() {
    for (;;) {
      Bytes buf(512);
      asio::ip::udp::endpoint peer;
      boost::system::error_code ec;
      size_t n = co_await sock_.async_receive_from(asio::buffer(buf), peer, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      size_t qend = 12;
      std::string qn;
      while (qend < n && buf[qend]) {
        qn += (qn.empty() ? "" : ".") + std::string(buf.begin() + qend + 1, buf.begin() + qend + 1 + buf[qend]);
        qend += buf[qend] + 1;
      }
      {
        std::lock_guard lock(mu_);
        asked_.push_back(qn);
      }
      auto it = answers_.find(qn);
      unsigned rcode = it == answers_.end() ? 3 : it->second.empty() ? 5 : 0;
      Bytes m(buf.begin(), buf.begin() + 2);
      u16(m, 0x8180 | rcode);
      u16(m, 1);
      u16(m, rcode == 0 ? static_cast<unsigned>(it->second.size()) : 0);
      u16(m, rcode == 3 ? 1 : 0);
      u16(m, 0);
      m.insert(m.end(), buf.begin() + 12, buf.begin() + static_cast<long>(qend) + 5);
      if (rcode == 0)
        for (uint32_t a : it->second) {
          u16(m, 0xC00C);
          u16(m, 1);
          u16(m, 1);
          u16(m, 0);
          u16(m, 60);
          u16(m, 4);
          u16(m, a >> 16);
          u16(m, a & 0xFFFF);
        }
      if (rcode == 3) {  // SOA: owner = the question name (pointer), empty names, minimum 60
        u16(m, 0xC00C);
        u16(m, 6);
        u16(m, 1);
        u16(m, 0);
        u16(m, 300);
        u16(m, 22);
        m.push_back(0);
        m.push_back(0);
        for (int i = 0; i < 4; ++i) u16(m, 0), u16(m, 1);
        u16(m, 0);
        u16(m, 60);
      }
      co_await sock_.async_send_to(asio::buffer(m), peer, asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  Answers answers_;
  asio::io_context io_;
  asio::ip::udp::socket sock_{io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  uint16_t port_ = sock_.local_endpoint().port();
  std::mutex mu_;
  std::vector<std::string> asked_;
  std::thread thread_;
};

const std::string kV6Point = "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.";

Settings rbl_via(const std::string& server) {
  Settings cfg;
  cfg.servers = {server};
  cfg.query_timeout = std::chrono::duration<double>(0.3);
  cfg.tries = 1;
  return cfg;
}

}  // namespace

TEST(RblZoneCheck, TestPointListedIsHealthy) {
  ThreadDns dns(Answers{{"2.0.0.127.bl.test", {ip(127, 0, 0, 2)}}, {"test.dbl.test", {ip(127, 0, 1, 2)}}});
  Settings cfg = rbl_via(dns.address());  // the zones have no servers of their own: rbl.servers
  EXPECT_EQ(zone_check(zone("bl.test"), cfg), "");
  EXPECT_EQ(zone_check(zone("bl.test", "allow"), cfg), "");
  EXPECT_EQ(zone_check(zone("dbl.test", "domain"), cfg), "");
  EXPECT_EQ(dns.asked(), (std::vector<std::string>{"2.0.0.127.bl.test", "2.0.0.127.bl.test", "test.dbl.test"}));
}

TEST(RblZoneCheck, EmptyListIsDownWithTheTestPointNamed) {
  ThreadDns dns;
  Settings cfg = rbl_via(dns.address());
  EXPECT_EQ(zone_check(zone("empty.test"), cfg), "test point 127.0.0.2 not listed (list empty or not serving)");
  EXPECT_EQ(zone_check(zone("empty.test", "domain"), cfg), "test point test not listed (list empty or not serving)");
  // an ip zone also tries the IPv6 test point before saying so; a domain zone has only one
  EXPECT_EQ(dns.asked(), (std::vector<std::string>{"2.0.0.127.empty.test", kV6Point + "empty.test", "test.empty.test"}));
}

TEST(RblZoneCheck, Ipv6OnlyListIsHealthyByItsTestPoint) {
  ThreadDns dns(Answers{{kV6Point + "bl6.test", {ip(127, 0, 0, 2)}}});
  EXPECT_EQ(zone_check(zone("bl6.test"), rbl_via(dns.address())), "");
}

TEST(RblZoneCheck, ErrorCodesRefusalsAndOddAnswersAreDown) {
  ThreadDns dns(Answers{{"2.0.0.127.blocked.test", {ip(127, 255, 255, 254)}},
                 {"2.0.0.127.hijacked.test", {ip(192, 0, 2, 1)}},
                 {"2.0.0.127.refused.test", {}}});
  Settings cfg = rbl_via(dns.address());
  EXPECT_EQ(zone_check(zone("blocked.test"), cfg), "test point 127.0.0.2 answered 127.255.255.254: the list refuses our queries (error code)");
  EXPECT_EQ(zone_check(zone("hijacked.test"), cfg), "test point 127.0.0.2 answered 192.0.2.1: not a list answer (wrong zone or servers?)");
  std::string refused = zone_check(zone("refused.test"), cfg);
  EXPECT_EQ(refused.rfind("2.0.0.127.refused.test A: failure", 0), 0u) << refused;
  // the zone's codes do not matter: the test point answers 127.0.0.2 whatever the zone honours
}

TEST(RblZoneCheck, ZoneServersWinAndASilentServerIsABoundedTimeout) {
  ThreadDns live(Answers{{"2.0.0.127.bl.test", {ip(127, 0, 0, 2)}}});
  asio::io_context unused;
  asio::ip::udp::socket hole(unused, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Settings cfg = rbl_via(live.address());
  Zone z = zone("bl.test");
  z.servers = {"127.0.0.1:" + std::to_string(hole.local_endpoint().port())};
  auto t0 = std::chrono::steady_clock::now();
  std::string err = zone_check(z, cfg);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(err.find("2.0.0.127.bl.test A: timeout"), std::string::npos) << err;
  EXPECT_LT(took, 1500ms);  // 0.3 s query timeout, one try (+ margin)
  EXPECT_TRUE(live.asked().empty());  // rbl.servers not used when the zone has its own

  cfg.tries = 5;  // at most 2 tries: 0.3 s + 0.6 s (c-ares doubles the second round), not 9.3 s
  t0 = std::chrono::steady_clock::now();
  err = zone_check(z, cfg);
  took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(err.find("timeout"), std::string::npos) << err;
  EXPECT_GE(took, 800ms);
  EXPECT_LT(took, 2500ms);
}
