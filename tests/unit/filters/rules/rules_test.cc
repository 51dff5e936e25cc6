// Unit tests for the rules filter (filters::Rules) and its GMime text extraction: every kind of
// rule, reject vs score, summed scores and tags, body_limit, the worker pool (busy, cancelled),
// and patterns that would backtrack catastrophically in a backtracking engine (RE2 is linear).
#include "filters/rules/rules.h"

#include <gtest/gtest.h>

#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <thread>

#include "filters/mime_text.h"
#include "tests/unit/net/io_thread.h"

namespace filters {
namespace {

namespace asio = boost::asio;

using testing_support::IoThread;

rules::Rule rule(std::string name, std::string kind, std::string pattern, double score = 0,
                  std::string action = "score", std::string header = "") {
  rules::Rule r;
  r.name = std::move(name);
  static const std::map<std::string, filters::rules::Kind> kinds = {{"helo", filters::rules::Kind::Helo},
      {"sender", filters::rules::Kind::Sender}, {"header", filters::rules::Kind::Header}, {"body", filters::rules::Kind::Body}};
  r.kind = kinds.at(kind);
  r.pattern = std::move(pattern);
  r.score = score;
  r.action = action == "reject" ? filters::rules::Action::Reject : filters::rules::Action::Score;
  r.header = std::move(header);
  return r;
}

core::Cidr cidr(const char* text) {
  auto c = core::Cidr::parse(text);
  EXPECT_TRUE(c) << text;
  return c.value_or(core::Cidr{});
}

// One filter with its own pool and I/O thread; check() runs a phase and waits for its verdict.
class Fixture {
 public:
  explicit Fixture(rules::Settings cfg, size_t queue = 16)
      : pool_(std::make_shared<net::BlockingPool>("rules-test", 2, queue)) {
    std::string err;
    filter_ = Rules::build(cfg, pool_, err);
    EXPECT_TRUE(filter_) << err;
  }
  Rules& filter() { return *filter_; }

  Verdict check(Phase p, Context c) {
    if (!c.cancel) c.cancel = std::make_shared<Cancel>();
    auto ctx = std::make_shared<const Context>(std::move(c));
    auto promise = std::make_shared<std::promise<Verdict>>();
    auto result = promise->get_future();
    asio::co_spawn(io_.io(), filter_->check(p, ctx), [promise](std::exception_ptr e, Verdict v) {
      if (e) promise->set_exception(e);
      else promise->set_value(std::move(v));
    });
    return result.get();
  }
  Verdict connect(const std::string& ip) {
    Context c;
    c.client_ip = core::IpAddress::parse(ip).value();
    return check(Phase::Connect, std::move(c));
  }
  Verdict helo(const std::string& name) {
    Context c;
    c.helo = name;
    return check(Phase::Helo, std::move(c));
  }
  Verdict sender(smtp::Address a) {
    Context c;
    c.sender = std::move(a);
    return check(Phase::MailFrom, std::move(c));
  }
  Verdict data(const std::string& message) {
    Context c;
    c.message = std::make_shared<const std::string>(message);
    return check(Phase::Data, std::move(c));
  }

 private:
  std::shared_ptr<net::BlockingPool> pool_;
  IoThread io_;  // after the pool: stopped first
  std::shared_ptr<Rules> filter_;
};

filters::rules::Settings with_rules(std::vector<filters::rules::Rule> rules, size_t body_limit = 1048576) {
  filters::rules::Settings cfg;
  cfg.rules = std::move(rules);
  cfg.body_limit = body_limit;
  return cfg;
}

void expect_rule_reject(const Verdict& v, const std::string& rule_name) {
  EXPECT_EQ(v.action, Action::Reject) << v.reason;
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 554);
  EXPECT_EQ(v.reply->enhanced, "5.7.1");
  EXPECT_NE(v.reply->text.find(rule_name), std::string::npos) << v.reply->text;
}

void expect_clean(const Verdict& v) {
  EXPECT_EQ(v.action, Action::Continue) << v.reason;
  EXPECT_EQ(v.score, 0);
  EXPECT_TRUE(v.tags.empty());
  EXPECT_FALSE(v.failed);
}

const std::string kPlain = "From: a@example.net\nTo: b@example.org\nSubject: hello\n\nnothing to see\n";

// ---------------------------------------------------------------------------------------------
TEST(Rules, ClientBlockRejectsIpv4AndIpv6RangesAtConnect) {
  rules::Settings cfg;
  cfg.client_block = {cidr("192.0.2.0/24"), cidr("2001:db8::/32"), cidr("198.51.100.7")};
  Fixture f(cfg);
  EXPECT_TRUE(f.filter().wants(Phase::Connect));
  for (std::string ip : {"192.0.2.77", "2001:db8::5", "198.51.100.7", "::ffff:192.0.2.1"}) {
    Verdict v = f.connect(ip);
    EXPECT_EQ(v.action, Action::Reject) << ip;
    ASSERT_TRUE(v.reply) << ip;
    EXPECT_EQ(v.reply->code, 554);
    EXPECT_EQ(v.reply->enhanced, "5.7.1");
    // the reply names the address as parsed: ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
    EXPECT_NE(v.reply->text.find("[" + core::IpAddress::parse(ip)->str() + "]"), std::string::npos) << v.reply->text;
  }
  for (std::string ip : {"192.0.3.1", "2001:db9::1", "198.51.100.8", "::1"}) expect_clean(f.connect(ip));
}

TEST(Rules, ClientAllowAcceptsSoTheChainAllowlistsAndBlockWins) {
  rules::Settings cfg;
  cfg.client_allow = {cidr("10.0.0.0/8"), cidr("::1"), cidr("fd00::/8")};
  cfg.client_block = {cidr("10.9.9.9")};
  Fixture f(cfg);
  EXPECT_TRUE(f.filter().skipped_when_allowlisted());
  EXPECT_EQ(f.connect("10.1.2.3").action, Action::Accept);
  EXPECT_EQ(f.connect("::1").action, Action::Accept);
  EXPECT_EQ(f.connect("fd12:3456::1").action, Action::Accept);
  EXPECT_EQ(f.connect("10.9.9.9").action, Action::Reject);  // block is checked first
  expect_clean(f.connect("11.0.0.1"));
  expect_clean(f.connect("fe80::1"));
}

TEST(Rules, WantsOnlyThePhasesItHasRulesFor) {
  Fixture none(rules::Settings{});
  for (Phase p : {Phase::Connect, Phase::Helo, Phase::MailFrom, Phase::RcptTo, Phase::Data})
    EXPECT_FALSE(none.filter().wants(p));
  Fixture some(with_rules({rule("h", "helo", "x"), rule("b", "body", "y")}));
  EXPECT_FALSE(some.filter().wants(Phase::Connect));
  EXPECT_TRUE(some.filter().wants(Phase::Helo));
  EXPECT_FALSE(some.filter().wants(Phase::MailFrom));
  EXPECT_FALSE(some.filter().wants(Phase::RcptTo));
  EXPECT_TRUE(some.filter().wants(Phase::Data));
}

TEST(Rules, HeloRuleRejectsMatchingNameOnly) {
  Fixture f(with_rules({rule("dynamic_helo", "helo", R"((?i)^dsl-\d+\.pool\.)", 0, "reject")}));
  expect_rule_reject(f.helo("DSL-1234.pool.example.net"), "dynamic_helo");
  expect_clean(f.helo("mail.example.net"));
}

TEST(Rules, SenderRuleSeesTheEnvelopeAddressAndNullSenderAsEmpty) {
  Fixture f(with_rules({rule("bad_sender", "sender", R"(@spam\.example$)", 0, "reject"),
                        rule("null_sender", "sender", "^$", 1.5)}));
  expect_rule_reject(f.sender({"win", "spam.example"}), "bad_sender");
  expect_clean(f.sender({"alice", "example.net"}));
  Verdict v = f.sender({});
  EXPECT_EQ(v.action, Action::Continue);
  EXPECT_EQ(v.score, 1.5);
  EXPECT_EQ(v.tags, std::vector<std::string>{"RULE_NULL_SENDER=1.5"});
}

TEST(Rules, HeaderRuleMatchesUnfoldedValueOfAnyOccurrenceCaseInsensitiveName) {
  Fixture f(with_rules({rule("subject_casino", "header", R"((?i)casino\s+bonus now)", 0, "reject", "subject"),
                        rule("x_bad", "header", "^evil$", 0, "reject", "X-Tag")}));
  expect_rule_reject(f.data("From: a@example.net\nSubject: free casino\n\tbonus now\n\nbody\n"), "subject_casino");
  expect_rule_reject(f.data("x-tag: good\nX-TAG: evil\nSubject: hi\n\nbody\n"), "x_bad");
  expect_clean(f.data(kPlain));
  // a header-like line in the body is not a header
  expect_clean(f.data("Subject: hi\n\nX-Tag: evil\n"));
}

TEST(Rules, HeaderRuleSeesDecodedEncodedWords) {
  Fixture f(with_rules({rule("subject_casino", "header", "Casino Bonus für Sie", 0, "reject", "Subject")}));
  // "Casino Bonus für Sie" as a base64 UTF-8 encoded-word, then as a Q ISO-8859-1 one
  expect_rule_reject(f.data("Subject: =?UTF-8?B?Q2FzaW5vIEJvbnVzIGbDvHIgU2ll?=\n\nx\n"), "subject_casino");
  expect_rule_reject(f.data("Subject: =?ISO-8859-1?Q?Casino_Bonus_f=FCr_Sie?=\n\nx\n"), "subject_casino");
  expect_clean(f.data("Subject: =?UTF-8?B?aGVsbG8=?=\n\nx\n"));
}

TEST(Rules, BodyRuleMatchesDecodedBase64TextPart) {
  Fixture f(with_rules({rule("viagra", "body", "(?i)cheap viagra", 0, "reject")}));
  // base64 of "Buy CHEAP VIAGRA today\n": the raw message never contains the keyword
  std::string msg =
      "From: a@example.net\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
      "--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
      "QnV5IENIRUFQIFZJQUdSQSB0b2RheQo=\n--b1--\n";
  ASSERT_EQ(msg.find("VIAGRA"), std::string::npos);
  expect_rule_reject(f.data(msg), "viagra");
  expect_clean(f.data(kPlain));
}

TEST(Rules, BodyRuleMatchesQuotedPrintableConvertedToUtf8) {
  Fixture f(with_rules({rule("gewinn", "body", "Gewinnspiel für Sie", 0, "reject")}));
  // ISO-8859-1 "für" (=FC) and a soft line break inside the phrase
  std::string msg =
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: quoted-printable\n\nEin Gewinnspiel f=FCr=\n Sie\n";
  expect_rule_reject(f.data(msg), "gewinn");
}

TEST(Rules, BodyRulesIgnoreNonTextPartsAndSeeHtmlSource) {
  Fixture f(with_rules({rule("kw", "body", "keyword", 1), rule("html", "body", "<b>offer</b>", 2)}));
  std::string msg =
      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
      "--b\nContent-Type: text/html\n\n<p><b>offer</b></p>\n"
      "--b\nContent-Type: application/octet-stream\n\nkeyword\n--b--\n";
  Verdict v = f.data(msg);
  EXPECT_EQ(v.action, Action::Continue);
  EXPECT_EQ(v.score, 2);
  EXPECT_EQ(v.tags, std::vector<std::string>{"RULE_HTML=2"});
}

TEST(Rules, BodyLimitBoundsTheTextSearched) {
  std::string body(3000, 'x');
  std::string msg = "Subject: s\n\nstart " + body + " keyword\n";
  Fixture small(with_rules({rule("kw", "body", "keyword", 0, "reject"), rule("st", "body", "^start", 1)}, 2048));
  Verdict v = small.data(msg);
  EXPECT_EQ(v.action, Action::Continue);  // the keyword is past the limit
  EXPECT_EQ(v.score, 1);                  // the text before it is searched
  Fixture big(with_rules({rule("kw", "body", "keyword", 0, "reject")}, 4096));
  expect_rule_reject(big.data(msg), "kw");
}

TEST(Rules, ScoreRulesAddUpWithOneTagEach) {
  Fixture f(with_rules({rule("casino", "header", "(?i)casino", 2.5, "score", "Subject"),
                        rule("winner", "body", "(?i)winner", 1.5), rule("money", "body", "(?i)money", 1),
                        rule("absent", "body", "nomatch", 7)}));
  Verdict v = f.data("Subject: Casino night\n\nYou are a WINNER of money\n");
  EXPECT_EQ(v.action, Action::Continue);
  EXPECT_DOUBLE_EQ(v.score, 5);
  EXPECT_EQ(v.tags, (std::vector<std::string>{"RULE_CASINO=2.5", "RULE_WINNER=1.5", "RULE_MONEY=1"}));
}

TEST(Rules, RejectRuleWinsOverScoreRules) {
  Fixture f(with_rules({rule("s1", "body", "spam", 3), rule("kill", "body", "spam", 0, "reject"),
                        rule("h", "helo", "x", 1), rule("hk", "helo", "x", 0, "reject")}));
  Verdict v = f.data("Subject: s\n\nspam\n");
  expect_rule_reject(v, "kill");
  expect_rule_reject(f.helo("x.example"), "hk");
}

TEST(Rules, HeaderRejectSkipsTheBodyAndHeaderScoresAddToBodyScores) {
  Fixture f(with_rules({rule("hdr", "header", "a", 1, "score", "Subject"), rule("bdy", "body", "b", 2)}));
  Verdict v = f.data("Subject: a\n\nb\n");
  EXPECT_EQ(v.score, 3);
  EXPECT_EQ(v.tags, (std::vector<std::string>{"RULE_HDR=1", "RULE_BDY=2"}));
}

TEST(Rules, CatastrophicBacktrackingPatternsCompleteWithoutMatching) {
  std::string as(100 * 1024, 'a');
  std::string input = as + "b";
  Fixture f(with_rules({rule("nested", "body", "(a+)+$", 0, "reject"), rule("xx", "body", "(x+x+)+y", 0, "reject"),
                        rule("hnested", "helo", "(a+)+$", 0, "reject"),
                        rule("subj", "header", "(a+)+$", 0, "reject", "Subject")}));
  expect_clean(f.data("Subject: " + input + "\n\n" + input + "\n"));
  expect_clean(f.data("Subject: x\n\n" + std::string(100 * 1024, 'x') + "\n"));
  expect_clean(f.helo(input));
  // and a line that does end in a's still matches (the test would pass vacuously otherwise)
  expect_rule_reject(f.data("Subject: x\n\n" + as), "nested");
}

TEST(Rules, FullWorkerQueueAnswersFilterBusy) {
  Fixture f(with_rules({rule("b", "body", "x")}), /*queue=*/0);
  Verdict v = f.data(kPlain);
  EXPECT_EQ(v.action, Action::TempFail);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 451);
  EXPECT_EQ(v.reply->text, core::replies::filter_busy().text);
}

TEST(Rules, CancelledCheckSkipsTheBodyJob) {
  Fixture f(with_rules({rule("b", "body", "nothing", 0, "reject")}));
  Context c;
  c.message = std::make_shared<const std::string>(kPlain);
  auto cancel = std::make_shared<Cancel>();
  cancel->flag = true;
  c.cancel = cancel;
  expect_clean(f.check(Phase::Data, std::move(c)));
}

TEST(Rules, BadPatternFailsTheBuild) {
  std::string err;
  auto f = Rules::build(with_rules({rule("broken", "body", "(unclosed")}), nullptr, err);
  EXPECT_FALSE(f);
  EXPECT_NE(err.find("broken"), std::string::npos) << err;
}

// What one parse keeps of the headers / the text with only that limit set.
std::vector<mime::Header> headers(std::string_view message, size_t limit) {
  mime::Limits l;
  l.header_octets = limit;
  return mime::Message::parse(message, l).headers();
}
std::string body_text(std::string_view message, size_t limit) {
  mime::Limits l;
  l.text_octets = limit;
  return mime::Message::parse(message, l).text();
}

TEST(MimeText, HeadersAreUnfoldedDecodedAndCutAtTheLimit) {
  auto hs = headers("Subject: a\n b\nX-A: =?UTF-8?Q?caf=C3=A9?=\nContent-Type: text/plain\n\nbody: no\n", 1000);
  ASSERT_EQ(hs.size(), 3u);
  EXPECT_EQ(hs[0].name, "Subject");
  EXPECT_EQ(hs[0].value, "a b");
  EXPECT_EQ(hs[1].value, "café");
  EXPECT_EQ(hs[2].name, "Content-Type");
  EXPECT_EQ(headers("A: 1\nB: 2\n\n", 6).size(), 1u);  // only "A: 1\n" fits
  EXPECT_TRUE(headers("\nSubject: in the body\n", 1000).empty());
  EXPECT_EQ(headers("Subject: no body", 1000).at(0).value, "no body");
}

TEST(MimeText, BodyTextOfNestedMessageAndLimit) {
  std::string msg =
      "Content-Type: multipart/mixed; boundary=\"o\"\n\n--o\nContent-Type: text/plain\n\nfirst\n"
      "--o\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: text/plain\n\nsecond\n--o--\n";
  std::string t = body_text(msg, 1000);
  EXPECT_NE(t.find("first"), std::string::npos) << t;
  EXPECT_NE(t.find("second"), std::string::npos) << t;
  EXPECT_EQ(t.find("inner"), std::string::npos) << t;
  EXPECT_EQ(body_text(msg, 3), "fir");
}

TEST(MimeText, AHeaderCrossingTheLimitIsLeftOutWholeAndFoldedHeadersCount) {
  std::string msg = "A: 1\nB: 2\n  folded\nC: 3\n\nbody\n";
  EXPECT_EQ(headers(msg, 11).size(), 1u);   // "A: 1\nB: 2\n" fits, but B goes on
  EXPECT_EQ(headers(msg, 17).size(), 1u);
  EXPECT_EQ(headers(msg, 18).size(), 2u);   // B with its continuation line (cut after the '\n' at 18)
  EXPECT_EQ(headers(msg, 0).size(), 0u);
  // A headers-only parse reads just the cut header block; a full parse must keep the same headers.
  // (The second message is all header, with a line that is no header and no final line end:
  // GMime dropped every header of it in a full parse; found by mime_fuzz.)
  for (std::string text : {msg, std::string("A: 1\nnot a header\nB: 2\nC")})
    for (size_t limit = 0; limit < text.size() + 2; ++limit) {
      std::vector<std::string> only, full;
      for (const auto& h : headers(text, limit)) only.push_back(h.name + "=" + h.value);
      mime::Message m = mime::Message::parse(text, {limit, 100, 1, 100});
      for (const auto& h : m.headers()) full.push_back(h.name + "=" + h.value);
      EXPECT_EQ(only, full) << text << " " << limit;
    }
}

TEST(MimeText, OneParseKeepsHeadersTextAndBinaryPartsEachWithinItsLimit) {
  std::string msg =
      "Subject: s\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
      "--b\nContent-Type: text/plain\n\nhello world\n"
      "--b\nContent-Type: image/png; name=\"a.png\"\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n"
      "--b\nContent-Type: application/pdf\n\nxyz\n--b--\n";
  mime::Limits l{1000, 5, 1, 1000};
  uint64_t before = mime::parse_count();
  mime::Message m = mime::Message::parse(msg, l);
  EXPECT_EQ(mime::parse_count() - before, 1u);
  ASSERT_EQ(m.headers().size(), 2u);
  EXPECT_EQ(m.headers()[1].name, "Content-Type");  // the top-level Content-* headers are kept in order
  EXPECT_EQ(m.text(), "hello");
  ASSERT_EQ(m.binary_parts().size(), 1u);  // max_parts
  EXPECT_EQ(m.binary_parts()[0].content_type, "image/png");
  EXPECT_EQ(m.binary_parts()[0].filename, "a.png");
  EXPECT_EQ(m.binary_parts()[0].data, "hello");
  // A larger text limit keeps a text of which the smaller one is a prefix.
  mime::Message big = mime::Message::parse(msg, {1000, 1000, 8, 1000});
  EXPECT_EQ(big.text().substr(0, 5), m.text());
  EXPECT_EQ(big.binary_parts().size(), 2u);
  // Nothing asked for: no GMime work at all.
  before = mime::parse_count();
  EXPECT_TRUE(mime::Message::parse(msg, {}).headers().empty());
  EXPECT_EQ(mime::parse_count(), before);
  EXPECT_TRUE((mime::Limits{1, 2, 3, 4}).covers({1, 2, 3, 4}));
  EXPECT_FALSE((mime::Limits{1, 2, 3, 4}).covers({1, 3, 3, 4}));
  EXPECT_TRUE(mime::Limits::merge({5, 0, 0, 0}, {0, 6, 7, 8}).covers({5, 6, 7, 8}));
}

}  // namespace
}  // namespace filters
