// SPF evaluation (filters/spf/spf.h) against a fake DNS table: every mechanism, CIDR lengths,
// include/redirect, the macro examples of RFC 7208 §7.4, the 10-term and 2-void-lookup limits,
// several records, syntax errors, temperror; and the filter's pure parts (verdict, header, owned
// header matching).
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <algorithm>
#include <map>

#include "filters/spf/spf.h"
#include "filters/spf/spf_filter.h"

namespace asio = boost::asio;
using filters::spf::Outcome;
using filters::spf::Result;
using net::DnsAnswer;
using net::DnsStatus;
using net::DnsType;

namespace {

struct FakeDns {
  std::map<std::pair<std::string, DnsType>, DnsAnswer> table;
  std::vector<std::string> asked;

  void txt(const std::string& name, std::vector<std::string> records) { ok(name, DnsType::TXT).txt = std::move(records); }
  void a(const std::string& name, std::vector<std::string> addrs) {
    auto& ans = ok(name, DnsType::A);
    for (const auto& s : addrs) {
      const auto b = core::IpAddress::parse(s)->bytes();
      ans.a.push_back(uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3]);
    }
  }
  void aaaa(const std::string& name, std::vector<std::string> addrs) {
    auto& ans = ok(name, DnsType::AAAA);
    for (const auto& s : addrs) ans.aaaa.push_back(core::IpAddress::parse(s)->bytes());
  }
  void mx(const std::string& name, std::vector<std::string> hosts) {
    auto& ans = ok(name, DnsType::MX);
    for (const auto& h : hosts) ans.mx.push_back({10, h});
  }
  void ptr(const std::string& name, std::vector<std::string> names) { ok(name, DnsType::PTR).ptr = std::move(names); }
  void status(const std::string& name, DnsType t, DnsStatus s) { table[{name, t}].status = s; }
  DnsAnswer& ok(const std::string& name, DnsType t) {
    auto& ans = table[{name, t}];
    ans.status = DnsStatus::Ok;
    return ans;
  }

  filters::spf::Lookup lookup() {
    return [this](std::string name, DnsType t) -> asio::awaitable<DnsAnswer> {
      asked.push_back(name);
      auto it = table.find({name, t});
      if (it != table.end()) co_return it->second;
      DnsAnswer none;
      // a name with some record is NoData for other types, else NXDOMAIN
      bool exists = std::any_of(table.begin(), table.end(), [&](const auto& e) { return e.first.first == name; });
      none.status = exists ? DnsStatus::NoData : DnsStatus::NxDomain;
      co_return none;
    };
  }
};

Outcome run(FakeDns& dns, const std::string& ip, const std::string& domain, std::string sender = "",
            const std::string& helo = "mail.client.test") {
  if (sender.empty()) sender = "user@" + domain;
  asio::io_context io;
  auto f = asio::co_spawn(io, filters::spf::check_host(*core::IpAddress::parse(ip), domain, sender, helo, dns.lookup()),
                          asio::use_future);
  io.run();
  return f.get();
}

Result result(FakeDns& dns, const std::string& ip, const std::string& domain) { return run(dns, ip, domain).result; }

std::string expand(const std::string& macro, const std::string& ip = "192.0.2.3") {
  filters::spf::MacroInput in;
  in.sender = "strong-bad@email.example.com";
  in.local = "strong-bad";
  in.sender_domain = "email.example.com";
  in.domain = "email.example.com";
  in.ip = *core::IpAddress::parse(ip);
  in.helo = "mx.example.org";
  std::string error;
  auto out = filters::spf::expand(macro, in, error);
  return out ? *out : "ERROR: " + error;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// records
TEST(Spf, NoRecordIsNone) {
  FakeDns dns;
  dns.txt("example.com", {"some other text"});
  EXPECT_EQ(result(dns, "192.0.2.1", "example.com"), Result::None);
  EXPECT_EQ(result(dns, "192.0.2.1", "nxdomain.example"), Result::None);
  EXPECT_EQ(result(dns, "192.0.2.1", "localhost"), Result::None);  // not a multi-label domain
}

TEST(Spf, SeveralRecordsArePermerror) {
  FakeDns dns;
  dns.txt("example.com", {"v=spf1 +all", "v=spf1 -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "example.com"), Result::PermError);
}

TEST(Spf, RecordSelectionIgnoresLookalikes) {
  FakeDns dns;
  dns.txt("example.com", {"v=spf10 +all", "V=SPF1 -all", "v=spf1x"});
  EXPECT_EQ(result(dns, "192.0.2.1", "example.com"), Result::Fail);
}

TEST(Spf, QualifiersAndDefaultNeutral) {
  FakeDns dns;
  dns.txt("pass.test", {"v=spf1 all"});
  dns.txt("fail.test", {"v=spf1 -all"});
  dns.txt("soft.test", {"v=spf1 ~all"});
  dns.txt("neutral.test", {"v=spf1 ?all"});
  dns.txt("nothing.test", {"v=spf1 ip4:10.0.0.1"});
  EXPECT_EQ(result(dns, "192.0.2.1", "pass.test"), Result::Pass);
  EXPECT_EQ(result(dns, "192.0.2.1", "fail.test"), Result::Fail);
  EXPECT_EQ(result(dns, "192.0.2.1", "soft.test"), Result::SoftFail);
  EXPECT_EQ(result(dns, "192.0.2.1", "neutral.test"), Result::Neutral);
  EXPECT_EQ(result(dns, "192.0.2.1", "nothing.test"), Result::Neutral);
}

TEST(Spf, SyntaxErrorsArePermerror) {
  FakeDns dns;
  const char* bad[] = {"v=spf1 foo -all", "v=spf1 ip4:192.0.2.300 -all", "v=spf1 ip4:192.0.2.0/33", "v=spf1 ip6:::1/129",
                       "v=spf1 a:example.com/012", "v=spf1 include: -all", "v=spf1 redirect=a.test redirect=b.test",
                       "v=spf1 exists:%{z}.test", "v=spf1 a:%{d0}.test", "v=spf1 -all exp=%", "v=spf1 ip4:2001:db8::1",
                       "v=spf1 a:foo.123", "v=spf1 all:foo"};
  for (const char* r : bad) {
    dns.txt("bad.test", {r});
    EXPECT_EQ(result(dns, "192.0.2.1", "bad.test"), Result::PermError) << r;
  }
  // a syntax error after a matching term still makes the record permerror (§4.6)
  dns.txt("bad.test", {"v=spf1 +all bogus:x"});
  EXPECT_EQ(result(dns, "192.0.2.1", "bad.test"), Result::PermError);
  // unknown modifiers are ignored
  dns.txt("ok.test", {"v=spf1 moo=%{d}.cow -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "ok.test"), Result::Fail);
}

// ------------------------------------------------------------------------------------------------
// mechanisms
TEST(Spf, Ip4AndIp6WithCidr) {
  FakeDns dns;
  dns.txt("ip.test", {"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip4:198.51.100.7 -all"});
  EXPECT_EQ(result(dns, "192.0.2.200", "ip.test"), Result::Pass);
  EXPECT_EQ(result(dns, "192.0.3.1", "ip.test"), Result::Fail);
  EXPECT_EQ(result(dns, "198.51.100.7", "ip.test"), Result::Pass);
  EXPECT_EQ(result(dns, "198.51.100.8", "ip.test"), Result::Fail);
  EXPECT_EQ(result(dns, "2001:db8:ffff::1", "ip.test"), Result::Pass);
  EXPECT_EQ(result(dns, "2001:db9::1", "ip.test"), Result::Fail);
  Outcome o = run(dns, "192.0.2.9", "ip.test");
  EXPECT_EQ(o.mechanism, "ip4:192.0.2.0/24");
}

TEST(Spf, AMechanismWithDualCidr) {
  FakeDns dns;
  dns.txt("a.test", {"v=spf1 a a:other.a.test/24//64 -all"});
  dns.a("a.test", {"192.0.2.10"});
  dns.a("other.a.test", {"198.51.100.1"});
  dns.aaaa("other.a.test", {"2001:db8:1:2::1"});
  EXPECT_EQ(result(dns, "192.0.2.10", "a.test"), Result::Pass);
  EXPECT_EQ(result(dns, "192.0.2.11", "a.test"), Result::Fail);
  EXPECT_EQ(result(dns, "198.51.100.77", "a.test"), Result::Pass);     // /24
  EXPECT_EQ(result(dns, "2001:db8:1:2::ffff", "a.test"), Result::Pass);  // //64 (AAAA asked for v6)
  EXPECT_EQ(result(dns, "2001:db8:1:3::1", "a.test"), Result::Fail);
}

TEST(Spf, MxMechanism) {
  FakeDns dns;
  dns.txt("mx.test", {"v=spf1 mx mx:other.test/30 -all"});
  dns.mx("mx.test", {"mail1.mx.test", "mail2.mx.test"});
  dns.a("mail1.mx.test", {"192.0.2.1"});
  dns.a("mail2.mx.test", {"192.0.2.2"});
  dns.mx("other.test", {"mx.other.test"});
  dns.a("mx.other.test", {"203.0.113.4"});
  EXPECT_EQ(result(dns, "192.0.2.2", "mx.test"), Result::Pass);
  EXPECT_EQ(result(dns, "203.0.113.7", "mx.test"), Result::Pass);
  EXPECT_EQ(result(dns, "203.0.113.8", "mx.test"), Result::Fail);
}

TEST(Spf, MxWithMoreThanTenNamesIsPermerror) {
  FakeDns dns;
  dns.txt("mx.test", {"v=spf1 mx -all"});
  std::vector<std::string> hosts;
  for (int i = 0; i < 11; ++i) hosts.push_back("m" + std::to_string(i) + ".mx.test");
  dns.mx("mx.test", hosts);
  EXPECT_EQ(result(dns, "192.0.2.2", "mx.test"), Result::PermError);
}

TEST(Spf, ExistsWithMacro) {
  FakeDns dns;
  dns.txt("ex.test", {"v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d} -all"});
  dns.a("1.2.0.192.strong.lp._spf.ex.test", {"127.0.0.2"});
  EXPECT_EQ(run(dns, "192.0.2.1", "ex.test", "strong-bad@ex.test").result, Result::Pass);
  EXPECT_EQ(run(dns, "192.0.2.1", "ex.test", "good-guy@ex.test").result, Result::Fail);
}

TEST(Spf, PtrMatchesValidatedNamesOnly) {
  FakeDns dns;
  dns.ptr("1.2.0.192.in-addr.arpa", {"mail.example.com", "fake.other.test"});
  dns.a("mail.example.com", {"192.0.2.1"});
  dns.a("fake.other.test", {"198.51.100.1"});  // does not point back: not validated
  dns.txt("example.com", {"v=spf1 ptr -all"});
  dns.txt("other.test", {"v=spf1 ptr -all"});
  dns.txt("third.test", {"v=spf1 ptr:example.com -all"});
  dns.txt("sub.test", {"v=spf1 ptr:com -all"});  // domain-end needs a dot: permerror
  EXPECT_EQ(result(dns, "192.0.2.1", "example.com"), Result::Pass);
  EXPECT_EQ(result(dns, "192.0.2.1", "other.test"), Result::Fail);
  EXPECT_EQ(result(dns, "192.0.2.1", "third.test"), Result::Pass);
  EXPECT_EQ(result(dns, "192.0.2.1", "sub.test"), Result::PermError);
  Outcome o = run(dns, "192.0.2.1", "other.test");
  EXPECT_EQ(o.dns_terms, 1u);
  // a failing PTR lookup is no match, never temperror (§5.5)
  dns.status("2.2.0.192.in-addr.arpa", DnsType::PTR, DnsStatus::Failure);
  dns.txt("soft.test", {"v=spf1 ptr ~all"});
  EXPECT_EQ(result(dns, "192.0.2.2", "soft.test"), Result::SoftFail);
  // IPv6: nibble name under ip6.arpa, AAAA validation
  dns.ptr("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", {"v6.example.com"});
  dns.aaaa("v6.example.com", {"2001:db8::cb01"});
  EXPECT_EQ(result(dns, "2001:db8::cb01", "example.com"), Result::Pass);
}

// %{p} (RFC 7208 §7.3): the validated name, preferring the current domain, then a subdomain of it.
TEST(Spf, PMacroIsTheValidatedNamePreferringTheDomain) {
  FakeDns dns;
  // fake.example.com does not point back; host.other.test and mail.example.com do
  dns.ptr("1.2.0.192.in-addr.arpa", {"fake.example.com", "host.other.test", "mail.example.com"});
  dns.a("fake.example.com", {"198.51.100.1"});
  dns.a("host.other.test", {"192.0.2.1"});
  dns.a("mail.example.com", {"192.0.2.1"});
  dns.txt("example.com", {"v=spf1 exists:%{p}.p.check.test -all"});
  dns.txt("other.test", {"v=spf1 exists:%{p}.p.check.test -all"});
  dns.txt("third.test", {"v=spf1 exists:%{p2}.p.check.test -all"});
  dns.a("mail.example.com.p.check.test", {"127.0.0.2"});
  dns.a("host.other.test.p.check.test", {"127.0.0.2"});
  EXPECT_EQ(result(dns, "192.0.2.1", "example.com"), Result::Pass);  // the subdomain of example.com
  EXPECT_EQ(result(dns, "192.0.2.1", "other.test"), Result::Pass);   // the one in other.test
  dns.a("other.test.p.check.test", {"127.0.0.2"});
  EXPECT_EQ(result(dns, "192.0.2.1", "third.test"), Result::Pass);  // neither: the first validated, %{p2}
  // the domain itself, when validated, comes first
  dns.ptr("2.2.0.192.in-addr.arpa", {"mail.example.com", "example.com"});
  dns.a("mail.example.com", {"192.0.2.1", "192.0.2.2"});
  dns.a("example.com", {"192.0.2.2"});
  dns.a("example.com.p.check.test", {"127.0.0.2"});
  dns.table.erase({"mail.example.com.p.check.test", DnsType::A});  // only the preferred name passes
  dns.txt("example.com", {"v=spf1 exists:%{p}.p.check.test -all", "other text"});
  Outcome o = run(dns, "192.0.2.2", "example.com");
  EXPECT_EQ(o.result, Result::Pass) << o.detail;
  EXPECT_EQ(o.mechanism, "exists:%{p}.p.check.test");
}

TEST(Spf, PMacroIsUnknownWithoutAValidatedNameNeverAnError) {
  FakeDns dns;
  dns.txt("example.com", {"v=spf1 exists:%{p}.p.check.test -all"});
  dns.a("unknown.p.check.test", {"127.0.0.2"});
  // no PTR record at all (NXDOMAIN): unknown, and neither a void lookup nor a term of its own
  Outcome o = run(dns, "192.0.2.1", "example.com");
  EXPECT_EQ(o.result, Result::Pass) << o.detail;
  EXPECT_EQ(o.dns_terms, 1u);
  EXPECT_EQ(o.void_lookups, 0u);
  // a PTR name that does not point back
  dns.ptr("3.2.0.192.in-addr.arpa", {"liar.example.com"});
  dns.a("liar.example.com", {"198.51.100.1"});
  EXPECT_EQ(result(dns, "192.0.2.3", "example.com"), Result::Pass);
  // PTR SERVFAIL / timeout, or the address lookup failing: unknown, never temperror (§7.3)
  dns.status("4.2.0.192.in-addr.arpa", DnsType::PTR, DnsStatus::Failure);
  EXPECT_EQ(result(dns, "192.0.2.4", "example.com"), Result::Pass);
  dns.status("5.2.0.192.in-addr.arpa", DnsType::PTR, DnsStatus::Timeout);
  EXPECT_EQ(result(dns, "192.0.2.5", "example.com"), Result::Pass);
  dns.ptr("6.2.0.192.in-addr.arpa", {"broken.example.com"});
  dns.status("broken.example.com", DnsType::A, DnsStatus::Failure);
  EXPECT_EQ(result(dns, "192.0.2.6", "example.com"), Result::Pass);
}

TEST(Spf, PMacroLooksUpOnlyWhenUsedAndOnce) {
  FakeDns dns;
  dns.ptr("1.2.0.192.in-addr.arpa", {"mail.example.com"});
  dns.a("mail.example.com", {"192.0.2.1"});
  dns.txt("plain.test", {"v=spf1 exists:%{i}.x.check.test a:%%{p}.check.test -all"});
  run(dns, "192.0.2.1", "plain.test");
  EXPECT_EQ(std::count(dns.asked.begin(), dns.asked.end(), "1.2.0.192.in-addr.arpa"), 0);  // %%{p} is no macro
  dns.asked.clear();
  dns.txt("twice.test", {"v=spf1 exists:%{p}.a.check.test exists:%{p}.b.check.test -all"});
  dns.a("mail.example.com.b.check.test", {"127.0.0.2"});
  EXPECT_EQ(result(dns, "192.0.2.1", "twice.test"), Result::Pass);
  EXPECT_EQ(std::count(dns.asked.begin(), dns.asked.end(), "1.2.0.192.in-addr.arpa"), 1);
  EXPECT_EQ(std::count(dns.asked.begin(), dns.asked.end(), "mail.example.com"), 1);
  // at most 10 PTR names are validated (§4.6.4): the 11th is never looked up
  std::vector<std::string> names;
  for (int i = 1; i <= 11; ++i) names.push_back("h" + std::to_string(i) + ".many.test");
  dns.ptr("7.2.0.192.in-addr.arpa", names);
  dns.a("h11.many.test", {"192.0.2.7"});
  dns.txt("many.test", {"v=spf1 exists:%{p}.p.check.test -all"});
  dns.a("unknown.p.check.test", {"127.0.0.2"});
  dns.asked.clear();
  EXPECT_EQ(result(dns, "192.0.2.7", "many.test"), Result::Pass);  // unknown
  EXPECT_EQ(std::count(dns.asked.begin(), dns.asked.end(), "h11.many.test"), 0);
  EXPECT_EQ(std::count(dns.asked.begin(), dns.asked.end(), "h10.many.test"), 1);
}

TEST(Spf, PMacroInAnExplanationAndUpperCase) {
  FakeDns dns;
  dns.ptr("9.2.0.192.in-addr.arpa", {"bad.host.test"});
  dns.a("bad.host.test", {"192.0.2.9"});
  dns.txt("e.test", {"v=spf1 -all exp=why.e.test"});
  dns.txt("why.e.test", {"%{p} (%{P1}) may not send for %{d}"});
  EXPECT_EQ(run(dns, "192.0.2.9", "e.test").explanation, "bad.host.test (test) may not send for e.test");
  EXPECT_EQ(run(dns, "192.0.2.8", "e.test").explanation, "unknown (unknown) may not send for e.test");
}

TEST(Spf, IncludeResults) {
  FakeDns dns;
  dns.txt("inc.test", {"v=spf1 include:pass.test include:fail.test include:temp.test -all"});
  dns.txt("pass.test", {"v=spf1 ip4:192.0.2.1 -all"});
  dns.txt("fail.test", {"v=spf1 ip4:192.0.2.2 -all"});
  dns.status("temp.test", DnsType::TXT, DnsStatus::Failure);
  EXPECT_EQ(result(dns, "192.0.2.1", "inc.test"), Result::Pass);       // include pass -> match
  EXPECT_EQ(result(dns, "192.0.2.2", "inc.test"), Result::Pass);
  EXPECT_EQ(result(dns, "192.0.2.3", "inc.test"), Result::TempError);  // fail -> no match; then temperror
  dns.txt("inc2.test", {"v=spf1 include:norecord.test -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "inc2.test"), Result::PermError);  // include of none
  dns.txt("inc3.test", {"v=spf1 include:broken.test -all"});
  dns.txt("broken.test", {"v=spf1 bogus"});
  EXPECT_EQ(result(dns, "192.0.2.1", "inc3.test"), Result::PermError);
}

TEST(Spf, RedirectUsesTheTargetDomain) {
  FakeDns dns;
  dns.txt("r.test", {"v=spf1 ip4:10.0.0.1 redirect=_spf.r2.test"});
  dns.txt("_spf.r2.test", {"v=spf1 a ~all"});
  dns.a("_spf.r2.test", {"192.0.2.5"});  // %{d} / "a" is the redirect target
  EXPECT_EQ(result(dns, "192.0.2.5", "r.test"), Result::Pass);
  EXPECT_EQ(result(dns, "192.0.2.6", "r.test"), Result::SoftFail);
  EXPECT_EQ(result(dns, "10.0.0.1", "r.test"), Result::Pass);  // mechanisms first
  dns.txt("r3.test", {"v=spf1 redirect=nothing.test"});
  EXPECT_EQ(result(dns, "192.0.2.5", "r3.test"), Result::PermError);
  dns.txt("r4.test", {"v=spf1 -all redirect=_spf.r2.test"});  // all wins: redirect ignored
  EXPECT_EQ(result(dns, "192.0.2.5", "r4.test"), Result::Fail);
}

TEST(Spf, ExpExplainsAFailWithMacros) {
  FakeDns dns;
  dns.txt("e.test", {"v=spf1 ip4:10.0.0.1 -all exp=why.%{d}"});
  dns.txt("why.e.test", {"%{c} is not one of %{d}'s senders (%{l})"});
  Outcome o = run(dns, "192.0.2.9", "e.test", "bob@e.test");
  EXPECT_EQ(o.result, Result::Fail);
  EXPECT_EQ(o.explanation, "192.0.2.9 is not one of e.test's senders (bob)");
  EXPECT_EQ(run(dns, "10.0.0.1", "e.test").explanation, "");  // pass: no explanation is fetched
}

TEST(Spf, ExpProblemsMeanNoExplanationNeverAnotherResult) {
  FakeDns dns;
  dns.txt("none.test", {"v=spf1 -all exp=missing.none.test"});  // NXDOMAIN
  dns.txt("two.test", {"v=spf1 -all exp=x.two.test"});
  dns.txt("x.two.test", {"one", "two"});  // several records
  dns.txt("bad.test", {"v=spf1 -all exp=x.bad.test"});
  dns.txt("x.bad.test", {"broken %{z} macro"});  // syntax error in the text
  dns.txt("tmp.test", {"v=spf1 -all exp=x.tmp.test"});
  dns.status("x.tmp.test", DnsType::TXT, DnsStatus::Timeout);
  for (const char* d : {"none.test", "two.test", "bad.test", "tmp.test"}) {
    Outcome o = run(dns, "192.0.2.9", d);
    EXPECT_EQ(o.result, Result::Fail) << d;
    EXPECT_EQ(o.explanation, "") << d;
  }
}

TEST(Spf, ExpOfAnIncludeIsNeverUsedTheRedirectTargetsIs) {
  FakeDns dns;
  dns.txt("outer.test", {"v=spf1 include:inner.test -all"});
  dns.txt("inner.test", {"v=spf1 ip4:10.0.0.1 -all exp=x.inner.test"});
  dns.txt("x.inner.test", {"inner text"});
  Outcome o = run(dns, "192.0.2.9", "outer.test");
  EXPECT_EQ(o.result, Result::Fail);
  EXPECT_EQ(o.explanation, "");
  dns.txt("r.test", {"v=spf1 redirect=t.test exp=x.r.test"});
  dns.txt("x.r.test", {"the original's text"});
  dns.txt("t.test", {"v=spf1 -all exp=x.t.test"});
  dns.txt("x.t.test", {"the target's text"});
  EXPECT_EQ(run(dns, "192.0.2.9", "r.test").explanation, "the target's text");
}

TEST(Spf, TheRefusalCarriesTheExplanationSanitised) {
  filters::spf::Settings s;
  s.on_fail = filters::spf::Policy::Reject;
  Outcome o;
  o.result = Result::Fail;
  o.explanation = "see http://e.test/why\r\n250 fake";
  auto v = filters::spf::verdict_for(s, "mx.test", o, "bob@e.test", "e.test", false, *core::IpAddress::parse("192.0.2.9"));
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 550);
  EXPECT_EQ(v.reply->text.find('\r'), std::string::npos);
  EXPECT_NE(v.reply->text.find("(see http://e.test/why"), std::string::npos) << v.reply->text;
}

// ------------------------------------------------------------------------------------------------
// limits and errors
TEST(Spf, TenDnsTermsAreFineElevenArePermerror) {
  FakeDns dns;
  std::string ten = "v=spf1", eleven;
  for (int i = 0; i < 10; ++i) {
    ten += " a:h" + std::to_string(i) + ".lim.test";
    dns.a("h" + std::to_string(i) + ".lim.test", {"198.51.100.1"});
  }
  dns.a("h10.lim.test", {"198.51.100.1"});
  eleven = ten + " a:h10.lim.test";
  dns.txt("ten.test", {ten + " -all"});
  dns.txt("eleven.test", {eleven + " -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "ten.test"), Result::Fail);
  Outcome o = run(dns, "192.0.2.1", "eleven.test");
  EXPECT_EQ(o.result, Result::PermError);
  EXPECT_NE(o.detail.find("more than 10"), std::string::npos) << o.detail;
  // the ip4/all terms do not count
  dns.txt("ip.test", {ten + " ip4:192.0.2.1 -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "ip.test"), Result::Pass);
}

TEST(Spf, IncludeLoopIsPermerror) {
  FakeDns dns;
  dns.txt("loop.test", {"v=spf1 include:loop2.test -all"});
  dns.txt("loop2.test", {"v=spf1 include:loop.test -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "loop.test"), Result::PermError);
}

TEST(Spf, TwoVoidLookupsAreFineThreeArePermerror) {
  FakeDns dns;
  dns.txt("v2.test", {"v=spf1 a:nx1.test exists:nx2.test -all"});
  dns.txt("v3.test", {"v=spf1 a:nx1.test exists:nx2.test mx:nx3.test -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "v2.test"), Result::Fail);
  Outcome o = run(dns, "192.0.2.1", "v3.test");
  EXPECT_EQ(o.result, Result::PermError);
  EXPECT_EQ(o.void_lookups, 3u);
  // NoData counts as void too
  dns.txt("nodata.test", {"v=spf1 a:nodata.test a:nodata.test a:nodata.test -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "nodata.test"), Result::PermError);
}

TEST(Spf, DnsFailuresAreTemperror) {
  FakeDns dns;
  dns.status("t1.test", DnsType::TXT, DnsStatus::Timeout);
  EXPECT_EQ(result(dns, "192.0.2.1", "t1.test"), Result::TempError);
  dns.txt("t2.test", {"v=spf1 a:slow.test -all"});
  dns.status("slow.test", DnsType::A, DnsStatus::Failure);
  Outcome o = run(dns, "192.0.2.1", "t2.test");
  EXPECT_EQ(o.result, Result::TempError);
  EXPECT_NE(o.detail.find("slow.test"), std::string::npos) << o.detail;
  dns.txt("t3.test", {"v=spf1 mx -all"});
  dns.mx("t3.test", {"mx.t3.test"});
  dns.status("mx.t3.test", DnsType::A, DnsStatus::Timeout);
  EXPECT_EQ(result(dns, "192.0.2.1", "t3.test"), Result::TempError);
  // a match before the failing term is a result
  dns.txt("t4.test", {"v=spf1 ip4:192.0.2.1 a:slow.test -all"});
  EXPECT_EQ(result(dns, "192.0.2.1", "t4.test"), Result::Pass);
}

// ------------------------------------------------------------------------------------------------
// macros: RFC 7208 §7.4
TEST(SpfMacros, Rfc7208Examples) {
  EXPECT_EQ(expand("%{s}"), "strong-bad@email.example.com");
  EXPECT_EQ(expand("%{o}"), "email.example.com");
  EXPECT_EQ(expand("%{d}"), "email.example.com");
  EXPECT_EQ(expand("%{d4}"), "email.example.com");
  EXPECT_EQ(expand("%{d3}"), "email.example.com");
  EXPECT_EQ(expand("%{d2}"), "example.com");
  EXPECT_EQ(expand("%{d1}"), "com");
  EXPECT_EQ(expand("%{dr}"), "com.example.email");
  EXPECT_EQ(expand("%{d2r}"), "example.email");
  EXPECT_EQ(expand("%{l}"), "strong-bad");
  EXPECT_EQ(expand("%{l-}"), "strong.bad");
  EXPECT_EQ(expand("%{lr}"), "strong-bad");
  EXPECT_EQ(expand("%{lr-}"), "bad.strong");
  EXPECT_EQ(expand("%{l1r-}"), "strong");
  EXPECT_EQ(expand("%{ir}.%{v}._spf.%{d2}"), "3.2.0.192.in-addr._spf.example.com");
  EXPECT_EQ(expand("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
  EXPECT_EQ(expand("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}"), "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  EXPECT_EQ(expand("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}"), "3.2.0.192.in-addr.strong.lp._spf.example.com");
  EXPECT_EQ(expand("%{d2}.trusted-domains.example.net"), "example.com.trusted-domains.example.net");
  EXPECT_EQ(expand("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01"),
            "1.0.b.c.0.0.0.0."
            "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST(SpfMacros, EscapesAndOtherLetters) {
  EXPECT_EQ(expand("a%%b%_c%-d"), "a%b c%20d");
  EXPECT_EQ(expand("%{h}"), "mx.example.org");
  EXPECT_EQ(expand("%{p}"), "unknown");  // no validated name (check_host() looks it up: tests above)
  EXPECT_EQ(expand("%{v}", "2001:db8::1"), "ip6");
  EXPECT_EQ(expand("%{S}"), "strong-bad%40email.example.com");  // upper case: URL-escaped
  EXPECT_EQ(expand("%{l+}"), "strong-bad");
  EXPECT_EQ(expand("%{c}").rfind("ERROR", 0), 0u);  // exp-only letter
  EXPECT_EQ(expand("%{d0}").rfind("ERROR", 0), 0u);
  EXPECT_EQ(expand("%x").rfind("ERROR", 0), 0u);
  EXPECT_EQ(expand("%{d").rfind("ERROR", 0), 0u);
  EXPECT_EQ(expand("%").rfind("ERROR", 0), 0u);
}

TEST(SpfMacros, PWithAValidatedName) {
  filters::spf::MacroInput in;
  in.domain = "email.example.com";
  in.ip = *core::IpAddress::parse("192.0.2.3");
  in.validated = "mx.example.org";
  std::string error;
  EXPECT_EQ(filters::spf::expand("%{p}", in, error).value_or("ERROR"), "mx.example.org");
  EXPECT_EQ(filters::spf::expand("%{p2}.trusted-domains.example.net", in, error).value_or("ERROR"),
            "example.org.trusted-domains.example.net");  // RFC 7208 §7.4
  EXPECT_EQ(filters::spf::expand("%{pr}", in, error).value_or("ERROR"), "org.example.mx");
  EXPECT_TRUE(filters::spf::uses_macro("x.%{p}", 'p'));
  EXPECT_TRUE(filters::spf::uses_macro("%{P2r}.x", 'p'));
  EXPECT_FALSE(filters::spf::uses_macro("%%{p}.x", 'p'));
  EXPECT_FALSE(filters::spf::uses_macro("%{i}.%{d}.p", 'p'));
  EXPECT_FALSE(filters::spf::uses_macro("%{", 'p'));
  EXPECT_TRUE(filters::spf::uses_macro("%%%{p}", 'p'));
}

TEST(SpfMacros, NullSenderUsesPostmasterAtHelo) {
  FakeDns dns;
  dns.txt("helo.test", {"v=spf1 exists:%{l}.%{o}.chk.test -all"});
  dns.a("postmaster.helo.test.chk.test", {"127.0.0.2"});
  EXPECT_EQ(run(dns, "192.0.2.1", "helo.test", "@helo.test").result, Result::Pass);
}

// ------------------------------------------------------------------------------------------------
// the filter's pure parts
namespace spfns = filters::spf;

TEST(SpfVerdict, DefaultScoresAndTags) {
  spfns::Settings s;
  Outcome o;
  o.result = Result::Fail;
  o.detail = "192.0.2.1 matched -all of example.com";
  auto ip = *core::IpAddress::parse("192.0.2.1");
  auto v = spfns::verdict_for(s, "mx.test", o, "u@example.com", "example.com", false, ip);
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_DOUBLE_EQ(v.score, 3);
  ASSERT_EQ(v.tags.size(), 1u);
  EXPECT_EQ(v.tags[0], "SPF_FAIL=3");
  ASSERT_EQ(v.add_headers.size(), 1u);
  EXPECT_EQ(v.add_headers[0].name, "Authentication-Results");
  EXPECT_EQ(v.add_headers[0].value, "mx.test; spf=fail (192.0.2.1 matched -all of example.com) smtp.mailfrom=u@example.com");
  o.result = Result::TempError;
  v = spfns::verdict_for(s, "mx.test", o, "u@example.com", "example.com", false, ip);
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_DOUBLE_EQ(v.score, 0);
  EXPECT_TRUE(v.tags.empty());
}

TEST(SpfVerdict, RejectAndTempfailPolicies) {
  spfns::Settings s;
  s.on_fail = spfns::Policy::Reject;
  s.on_temperror = spfns::Policy::TempFail;
  s.on_permerror = spfns::Policy::Reject;
  auto ip = *core::IpAddress::parse("192.0.2.1");
  Outcome o;
  o.result = Result::Fail;
  auto v = spfns::verdict_for(s, "mx.test", o, "u@example.com", "example.com", false, ip);
  EXPECT_EQ(v.action, filters::Action::Reject);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 550);
  EXPECT_EQ(v.reply->enhanced, "5.7.23");
  o.result = Result::PermError;
  v = spfns::verdict_for(s, "mx.test", o, "u@example.com", "example.com", false, ip);
  EXPECT_EQ(v.reply->code, 550);
  EXPECT_EQ(v.reply->enhanced, "5.7.24");
  o.result = Result::TempError;
  v = spfns::verdict_for(s, "mx.test", o, "u@example.com", "example.com", false, ip);
  EXPECT_EQ(v.action, filters::Action::TempFail);
  EXPECT_EQ(v.reply->code, 451);
  EXPECT_EQ(v.reply->enhanced, "4.7.24");
  o.result = Result::SoftFail;  // still the default: score
  v = spfns::verdict_for(s, "mx.test", o, "u@example.com", "example.com", false, ip);
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_DOUBLE_EQ(v.score, 1);
}

TEST(SpfVerdict, ReportOnlyNeverRefuses) {
  spfns::Settings s;
  s.on_fail = spfns::Policy::Reject;
  s.on_temperror = spfns::Policy::TempFail;
  s.report_only = true;
  auto ip = *core::IpAddress::parse("192.0.2.1");
  for (Result r : {Result::Fail, Result::TempError}) {
    Outcome o;
    o.result = r;
    auto v = spfns::verdict_for(s, "mx.test", o, "u@example.com", "example.com", false, ip);
    EXPECT_EQ(v.action, filters::Action::Continue);
    EXPECT_FALSE(v.reply);
    EXPECT_NE(v.reason.find("report only: would"), std::string::npos) << v.reason;
    EXPECT_EQ(v.add_headers.size(), 1u);
  }
}

TEST(SpfVerdict, HeloIdentityAndSafeComment) {
  Outcome o;
  o.result = Result::Pass;
  o.detail = "odd (text)\\";
  EXPECT_EQ(spfns::auth_results("mx.test", o, "postmaster@helo.test", true),
            "mx.test; spf=pass (odd _text__) smtp.helo=helo.test");
  EXPECT_EQ(spfns::auth_results("mx.test", o, "a;b@example.com", false), "mx.test; spf=pass (odd _text__) smtp.mailfrom=example.com");
}

TEST(SpfVerdict, OwnedHeaderMatchesOurAuthservId) {
  EXPECT_TRUE(spfns::carries_authserv_id(" mx.test; spf=pass smtp.mailfrom=a@b.test", "mx.test"));
  EXPECT_TRUE(spfns::carries_authserv_id("MX.Test 1; dmarc=pass", "mx.test"));
  EXPECT_TRUE(spfns::carries_authserv_id("mx.test;spf=pass", "mx.test"));
  EXPECT_TRUE(spfns::carries_authserv_id("mx.test (comment); spf=pass", "mx.test"));
  EXPECT_FALSE(spfns::carries_authserv_id("other.test; spf=pass", "mx.test"));
  EXPECT_FALSE(spfns::carries_authserv_id("mx.test.evil; spf=pass", "mx.test"));
}
