// Unit tests for filters::reply_for: every phase x action row, with and without a reply of the
// verdict's own, against the replies the session has always sent; plus the chain's own verdicts
// (score reject, on_error tempfail, client gone) at every phase.
#include "filters/reply_for.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace filters {
namespace {

namespace R = core::replies;
using core::Reply;

const ReplyNames kNames{"mx.example.org", core::IpAddress::v4({192, 0, 2, 7})};
const Reply kOwn{550, "5.7.9", "the verdict's own reply"};

std::string show(const std::optional<Reply>& r) { return r ? r->wire() : std::string("(none)"); }

struct Row {
  Phase phase;
  Action action;
  Step step;
  std::optional<Reply> plain;  // the answer's reply when the verdict has none
  bool takes_own;              // with a reply of the verdict's own, that one is sent
};

const std::vector<Row>& expected_rows() {
  static const std::vector<Row> rows = {
      // The banner: 220 unless refused; a refusal closes; Accept (allowlisting) keeps the banner.
      {Phase::Connect, Action::Continue, Step::Proceed, R::greeting("mx.example.org"), false},
      {Phase::Connect, Action::Accept, Step::Proceed, R::greeting("mx.example.org"), false},
      {Phase::Connect, Action::Reject, Step::Disconnect, R::client_blocked("192.0.2.7"), true},
      {Phase::Connect, Action::TempFail, Step::Disconnect, R::filter_unavailable(), true},
      {Phase::Connect, Action::Disconnect, Step::Disconnect, R::shutting_down(), true},
      // HELO and MAIL: the engine's 250 unless a filter says otherwise.
      {Phase::Helo, Action::Continue, Step::Proceed, std::nullopt, false},
      {Phase::Helo, Action::Accept, Step::Proceed, std::nullopt, true},
      {Phase::Helo, Action::Reject, Step::Refuse, R::relay_denied(), true},
      {Phase::Helo, Action::TempFail, Step::Refuse, R::local_error(), true},
      {Phase::Helo, Action::Disconnect, Step::Disconnect, R::shutting_down(), true},
      {Phase::MailFrom, Action::Continue, Step::Proceed, std::nullopt, false},
      {Phase::MailFrom, Action::Accept, Step::Proceed, std::nullopt, true},
      {Phase::MailFrom, Action::Reject, Step::Refuse, R::relay_denied(), true},
      {Phase::MailFrom, Action::TempFail, Step::Refuse, R::local_error(), true},
      {Phase::MailFrom, Action::Disconnect, Step::Disconnect, R::shutting_down(), true},
      // RCPT: nobody vouched for the recipient (Continue) is a relay denial.
      {Phase::RcptTo, Action::Continue, Step::Refuse, R::relay_denied(), false},
      {Phase::RcptTo, Action::Accept, Step::Proceed, std::nullopt, true},
      {Phase::RcptTo, Action::Reject, Step::Refuse, R::relay_denied(), true},
      {Phase::RcptTo, Action::TempFail, Step::Refuse, R::local_error(), true},
      {Phase::RcptTo, Action::Disconnect, Step::Disconnect, R::shutting_down(), true},
      // End of data: relayed (the mailbox server's answer is the reply) unless refused.
      {Phase::Data, Action::Continue, Step::Proceed, std::nullopt, false},
      {Phase::Data, Action::Accept, Step::Proceed, std::nullopt, false},
      {Phase::Data, Action::Reject, Step::Refuse, R::relay_denied(), true},
      {Phase::Data, Action::TempFail, Step::Refuse, R::filter_unavailable(), true},
      {Phase::Data, Action::Disconnect, Step::Disconnect, R::shutting_down(), true},
  };
  return rows;
}

class ReplyForRow : public ::testing::TestWithParam<Row> {};

TEST_P(ReplyForRow, WithoutAReplyOfTheVerdictsTheRowsDefault) {
  const Row& row = GetParam();
  Verdict v;
  v.action = row.action;
  Answer a = reply_for(row.phase, v, kNames);
  EXPECT_EQ(a.step, row.step);
  EXPECT_EQ(show(a.reply), show(row.plain));
}

TEST_P(ReplyForRow, WithAReplyOfTheVerdictsOwnThatOneWhereTheRowTakesIt) {
  const Row& row = GetParam();
  Verdict v;
  v.action = row.action;
  v.reply = kOwn;
  Answer a = reply_for(row.phase, v, kNames);
  EXPECT_EQ(a.step, row.step);
  EXPECT_EQ(show(a.reply), show(row.takes_own ? std::optional<Reply>(kOwn) : row.plain));
}

INSTANTIATE_TEST_SUITE_P(EveryPhaseAndAction, ReplyForRow, ::testing::ValuesIn(expected_rows()),
                         [](const ::testing::TestParamInfo<Row>& info) {
                           return std::string(phase_name(info.param.phase)) + "_" +
                                  std::string(action_name(info.param.action));
                         });

TEST(ReplyFor, TheTableHasOneRowPerPhaseAndActionAndTheTestsCoverEach) {
  ASSERT_EQ(expected_rows().size(), kReplyTable.size());
  for (size_t p = 0; p < kPhaseCount; ++p)
    for (size_t a = 0; a < kActionCount; ++a) {
      const ReplyRule& rule = reply_rule(static_cast<Phase>(p), static_cast<Action>(a));
      EXPECT_EQ(rule.phase, static_cast<Phase>(p));
      EXPECT_EQ(rule.action, static_cast<Action>(a));
      const Row& row = expected_rows()[p * kActionCount + a];
      EXPECT_EQ(row.phase, rule.phase);
      EXPECT_EQ(row.action, rule.action);
    }
}

// The chain's own verdicts carry their reply; reply_for sends it unchanged at every phase.
TEST(ReplyFor, ScoreRejectSendsTheChainsReplyNamingWhatScored) {
  Verdict v{Action::Reject, R::spam_rejected("score 6 >= 5: RBL_X=3 RULE_Y=3"), "score"};
  for (Phase p : {Phase::MailFrom, Phase::RcptTo, Phase::Data}) {
    Answer a = reply_for(p, v, kNames);
    EXPECT_EQ(a.step, Step::Refuse) << phase_name(p);
    ASSERT_TRUE(a.reply) << phase_name(p);
    EXPECT_EQ(a.reply->wire(), "554 5.7.1 Message refused as spam (score 6 >= 5: RBL_X=3 RULE_Y=3)\r\n");
  }
}

TEST(ReplyFor, OnErrorTempfailIs451_4_3_0AtEveryPhase) {
  Verdict v = Verdict::failure("timeout");
  v.action = Action::TempFail;
  v.reply = R::filter_unavailable();
  for (size_t p = 0; p < kPhaseCount; ++p) {
    Phase phase = static_cast<Phase>(p);
    Answer a = reply_for(phase, v, kNames);
    EXPECT_EQ(a.step, phase == Phase::Connect ? Step::Disconnect : Step::Refuse) << phase_name(phase);
    EXPECT_EQ(show(a.reply), "451 4.3.0 Temporary problem checking the message; try again later\r\n");
  }
}

TEST(ReplyFor, ClientGoneIs421AndCloseAtEveryPhase) {
  Verdict v{Action::Disconnect, std::nullopt, "client gone"};
  for (size_t p = 0; p < kPhaseCount; ++p) {
    Answer a = reply_for(static_cast<Phase>(p), v, kNames);
    EXPECT_EQ(a.step, Step::Disconnect);
    EXPECT_EQ(show(a.reply), "421 4.3.2 Service shutting down, closing connection\r\n");
  }
}

}  // namespace
}  // namespace filters
