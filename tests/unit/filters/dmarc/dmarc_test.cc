// The DMARC core (filters/dmarc/dmarc.h) and the filter's pure parts (dmarc_filter.h): record
// parser, organisational domains from Debian's public suffix list (default rule "*" included),
// strict/relaxed alignment, policy discovery against a fake DNS table (sp=, several records,
// temperror), pct sampling with an injected draw, the temperror rules, the From field, and the
// decision (reject/quarantine/none, overrides, monitor only), header and report line.
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <map>

#include "filters/dmarc/dmarc.h"
#include "filters/dmarc/dmarc_filter.h"
#include "filters/sender_auth.h"

namespace asio = boost::asio;
using namespace filters::dmarc;
using filters::AuthResult;
using filters::DkimFacts;
using filters::SpfFacts;
using net::DnsAnswer;
using net::DnsStatus;
using net::DnsType;

namespace {

const PublicSuffixList& psl() {
  static std::shared_ptr<const PublicSuffixList> list = [] {
    std::string err;
    auto l = PublicSuffixList::load("/usr/share/publicsuffix/public_suffix_list.dat", err);
    if (!l) throw std::runtime_error(err);
    return l;
  }();
  return *list;
}

Record parse(const std::string& txt) {
  std::string err;
  auto r = parse_record(txt, err);
  EXPECT_TRUE(r) << txt << ": " << err;
  return r.value_or(Record{});
}

bool invalid(const std::string& txt) {
  std::string err;
  return !parse_record(txt, err) && !err.empty();
}

// ---- record parser ----

TEST(DmarcRecord, MinimalRecordHasTheRfcDefaults) {
  Record r = parse("v=DMARC1; p=reject");
  EXPECT_EQ(r.p, Policy::Reject);
  EXPECT_FALSE(r.sp);
  EXPECT_EQ(r.subdomain_policy(), Policy::Reject);
  EXPECT_EQ(r.pct, 100u);
  EXPECT_EQ(r.adkim, Alignment::Relaxed);
  EXPECT_EQ(r.aspf, Alignment::Relaxed);
  EXPECT_EQ(r.ri, 86400u);
}

TEST(DmarcRecord, EveryTagIsRead) {
  Record r = parse(
      "v=DMARC1;p=quarantine; sp=none ; pct=20; adkim=s; aspf=s; rua=mailto:a@example.com,mailto:b@example.com!10m; "
      "ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600; future=x;");
  EXPECT_EQ(r.p, Policy::Quarantine);
  EXPECT_EQ(r.sp, Policy::None);
  EXPECT_EQ(r.pct, 20u);
  EXPECT_EQ(r.adkim, Alignment::Strict);
  EXPECT_EQ(r.aspf, Alignment::Strict);
  EXPECT_EQ(r.rua, (std::vector<std::string>{"mailto:a@example.com", "mailto:b@example.com!10m"}));
  EXPECT_EQ(r.ruf, std::vector<std::string>{"mailto:f@example.com"});
  EXPECT_EQ(r.fo, "1:d");
  EXPECT_EQ(r.ri, 3600u);
}

TEST(DmarcRecord, PolicyValuesAndTagNamesAreCaseInsensitive) {
  EXPECT_EQ(parse("v=DMARC1; P=Reject").p, Policy::Reject);
  EXPECT_EQ(parse("v = DMARC1 ; p = none").p, Policy::None);
}

TEST(DmarcRecord, VersionMustComeFirstAndBeExact) {
  EXPECT_TRUE(invalid("p=reject; v=DMARC1"));
  EXPECT_TRUE(invalid("v=DMARC2; p=reject"));
  EXPECT_TRUE(invalid("v=dmarc1; p=reject"));
  EXPECT_TRUE(invalid("v=spf1 -all"));
  EXPECT_TRUE(invalid("v=DMARC1x; p=reject"));
  EXPECT_FALSE(is_dmarc_record("v=spf1 -all"));
  EXPECT_TRUE(is_dmarc_record("v=DMARC1"));
}

TEST(DmarcRecord, SyntaxErrorsMakeTheRecordInvalid) {
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; pct=101"));
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; pct=-1"));
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; pct=abc"));
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; adkim=x"));
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; aspf=relaxed"));
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; garbage"));
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; p=none"));  // repeated tag
  EXPECT_EQ(parse("v=DMARC1; p=reject; pct=0").pct, 0u);
  EXPECT_EQ(parse("v=DMARC1; p=reject; ri=soon").ri, 86400u);  // ri is lenient
}

TEST(DmarcRecord, WithoutValidPolicyOnlyARuaMakesItPolicyNone) {
  EXPECT_TRUE(invalid("v=DMARC1"));
  EXPECT_TRUE(invalid("v=DMARC1; p=block"));
  EXPECT_TRUE(invalid("v=DMARC1; p=reject; sp=maybe"));
  Record r = parse("v=DMARC1; p=block; rua=mailto:r@example.com");
  EXPECT_EQ(r.p, Policy::None);
  EXPECT_TRUE(r.p_defaulted);
  Record s = parse("v=DMARC1; p=reject; sp=maybe; rua=mailto:r@example.com");
  EXPECT_EQ(s.p, Policy::None);
  EXPECT_EQ(s.subdomain_policy(), Policy::None);
  EXPECT_TRUE(invalid("v=DMARC1; rua=not-a-uri"));
}

// ---- organisational domain and alignment ----

TEST(DmarcOrgDomain, FollowsThePublicSuffixList) {
  EXPECT_EQ(psl().organizational_domain("a.b.example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl().organizational_domain("example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl().organizational_domain("mail.example.com"), "example.com");
  EXPECT_EQ(psl().organizational_domain("example.com"), "example.com");
  EXPECT_EQ(psl().organizational_domain("co.uk"), "co.uk");  // a public suffix itself
  EXPECT_EQ(psl().organizational_domain("com"), "com");
}

TEST(DmarcOrgDomain, UnlistedTldUsesTheDefaultRule) {
  EXPECT_EQ(psl().organizational_domain("x.y.unlistedtld"), "y.unlistedtld");
  EXPECT_EQ(psl().organizational_domain("mail.example.test"), "example.test");
  EXPECT_EQ(psl().organizational_domain("y.unlistedtld"), "y.unlistedtld");
}

TEST(DmarcOrgDomain, MissingOrEmptyListIsAnError) {
  std::string err;
  EXPECT_FALSE(PublicSuffixList::load("/nonexistent/psl.dat", err));
  EXPECT_NE(err.find("/nonexistent/psl.dat"), std::string::npos);
  err.clear();
  EXPECT_FALSE(PublicSuffixList::load("/dev/null", err));
  EXPECT_FALSE(err.empty());
}

TEST(DmarcAlignment, StrictNeedsTheSameDomain) {
  EXPECT_TRUE(aligned("example.com", "example.com", Alignment::Strict, psl()));
  EXPECT_TRUE(aligned("Example.COM", "example.com", Alignment::Strict, psl()));
  EXPECT_FALSE(aligned("mail.example.com", "example.com", Alignment::Strict, psl()));
}

TEST(DmarcAlignment, RelaxedNeedsTheSameOrganisationalDomain) {
  EXPECT_TRUE(aligned("mail.example.com", "news.example.com", Alignment::Relaxed, psl()));
  EXPECT_TRUE(aligned("a.example.co.uk", "example.co.uk", Alignment::Relaxed, psl()));
  EXPECT_FALSE(aligned("example.co.uk", "other.co.uk", Alignment::Relaxed, psl()));
  EXPECT_FALSE(aligned("example.com", "example.net", Alignment::Relaxed, psl()));
  EXPECT_FALSE(aligned("", "example.net", Alignment::Relaxed, psl()));
  EXPECT_TRUE(aligned("a.x.unlistedtld", "b.x.unlistedtld", Alignment::Relaxed, psl()));
  EXPECT_FALSE(aligned("x.unlistedtld", "y.unlistedtld", Alignment::Relaxed, psl()));
}

// ---- discovery ----

struct FakeDns {
  std::map<std::string, DnsAnswer> table;
  std::vector<std::string> asked;
  void txt(const std::string& name, std::vector<std::string> records) {
    auto& a = table[name];
    a.status = DnsStatus::Ok;
    a.txt = std::move(records);
  }
  void status(const std::string& name, DnsStatus s) { table[name].status = s; }
  Lookup lookup() {
    return [this](std::string name, DnsType t) -> asio::awaitable<DnsAnswer> {
      EXPECT_EQ(t, DnsType::TXT);
      asked.push_back(name);
      auto it = table.find(name);
      if (it != table.end()) co_return it->second;
      DnsAnswer none;
      none.status = DnsStatus::NxDomain;
      co_return none;
    };
  }
};

Discovery run(FakeDns& dns, const std::string& from) {
  asio::io_context io;
  auto f = asio::co_spawn(io, discover(from, psl().organizational_domain(from), dns.lookup()), asio::use_future);
  io.run();
  return f.get();
}

TEST(DmarcDiscovery, FromDomainRecordFirst) {
  FakeDns dns;
  dns.txt("_dmarc.example.com", {"v=spf1 -all", "v=DMARC1; p=reject"});
  Discovery d = run(dns, "example.com");
  EXPECT_EQ(d.status, Discovery::Status::Found);
  EXPECT_EQ(d.policy_domain, "example.com");
  EXPECT_FALSE(d.organizational);
  EXPECT_EQ(d.record.p, Policy::Reject);
  EXPECT_EQ(dns.asked, std::vector<std::string>{"_dmarc.example.com"});
}

TEST(DmarcDiscovery, SubdomainFallsBackToTheOrganisationalDomain) {
  FakeDns dns;
  dns.txt("_dmarc.example.com", {"v=DMARC1; p=reject; sp=quarantine"});
  dns.txt("_dmarc.mail.example.com", {"some other text"});
  Discovery d = run(dns, "mail.example.com");
  EXPECT_EQ(d.status, Discovery::Status::Found);
  EXPECT_EQ(d.policy_domain, "example.com");
  EXPECT_TRUE(d.organizational);
  EXPECT_EQ(dns.asked, (std::vector<std::string>{"_dmarc.mail.example.com", "_dmarc.example.com"}));
}

TEST(DmarcDiscovery, NoRecordAnywhereIsNone) {
  FakeDns dns;
  dns.status("_dmarc.example.com", DnsStatus::NoData);
  EXPECT_EQ(run(dns, "a.example.com").status, Discovery::Status::None);
  EXPECT_EQ(run(dns, "example.com").status, Discovery::Status::None);
}

TEST(DmarcDiscovery, SeveralRecordsAreNoneWithoutFallback) {
  FakeDns dns;
  dns.txt("_dmarc.a.example.com", {"v=DMARC1; p=none", "v=DMARC1; p=reject"});
  dns.txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  Discovery d = run(dns, "a.example.com");
  EXPECT_EQ(d.status, Discovery::Status::None);
  EXPECT_NE(d.detail.find("2 DMARC records"), std::string::npos);
  EXPECT_EQ(dns.asked.size(), 1u);
}

TEST(DmarcDiscovery, TimeoutOrServfailIsTemperrorNeverNone) {
  for (DnsStatus s : {DnsStatus::Timeout, DnsStatus::Failure}) {
    FakeDns dns;
    dns.status("_dmarc.example.com", s);
    EXPECT_EQ(run(dns, "example.com").status, Discovery::Status::TempError);
    FakeDns sub;
    sub.status("_dmarc.example.com", s);  // the organisational level fails
    EXPECT_EQ(run(sub, "a.example.com").status, Discovery::Status::TempError);
  }
}

TEST(DmarcDiscovery, InvalidRecordIsPermerror) {
  FakeDns dns;
  dns.txt("_dmarc.example.com", {"v=DMARC1; p=reject; pct=500"});
  EXPECT_EQ(run(dns, "example.com").status, Discovery::Status::PermError);
}

// ---- evaluation ----

Discovery found(const std::string& txt, const std::string& domain = "example.com", bool org = false) {
  Discovery d;
  d.status = Discovery::Status::Found;
  d.record = parse(txt);
  d.policy_domain = domain;
  d.organizational = org;
  return d;
}

Inputs inputs(const std::string& from, std::optional<SpfFacts> spf, std::vector<DkimFacts> dkim = {}) {
  Inputs in;
  in.from_domain = from;
  in.spf = std::move(spf);
  in.dkim = std::move(dkim);
  return in;
}

SpfFacts spf(AuthResult r, const std::string& domain) { return {r, domain, false}; }
DkimFacts dkim(AuthResult r, const std::string& domain) {
  DkimFacts f;
  f.result = r;
  f.domain = domain;
  return f;
}

TEST(DmarcEvaluate, AlignedSpfPassPasses) {
  auto e = evaluate(found("v=DMARC1; p=reject"), inputs("example.com", spf(AuthResult::Pass, "bounce.example.com")), psl(), 0);
  EXPECT_EQ(e.result, Result::Pass);
  EXPECT_TRUE(e.spf_aligned);
  EXPECT_EQ(e.disposition, Policy::None);
}

TEST(DmarcEvaluate, StrictSpfAlignmentNeedsTheSameDomain) {
  auto e = evaluate(found("v=DMARC1; p=reject; aspf=s"), inputs("example.com", spf(AuthResult::Pass, "bounce.example.com")),
                    psl(), 0);
  EXPECT_EQ(e.result, Result::Fail);
  EXPECT_EQ(e.disposition, Policy::Reject);
}

TEST(DmarcEvaluate, UnalignedSpfPassFails) {
  auto e = evaluate(found("v=DMARC1; p=reject"), inputs("example.com", spf(AuthResult::Pass, "evil.test")), psl(), 0);
  EXPECT_EQ(e.result, Result::Fail);
  EXPECT_FALSE(e.spf_aligned);
}

// RFC 7489 §3.1.2, §4.1: for the null sender the SPF-authenticated identifier is the HELO name
// (postmaster@HELO, RFC 7208 §2.4); for any other sender a HELO result never counts.
TEST(DmarcEvaluate, HeloIdentityCountsForTheNullSenderOnly) {
  SpfFacts helo{AuthResult::Pass, "mail.example.com", true};
  Inputs bounce = inputs("example.com", helo);
  bounce.null_sender = true;
  auto e = evaluate(found("v=DMARC1; p=reject"), bounce, psl(), 0);
  EXPECT_EQ(e.result, Result::Pass);
  EXPECT_TRUE(e.spf_aligned);
  EXPECT_EQ(e.detail, "aligned SPF pass (HELO identity)");
  // strict alignment needs the HELO name to be the From domain itself
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject; aspf=s"), bounce, psl(), 0).result, Result::Fail);
  // a HELO name of another organisation is not aligned
  Inputs other = inputs("example.com", SpfFacts{AuthResult::Pass, "mail.other.test", true});
  other.null_sender = true;
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject"), other, psl(), 0).result, Result::Fail);
  // not the null sender (e.g. MAIL FROM:<postmaster> without a domain): the HELO result never counts
  auto n = evaluate(found("v=DMARC1; p=reject"), inputs("example.com", helo), psl(), 0);
  EXPECT_EQ(n.result, Result::Fail);
  EXPECT_FALSE(n.spf_aligned);
  // the null sender with a MAIL FROM result (impossible from the spf filter): does not count either
  Inputs odd = inputs("example.com", spf(AuthResult::Pass, "example.com"));
  odd.null_sender = true;
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject"), odd, psl(), 0).result, Result::Fail);
}

TEST(DmarcEvaluate, AlignedHeloTemperrorOfTheNullSenderIsTemperror) {
  Inputs bounce = inputs("example.com", SpfFacts{AuthResult::TempError, "example.com", true});
  bounce.null_sender = true;
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject"), bounce, psl(), 0).result, Result::TempError);
  bounce.null_sender = false;
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject"), bounce, psl(), 0).result, Result::Fail);
}

TEST(DmarcEvaluate, AnyAlignedDkimPassPasses) {
  auto e = evaluate(found("v=DMARC1; p=reject; adkim=s"),
                    inputs("example.com", std::nullopt,
                           {dkim(AuthResult::Pass, "other.test"), dkim(AuthResult::Fail, "example.com"),
                            dkim(AuthResult::Pass, "example.com")}),
                    psl(), 0);
  EXPECT_EQ(e.result, Result::Pass);
  EXPECT_TRUE(e.dkim_aligned);
  EXPECT_FALSE(e.spf_aligned);
}

TEST(DmarcEvaluate, StrictDkimAlignmentRefusesAParentDomain) {
  auto e = evaluate(found("v=DMARC1; p=reject; adkim=s", "example.com", true),
                    inputs("news.example.com", std::nullopt, {dkim(AuthResult::Pass, "example.com")}), psl(), 0);
  EXPECT_EQ(e.result, Result::Fail);
}

TEST(DmarcEvaluate, SubdomainUnderOrganisationalRecordGetsSp) {
  auto e = evaluate(found("v=DMARC1; p=reject; sp=quarantine", "example.com", true),
                    inputs("news.example.com", spf(AuthResult::Fail, "news.example.com")), psl(), 0);
  EXPECT_EQ(e.result, Result::Fail);
  EXPECT_EQ(e.requested, Policy::Quarantine);
  EXPECT_EQ(e.disposition, Policy::Quarantine);
  // the record found at the From domain itself: p applies
  auto own = evaluate(found("v=DMARC1; p=reject; sp=none", "news.example.com"),
                      inputs("news.example.com", spf(AuthResult::Fail, "news.example.com")), psl(), 0);
  EXPECT_EQ(own.disposition, Policy::Reject);
  // no sp=: subdomains inherit p
  auto inherit = evaluate(found("v=DMARC1; p=reject", "example.com", true),
                          inputs("news.example.com", spf(AuthResult::Fail, "news.example.com")), psl(), 0);
  EXPECT_EQ(inherit.disposition, Policy::Reject);
}

TEST(DmarcEvaluate, PctZeroAppliesTheNextWeakerPolicy) {
  auto in = inputs("example.com", spf(AuthResult::Fail, "example.com"));
  auto r = evaluate(found("v=DMARC1; p=reject; pct=0"), in, psl(), 0);
  EXPECT_EQ(r.result, Result::Fail);
  EXPECT_EQ(r.disposition, Policy::Quarantine);
  EXPECT_TRUE(r.sampled_out);
  auto q = evaluate(found("v=DMARC1; p=quarantine; pct=0"), in, psl(), 0);
  EXPECT_EQ(q.disposition, Policy::None);
}

TEST(DmarcEvaluate, PctSamplesWithTheDraw) {
  auto in = inputs("example.com", spf(AuthResult::Fail, "example.com"));
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject; pct=30"), in, psl(), 29).disposition, Policy::Reject);
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject; pct=30"), in, psl(), 30).disposition, Policy::Quarantine);
  EXPECT_EQ(evaluate(found("v=DMARC1; p=reject; pct=100"), in, psl(), 99).disposition, Policy::Reject);
}

TEST(DmarcEvaluate, AlignedTemperrorIsNeverAFail) {
  auto d = found("v=DMARC1; p=reject");
  EXPECT_EQ(evaluate(d, inputs("example.com", spf(AuthResult::TempError, "example.com")), psl(), 0).result, Result::TempError);
  EXPECT_EQ(evaluate(d, inputs("example.com", spf(AuthResult::Fail, "evil.test"), {dkim(AuthResult::TempError, "mail.example.com")}),
                     psl(), 0)
                .result,
            Result::TempError);
  // an unaligned temperror does not help the sender
  EXPECT_EQ(evaluate(d, inputs("example.com", spf(AuthResult::TempError, "evil.test"), {dkim(AuthResult::TempError, "evil.test")}),
                     psl(), 0)
                .result,
            Result::Fail);
  // an aligned pass still wins over a temperror
  EXPECT_EQ(evaluate(d, inputs("example.com", spf(AuthResult::TempError, "example.com"), {dkim(AuthResult::Pass, "example.com")}),
                     psl(), 0)
                .result,
            Result::Pass);
}

TEST(DmarcEvaluate, UnsetResultsAreNoneAndNoSignatures) {
  Inputs in;
  in.from_domain = "example.com";
  auto e = evaluate(found("v=DMARC1; p=quarantine"), in, psl(), 0);
  EXPECT_EQ(e.result, Result::Fail);
  EXPECT_EQ(e.disposition, Policy::Quarantine);
}

TEST(DmarcEvaluate, DiscoveryOutcomesPassThrough) {
  Discovery t;
  t.status = Discovery::Status::TempError;
  EXPECT_EQ(evaluate(t, inputs("example.com", std::nullopt), psl(), 0).result, Result::TempError);
  Discovery n;
  EXPECT_EQ(evaluate(n, inputs("example.com", std::nullopt), psl(), 0).result, Result::None);
  Discovery p;
  p.status = Discovery::Status::PermError;
  EXPECT_EQ(evaluate(p, inputs("example.com", std::nullopt), psl(), 0).result, Result::PermError);
}

// ---- From ----

FromDomain from(const std::string& headers) { return from_domain(headers + "\n\nbody\nFrom: body@not.header\n"); }

TEST(DmarcFrom, OneMailboxWithDisplayNameAndComment) {
  auto f = from("Subject: x\nFrom: \"Doe, John\" (the boss) <John@Example.COM> (work)\nTo: a@b.test");
  EXPECT_EQ(f.status, FromDomain::Status::Ok);
  EXPECT_EQ(f.domain, "example.com");
  auto plain = from("from:user@mail.example.org");
  EXPECT_EQ(plain.status, FromDomain::Status::Ok);
  EXPECT_EQ(plain.domain, "mail.example.org");
}

TEST(DmarcFrom, FoldedFieldAndCrlf) {
  auto f = from_domain("Subject: x\r\nFrom: Someone\r\n  <a@example.net>\r\n\r\nbody\r\n");
  EXPECT_EQ(f.status, FromDomain::Status::Ok);
  EXPECT_EQ(f.domain, "example.net");
}

TEST(DmarcFrom, SeveralFromFieldsNeverPass) {
  EXPECT_EQ(from("From: a@example.com\nFrom: b@evil.test").status, FromDomain::Status::MultipleFields);
  EXPECT_EQ(from("FROM: a@example.com\nSubject: s\nfrom: a@example.com").status, FromDomain::Status::MultipleFields);
}

TEST(DmarcFrom, SeveralAddressesNeverPass) {
  EXPECT_EQ(from("From: a@example.com, b@evil.test").status, FromDomain::Status::MultipleAddresses);
  EXPECT_EQ(from("From: \"A\" <a@example.com>, \"B\" <b@example.com>").status, FromDomain::Status::MultipleAddresses);
  EXPECT_EQ(from("From: team: a@example.com, b@evil.test;").status, FromDomain::Status::MultipleAddresses);
}

TEST(DmarcFrom, MissingOrUnusableFrom) {
  EXPECT_EQ(from("Subject: no from").status, FromDomain::Status::Missing);
  EXPECT_EQ(from("From: undisclosed:;").status, FromDomain::Status::Invalid);
  EXPECT_EQ(from("From: nobody").status, FromDomain::Status::Invalid);
  EXPECT_EQ(from("From: a@localhost").status, FromDomain::Status::Invalid);
  // a From in the body is not a header field
  EXPECT_EQ(from_domain("Subject: x\n\nFrom: a@example.com\n").status, FromDomain::Status::Missing);
}

// ---- decision, header, report line ----

Judgement judged(const std::string& record, AuthResult spf_result, bool org = false, unsigned draw = 0,
                 const std::string& from_d = "example.com") {
  Judgement j;
  j.from.status = FromDomain::Status::Ok;
  j.from.domain = from_d;
  j.discovery = found(record, "example.com", org);
  j.inputs = inputs(from_d, spf(spf_result, from_d));
  j.eval = evaluate(j.discovery, j.inputs, psl(), draw);
  return j;
}

TEST(DmarcDecide, RejectFailIsRefused550) {
  Settings s;
  auto j = judged("v=DMARC1; p=reject", AuthResult::Fail);
  auto d = decide(s, j);
  EXPECT_EQ(d.action, filters::Action::Reject);
  ASSERT_TRUE(d.reply);
  EXPECT_EQ(d.reply->code, 550);
  EXPECT_EQ(d.reply->enhanced, "5.7.1");
  EXPECT_NE(d.reply->text.find("example.com"), std::string::npos);
  auto v = verdict_for("mx.test", j, d);
  EXPECT_EQ(v.add_headers.at(0).value, "mx.test; dmarc=fail (p=reject sp=reject dis=REJECT) header.from=example.com");
}

TEST(DmarcDecide, QuarantineScoresAndTags) {
  Settings s;
  s.score_quarantine = 7;
  auto j = judged("v=DMARC1; p=quarantine", AuthResult::Fail);
  auto v = verdict_for("mx.test", j, decide(s, j));
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_EQ(v.score, 7);
  EXPECT_EQ(v.tags, std::vector<std::string>{"DMARC_QUARANTINE=7"});
}

TEST(DmarcDecide, PassAndNoneAreRecordedOnly) {
  Settings s;
  auto pass = judged("v=DMARC1; p=reject", AuthResult::Pass);
  auto v = verdict_for("mx.test", pass, decide(s, pass));
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_EQ(v.score, 0);
  EXPECT_EQ(v.add_headers.at(0).value, "mx.test; dmarc=pass (p=reject sp=reject dis=NONE) header.from=example.com");
  auto none = judged("v=DMARC1; p=none", AuthResult::Fail);
  EXPECT_EQ(decide(s, none).action, filters::Action::Continue);
  EXPECT_EQ(decide(s, none).score, 0);
}

TEST(DmarcDecide, OverridesNeverRefuse) {
  auto j = judged("v=DMARC1; p=reject", AuthResult::Fail);
  Settings monitor;
  monitor.monitor_only = true;
  auto d = decide(monitor, j);
  EXPECT_EQ(d.action, filters::Action::Continue);
  EXPECT_EQ(d.wanted, Policy::Reject);
  EXPECT_EQ(d.applied, Policy::None);
  EXPECT_EQ(d.override_reason, "monitor_only");
  EXPECT_EQ(verdict_for("mx.test", j, d).add_headers.at(0).value,
            "mx.test; dmarc=fail (p=reject sp=reject dis=NONE policy.override=monitor_only) header.from=example.com");
  Settings s;
  auto fwd = j;
  fwd.trusted_client = true;
  EXPECT_EQ(decide(s, fwd).action, filters::Action::Continue);
  EXPECT_EQ(decide(s, fwd).override_reason, "trusted_forwarder");
  auto local = j;
  local.override_domain = true;
  EXPECT_EQ(decide(s, local).override_reason, "local_policy");
  auto q = judged("v=DMARC1; p=quarantine", AuthResult::Fail);
  q.override_domain = true;
  EXPECT_EQ(decide(s, q).score, 0);
}

TEST(DmarcDecide, PctZeroIsRecordedAsSampledOut) {
  Settings s;
  auto j = judged("v=DMARC1; p=reject; pct=0", AuthResult::Fail);
  auto d = decide(s, j);
  EXPECT_EQ(d.action, filters::Action::Continue);
  EXPECT_EQ(d.applied, Policy::Quarantine);
  EXPECT_EQ(d.override_reason, "sampled_out");
  EXPECT_GT(d.score, 0);
}

TEST(DmarcDecide, TemperrorIsNeverA5xx) {
  auto j = judged("v=DMARC1; p=reject", AuthResult::TempError);
  ASSERT_EQ(j.eval.result, Result::TempError);
  Settings s;
  EXPECT_EQ(decide(s, j).action, filters::Action::Continue);
  s.on_temperror = OnTempError::TempFail;
  auto d = decide(s, j);
  EXPECT_EQ(d.action, filters::Action::TempFail);
  ASSERT_TRUE(d.reply);
  EXPECT_EQ(d.reply->code, 451);
}

TEST(DmarcDecide, MultipleFromIsRefusedUnlessAllowed) {
  Judgement j;
  j.from.status = FromDomain::Status::MultipleAddresses;
  j.from.detail = "2 addresses in From";
  j.eval.result = Result::PermError;
  j.eval.detail = j.from.detail;
  Settings s;
  auto d = decide(s, j);
  EXPECT_EQ(d.action, filters::Action::Reject);
  EXPECT_EQ(d.reply->code, 550);
  EXPECT_NE(d.reply->text.find("multiple From"), std::string::npos);
  s.reject_multiple_from = false;
  EXPECT_EQ(decide(s, j).action, filters::Action::Continue);
  EXPECT_EQ(verdict_for("mx.test", j, decide(s, j)).add_headers.at(0).value, "mx.test; dmarc=permerror (2 addresses in From)");
}

// (every form of the authserv-id: tests/unit/filters/auth_results_test.cc)
TEST(DmarcHeader, OwnedAuthenticationResultsMatchOurIdOnly) {
  EXPECT_TRUE(filters::carries_authserv_id("mx.test; dmarc=pass", "mx.test"));
  EXPECT_TRUE(filters::carries_authserv_id(" MX.TEST 1; dmarc=pass", "mx.test"));
  EXPECT_TRUE(filters::carries_authserv_id("(x) mx.test; dmarc=pass", "mx.test"));
  EXPECT_TRUE(filters::carries_authserv_id("\"mx.test\"; dmarc=pass", "mx.test"));
  EXPECT_FALSE(filters::carries_authserv_id("other.test; dmarc=pass header.from=mx.test", "mx.test"));
  EXPECT_FALSE(filters::carries_authserv_id("mx.test.evil; dmarc=pass", "mx.test"));
}

TEST(DmarcDecide, OverrideDomainsListMatchesSubdomains) {
  EXPECT_TRUE(domain_listed("example.com", {"example.com"}));
  EXPECT_TRUE(domain_listed("a.Example.com", {"example.com"}));
  EXPECT_FALSE(domain_listed("badexample.com", {"example.com"}));
}

TEST(DmarcReport, FixedKeyValueLine) {
  Settings s;
  auto j = judged("v=DMARC1; p=reject; pct=50; aspf=s", AuthResult::Fail, false, 10);
  j.inputs.dkim = std::vector<DkimFacts>{dkim(AuthResult::Fail, "example.com"), dkim(AuthResult::Pass, "other.test")};
  auto d = decide(s, j);
  std::string line = report_fields("S1", *core::IpAddress::parse("192.0.2.7"), j, d);
  EXPECT_EQ(line,
            "id=S1 source_ip=192.0.2.7 header_from=example.com policy_domain=example.com p=reject sp=reject pct=50 "
            "adkim=r aspf=s disposition=reject dmarc=fail spf=fail spf_domain=example.com spf_scope=mfrom spf_aligned=no "
            "dkim=example.com:fail,other.test:pass dkim_aligned=no override=- detail=\"no aligned SPF or DKIM pass\"");
}

// ---- the filter's check (real c-ares against a DNS address nothing answers on) ----

filters::Verdict check(bool authenticated) {
  Settings s;
  s.dns_servers = {"127.0.0.1:9"};
  s.query_timeout = std::chrono::duration<double>(0.2);
  s.tries = 1;
  std::string err;
  auto list = PublicSuffixList::load("/usr/share/publicsuffix/public_suffix_list.dat", err);
  auto filter = std::make_shared<filters::DmarcFilter>(s, "mx.test", list);
  auto ctx = std::make_shared<filters::Context>();
  ctx->session_id = "T1";
  ctx->client_ip = *core::IpAddress::parse("192.0.2.9");
  ctx->authenticated = authenticated;
  ctx->message = std::make_shared<const std::string>("From: <ceo@reject.example.com>\nSubject: s\n\nbody\n");
  ctx->auth = std::make_shared<filters::SenderAuth>();
  ctx->auth->set_spf({AuthResult::Fail, "reject.example.com", false});
  ctx->cancel = std::make_shared<filters::Cancel>();
  asio::io_context io;
  auto f = asio::co_spawn(io, filter->check(filters::Phase::Data, ctx), asio::use_future);
  io.run();
  return f.get();
}

TEST(DmarcFilterCheck, AuthenticatedSubmissionIsNeverJudged) {
  auto v = check(true);
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_TRUE(v.add_headers.empty());
}

TEST(DmarcFilterCheck, DnsFailureIsTemperrorAndRelayed) {
  auto v = check(false);
  EXPECT_EQ(v.action, filters::Action::Continue);
  ASSERT_EQ(v.add_headers.size(), 1u);
  EXPECT_EQ(v.add_headers[0].value.rfind("mx.test; dmarc=temperror (", 0), 0u) << v.add_headers[0].value;
  EXPECT_NE(v.add_headers[0].value.find("header.from=reject.example.com"), std::string::npos);
}

}  // namespace
