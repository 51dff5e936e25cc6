// The rbl filter's pure parts: reverse query names, answer codes, tags, the judgement of an answer.
#include "filters/rbl.h"

#include <gtest/gtest.h>

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
