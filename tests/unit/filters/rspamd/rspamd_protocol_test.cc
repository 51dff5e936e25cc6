// rspamd's protocol without I/O: the /checkv2 request headers from a Context, and each kind of
// JSON answer (every action, smtp_message, header edits in both forms, bad JSON) -> Verdict.
#include "filters/rspamd/protocol.h"

#include "filters/rspamd/descriptor.h"

#include <algorithm>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace filters::rspamd {
namespace {

Context context() {
  Context c;
  c.session_id = "abc123";
  c.client_ip = *core::IpAddress::parse("192.0.2.7");
  c.helo = "mail.example.net";
  c.sender = {"s", "example.net"};
  c.recipients = {{"a", "example.org"}, {"b", "example.org"}};
  return c;
}

std::vector<std::string> values(const Headers& h, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& [n, v] : h)
    if (n == name) out.push_back(v);
  return out;
}

TEST(RspamdRequest, CarriesTheEnvelopeAndConnectionFacts) {
  Settings s;
  auto h = request_headers(context(), s, "mx1.example.org");
  EXPECT_EQ(values(h, "IP"), std::vector<std::string>{"192.0.2.7"});
  EXPECT_EQ(values(h, "Helo"), std::vector<std::string>{"mail.example.net"});
  EXPECT_EQ(values(h, "From"), std::vector<std::string>{"s@example.net"});
  EXPECT_EQ(values(h, "Rcpt"), (std::vector<std::string>{"a@example.org", "b@example.org"}));
  EXPECT_EQ(values(h, "MTA-Name"), std::vector<std::string>{"mx1.example.org"});
  EXPECT_TRUE(values(h, "Hostname").empty()) << "rspamd's Hostname is the client's rDNS name, not ours";
  EXPECT_EQ(values(h, "Queue-Id"), std::vector<std::string>{"abc123"});  // no message id: the session's
  EXPECT_TRUE(values(h, "User").empty());
  EXPECT_TRUE(values(h, "Settings-ID").empty());
  EXPECT_TRUE(values(h, "Password").empty());
  EXPECT_TRUE(values(h, "Pass").empty());
}

TEST(RspamdRequest, UserSettingsIdPasswordNullSenderAndUnsafeHelo) {
  Context c = context();
  c.authenticated = true;
  c.login = "alice";
  c.sender = {};
  c.helo = "evil\r\nRcpt: x@y";
  Settings s;
  s.settings_id = "submission";
  s.password = "pw";
  auto h = request_headers(c, s, "mx1");
  EXPECT_EQ(values(h, "From"), std::vector<std::string>{"<>"});
  EXPECT_EQ(values(h, "User"), std::vector<std::string>{"alice"});
  EXPECT_EQ(values(h, "Settings-ID"), std::vector<std::string>{"submission"});
  EXPECT_EQ(values(h, "Password"), std::vector<std::string>{"pw"});
  EXPECT_EQ(values(h, "Helo"), std::vector<std::string>{"evil??Rcpt: x@y"});
  EXPECT_EQ(values(h, "Rcpt").size(), 2u);
}

// The Queue-Id is the message's id as mxfront logs it ("<session>.<n>"): rspamd's log line and
// mxfront's "message id=" line name the same transaction.
TEST(RspamdRequest, QueueIdIsTheMessageIdOfTheTransaction) {
  Context c = context();
  c.message_id = "abc123.2";
  auto h = request_headers(c, Settings{}, "mx1");
  EXPECT_EQ(values(h, "Queue-Id"), std::vector<std::string>{"abc123.2"});
  c.message_id = "abc\r\n.2";
  EXPECT_EQ(values(request_headers(c, Settings{}, "mx1"), "Queue-Id"), std::vector<std::string>{"abc??.2"});
}

TEST(RspamdAnswer, RejectWithSmtpMessageIs554AndSanitised) {
  auto a = parse_answer(R"({"action":"reject","score":1004.5,"required_score":15,
      "symbols":{"GTUBE":{"name":"GTUBE","score":1000},"R_SPF_NA":{"score":0}},
      "messages":{"smtp_message":"Gtube pattern\r\nX-Evil: 1"}})", ScoreMode::Add);
  EXPECT_EQ(a.action, "reject");
  ASSERT_TRUE(a.verdict.reply);
  EXPECT_EQ(a.verdict.action, Action::Reject);
  EXPECT_EQ(a.verdict.reply->code, 554);
  EXPECT_EQ(a.verdict.reply->enhanced, "5.7.1");
  EXPECT_EQ(a.verdict.reply->text, "Gtube pattern??X-Evil: 1");
  EXPECT_DOUBLE_EQ(a.verdict.score, 1004.5);
  EXPECT_EQ(a.verdict.tags, (std::vector<std::string>{"GTUBE=1000", "R_SPF_NA=0"}));
  EXPECT_FALSE(a.verdict.failed);
  EXPECT_NE(a.verdict.reason.find("action=reject score=1004.5"), std::string::npos);
}

TEST(RspamdAnswer, RejectWithoutMessageHasADefaultText) {
  auto a = parse_answer(R"({"action":"reject","score":20})", ScoreMode::Add);
  ASSERT_TRUE(a.verdict.reply);
  EXPECT_EQ(a.verdict.reply->code, 554);
  EXPECT_FALSE(a.verdict.reply->text.empty());
}

TEST(RspamdAnswer, SoftRejectAndGreylistAre451_471) {
  for (const char* action : {"soft reject", "greylist"}) {
    auto a = parse_answer(std::string(R"({"action":")") + action + R"(","score":7})", ScoreMode::Add);
    EXPECT_EQ(a.verdict.action, Action::TempFail) << action;
    ASSERT_TRUE(a.verdict.reply);
    EXPECT_EQ(a.verdict.reply->code, 451);
    EXPECT_EQ(a.verdict.reply->enhanced, "4.7.1");
  }
}

TEST(RspamdAnswer, AddHeaderRewriteSubjectNoActionContinueWithScore) {
  for (const char* action : {"add header", "rewrite subject", "no action"}) {
    auto a = parse_answer(std::string(R"({"action":")") + action + R"(","score":6.5,"symbols":{"A":{"score":6.5}}})",
                          ScoreMode::Add);
    EXPECT_EQ(a.verdict.action, Action::Continue) << action;
    EXPECT_FALSE(a.verdict.reply);
    EXPECT_FALSE(a.verdict.failed);
    EXPECT_DOUBLE_EQ(a.verdict.score, 6.5);
    EXPECT_EQ(a.verdict.tags, std::vector<std::string>{"A=6.5"});
    EXPECT_EQ(a.verdict.tag, std::string(action) != "no action") << action;
  }
}

// "add header" and "rewrite subject" mark the message (the chain's spam headers) in both score
// modes; in "alone" nothing of rspamd's score reaches the chain, so no chain reject_score can turn
// rspamd's "add header" into a refusal. reject stays a reject; no action tags nothing.
TEST(RspamdAnswer, TaggingActionsMarkTheMessageInBothModes) {
  for (ScoreMode mode : {ScoreMode::Add, ScoreMode::Alone}) {
    for (const char* action : {"add header", "rewrite subject"}) {
      auto a = parse_answer(std::string(R"({"action":")") + action + R"(","score":12.5,"symbols":{"MXF_HDR":{"score":12.5}}})", mode);
      EXPECT_EQ(a.verdict.action, Action::Continue) << action;
      EXPECT_TRUE(a.verdict.tag) << action;
      EXPECT_DOUBLE_EQ(a.verdict.score, mode == ScoreMode::Add ? 12.5 : 0) << action;
      EXPECT_EQ(a.verdict.tags, std::vector<std::string>{"MXF_HDR=12.5"});
    }
    auto reject = parse_answer(R"({"action":"reject","score":20})", mode);
    EXPECT_EQ(reject.verdict.action, Action::Reject);
    EXPECT_FALSE(reject.verdict.tag);
    EXPECT_FALSE(parse_answer(R"({"action":"no action","score":1})", mode).verdict.tag);
  }
}

TEST(RspamdAnswer, AloneModeKeepsTheScoreOutOfTheChain) {
  auto a = parse_answer(R"({"action":"add header","score":6.5})", ScoreMode::Alone);
  EXPECT_DOUBLE_EQ(a.score, 6.5);
  EXPECT_DOUBLE_EQ(a.verdict.score, 0);
  EXPECT_NE(a.verdict.reason.find("score=6.5"), std::string::npos);
}

TEST(RspamdAnswer, TagsAreCappedHeaviestFirst) {
  std::string symbols;
  for (int i = 0; i < 100; ++i) symbols += (i ? "," : "") + std::string("\"S") + std::to_string(i) + "\":{\"score\":" + std::to_string(i) + "}";
  auto a = parse_answer(R"({"action":"no action","score":1,"symbols":{)" + symbols + "}}", ScoreMode::Add);
  ASSERT_EQ(a.verdict.tags.size(), kMaxTags);
  EXPECT_EQ(a.verdict.tags.front(), "S99=99");
}

TEST(RspamdAnswer, MilterHeaderEditsInBothForms) {
  auto a = parse_answer(R"({"action":"no action","score":0,
      "milter":{"add_headers":{"X-Spamd-Result":"default: False [0.00 / 15.00]",
                               "X-Rspamd-Server":{"value":"rs1","order":0},
                               "X-Multi":[{"value":"one","order":1},"two"]},
                "remove_headers":{"X-Spam":1,"X-Spamd-Bar":0}}})", ScoreMode::Add);
  const auto& add = a.verdict.add_headers;
  ASSERT_EQ(add.size(), 4u);
  auto find = [&](const std::string& n) {
    std::vector<std::string> out;
    for (const auto& h : add)
      if (h.name == n) out.push_back(h.value);
    return out;
  };
  EXPECT_EQ(find("X-Spamd-Result"), std::vector<std::string>{"default: False [0.00 / 15.00]"});
  EXPECT_EQ(find("X-Rspamd-Server"), std::vector<std::string>{"rs1"});
  EXPECT_EQ(find("X-Multi"), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(a.verdict.remove_headers, (std::vector<HeaderRemoval>{{"X-Spam", 1}, {"X-Spamd-Bar", 0}}));
}

// remove_headers {name: N}: 0 all, N the N-th, -N the N-th from the end (rspamd's protocol.md);
// a value that is no integer (or absurdly large) removes nothing rather than everything.
TEST(RspamdAnswer, RemoveHeadersKeepTheirOccurrenceIndex) {
  auto a = parse_answer(R"({"action":"no action","score":0,"milter":{"remove_headers":{
      "DKIM-Signature":-1,"X-All":0,"X-Second":2,"X-Float":1.5,"X-Text":"1","X-Bool":true,"X-Huge":1e12,"X-Neg2":-2.0}}})",
                        ScoreMode::Add);
  std::vector<HeaderRemoval> want = {{"DKIM-Signature", -1}, {"X-All", 0}, {"X-Neg2", -2}, {"X-Second", 2}};
  auto got = a.verdict.remove_headers;
  std::sort(got.begin(), got.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  EXPECT_EQ(got, want);
  // at most kMaxHeaderEdits of them
  std::string many;
  for (int i = 0; i < 80; ++i) many += fmt::format("{}\"X-R{}\":0", i ? "," : "", i);
  auto capped = parse_answer(R"({"action":"no action","score":0,"milter":{"remove_headers":{)" + many + "}}}", ScoreMode::Add);
  EXPECT_EQ(capped.verdict.remove_headers.size(), kMaxHeaderEdits);
}

TEST(RspamdAnswer, DkimSignatureIsPrependedFirstEvenWhenMilterHeadersFillTheCap) {
  std::string many;
  for (int i = 0; i < 60; ++i) many += fmt::format("{}\"X-H{}\":\"v\"", i ? "," : "", i);
  auto a = parse_answer(R"({"action":"no action","score":0,
      "dkim-signature":"v=1; a=rsa-sha256; d=example.net; s=mx;\n\th=from; bh=x; b=y",
      "milter":{"add_headers":{)" + many + "}}}", ScoreMode::Add);
  ASSERT_FALSE(a.verdict.add_headers.empty());
  EXPECT_EQ(a.verdict.add_headers.front().name, "DKIM-Signature");
  EXPECT_EQ(a.verdict.add_headers.front().value, "v=1; a=rsa-sha256; d=example.net; s=mx;\n\th=from; bh=x; b=y");
  EXPECT_EQ(a.verdict.add_headers.size(), kMaxHeaderEdits);
  // several signatures (one per signing domain) come as a list
  auto two = parse_answer(R"({"action":"no action","score":0,"dkim-signature":["v=1; d=a.test","v=1; d=b.test"]})", ScoreMode::Add);
  ASSERT_EQ(two.verdict.add_headers.size(), 2u);
  EXPECT_EQ(two.verdict.add_headers[1].value, "v=1; d=b.test");
}

TEST(RspamdAnswer, RewriteSubjectReplacesTheSubjectOnlyForThatAction) {
  auto a = parse_answer(R"({"action":"rewrite subject","score":7,"subject":"***SPAM*** hello"})", ScoreMode::Add);
  EXPECT_EQ(a.verdict.action, Action::Continue);
  EXPECT_EQ(a.verdict.remove_headers, (std::vector<HeaderRemoval>{{"Subject", 0}}));  // every Subject the client sent
  EXPECT_TRUE(a.verdict.tag);
  ASSERT_EQ(a.verdict.add_headers.size(), 1u);
  EXPECT_EQ(a.verdict.add_headers[0].name, "Subject");
  EXPECT_EQ(a.verdict.add_headers[0].value, "***SPAM*** hello");
  auto other = parse_answer(R"({"action":"add header","score":7,"subject":"***SPAM*** hello"})", ScoreMode::Add);
  EXPECT_TRUE(other.verdict.remove_headers.empty());
  EXPECT_TRUE(other.verdict.add_headers.empty());
}

TEST(RspamdSettingsId, PerProfileEntriesOverrideTheDefaultAndBadEntriesAreErrors) {
  config::Config c;
  c.profiles.clear();
  for (const char* n : {"mx", "submission", "submissions"}) {
    config::Profile p;
    p.name = n;
    c.profiles.push_back(p);
  }
  Settings s;
  s.settings_id = "inbound";
  s.profile_settings_ids = {"submission=outbound", "submissions="};
  std::string error;
  EXPECT_EQ(settings_id_for(s, c, "mx", error), "inbound");
  EXPECT_EQ(settings_id_for(s, c, "submission", error), "outbound");
  EXPECT_EQ(settings_id_for(s, c, "submissions", error), "");  // "profile=": none
  EXPECT_EQ(error, "");
  s.profile_settings_ids = {"outbound"};
  settings_id_for(s, c, "mx", error);
  EXPECT_NE(error.find("is not \"profile=id\""), std::string::npos) << error;
  error.clear();
  s.profile_settings_ids = {"relay=outbound"};
  settings_id_for(s, c, "mx", error);
  EXPECT_NE(error.find("no profile named \"relay\""), std::string::npos) << error;
}

TEST(RspamdAnswer, BadJsonMissingOrUnknownActionFail) {
  for (const char* body : {"", "not json", "[1,2]", R"({"score":1})", R"({"action":"explode","score":1})",
                           R"({"action":"reject")"}) {
    auto a = parse_answer(body, ScoreMode::Add);
    EXPECT_TRUE(a.verdict.failed) << body;
    EXPECT_TRUE(a.action.empty()) << body;
    EXPECT_EQ(a.verdict.action, Action::Continue) << body;
  }
}

}  // namespace
}  // namespace filters::rspamd
