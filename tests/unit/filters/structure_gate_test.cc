// The message-level MIME structure limit (issue 12.2): mime::Message::structure() from the one
// GMime parse, and filters::StructureGate, which refuses a message nested deeper than
// limits.mime_depth or holding more than limits.mime_parts parts with 554 5.6.0, in a chain with
// the rules filter (body text nested past what the walk reads was silently skipped, so the
// message was relayed as if the rules had seen it).
#include "filters/structure_gate.h"

#include <gtest/gtest.h>

#include "filters/chain.h"
#include "filters/parsed_message.h"
#include "filters/rules/rules.h"
#include "tests/unit/net/io_thread.h"

namespace filters {
namespace {

using testing_support::IoThread;

// `text` in a text/plain part wrapped in `depth` nested multiparts.
std::string nested(const std::string& text, size_t depth) {
  std::string inner = "Content-Type: text/plain\n\n" + text + "\n";
  for (size_t i = 0; i < depth; ++i) {
    std::string b = "b" + std::to_string(i);
    inner = "Content-Type: multipart/mixed; boundary=\"" + b + "\"\n\n--" + b + "\n" + inner + "--" + b + "--\n";
  }
  return "Subject: nested\nMIME-Version: 1.0\n" + inner;
}

// One multipart holding `n` small text parts.
std::string many_parts(size_t n) {
  std::string m = "Subject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n";
  for (size_t i = 0; i < n; ++i) m += "--B\nContent-Type: text/plain\n\npart " + std::to_string(i) + "\n";
  return m + "--B--\n";
}

mime::Limits structure_limits(size_t depth, size_t nodes) {
  mime::Limits l;
  l.max_depth = depth;
  l.max_nodes = nodes;
  return l;
}

TEST(MimeStructure, DepthAndPartsAreCountedOverTheWholeTree) {
  mime::Message flat = mime::Message::parse("Subject: x\n\nhello\n", structure_limits(20, 1000));
  EXPECT_EQ(flat.structure().depth, 0u);
  EXPECT_EQ(flat.structure().nodes, 1u);
  mime::Message m = mime::Message::parse(nested("deep text", 5), structure_limits(20, 1000));
  EXPECT_EQ(m.structure().depth, 5u);
  EXPECT_EQ(m.structure().nodes, 6u);
  EXPECT_FALSE(m.structure().unread);
  EXPECT_FALSE(m.structure().exceeds(m.limits()));
  // An attached message adds a level, and its own parts count.
  std::string fwd = "Subject: fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"O\"\n\n"
                    "--O\nContent-Type: text/plain\n\nsee below\n--O\nContent-Type: message/rfc822\n\n" +
                    nested("inner", 2) + "--O--\n";
  mime::Message f = mime::Message::parse(fwd, structure_limits(20, 1000));
  EXPECT_EQ(f.structure().depth, 4u);  // multipart > message/rfc822 > its multipart (2 levels) > text
  EXPECT_EQ(f.structure().nodes, 6u);
  // Asked for the structure, the walk goes on after the text it keeps is full.
  mime::Limits l = structure_limits(20, 1000);
  l.text_octets = 4;
  EXPECT_EQ(mime::Message::parse(many_parts(50), l).structure().nodes, 51u);
}

TEST(MimeStructure, TextNestedPastWhatIsReadIsNeverSkippedSilently) {
  mime::Limits text_only;
  text_only.text_octets = 1000;
  mime::Message reachable = mime::Message::parse(nested("WINNER", mime::kMaxDepth), text_only);
  EXPECT_EQ(reachable.text(), "WINNER");  // the line end before a boundary belongs to it
  EXPECT_FALSE(reachable.structure().unread);
  mime::Message deep = mime::Message::parse(nested("WINNER", 40), text_only);
  EXPECT_EQ(deep.text(), "");  // not read ...
  EXPECT_TRUE(deep.structure().unread);  // ... and said so
  EXPECT_TRUE(deep.structure().exceeds(text_only));
}

TEST(MimeStructure, AParseThatCountedFurtherCoversNeedsThatCountLess) {
  EXPECT_TRUE(structure_limits(20, 1000).covers(structure_limits(10, 100)));
  EXPECT_FALSE(structure_limits(10, 1000).covers(structure_limits(20, 100)));
  EXPECT_FALSE(mime::Limits{}.covers(structure_limits(1, 0)));
  EXPECT_TRUE(mime::Limits{}.covers(mime::Limits{}));
  EXPECT_FALSE(structure_limits(1, 0).empty());
  mime::Limits merged = mime::Limits::merge(structure_limits(20, 10), structure_limits(5, 1000));
  EXPECT_EQ(merged.max_depth, 20u);
  EXPECT_EQ(merged.max_nodes, 1000u);
}

TEST(StructureGate, VerdictRefusesPastEitherLimitWith554_560) {
  mime::Limits l = structure_limits(20, 1000);
  EXPECT_EQ(StructureGate::verdict({20, 1000, false}, l).action, Action::Continue);
  for (mime::Structure s : {mime::Structure{21, 30, false}, mime::Structure{3, 1001, false}, mime::Structure{33, 40, true}}) {
    Verdict v = StructureGate::verdict(s, l);
    EXPECT_EQ(v.action, Action::Reject);
    ASSERT_TRUE(v.reply);
    EXPECT_EQ(v.reply->code, 554);
    EXPECT_EQ(v.reply->enhanced, "5.6.0");
  }
  EXPECT_NE(StructureGate::verdict({21, 30, false}, l).reply->text.find("nested more than 20 levels"), std::string::npos);
  EXPECT_NE(StructureGate::verdict({3, 1001, false}, l).reply->text.find("more than 1000 parts"), std::string::npos);
}

// The gate in front of the rules filter, sharing its parse: a body rule's text nested 40 levels
// deep (past what any filter reads) or a message with too many parts is refused, not relayed.
class GateChain : public testing::Test {
 protected:
  GateChain() : pool_(std::make_shared<net::BlockingPool>("gate-test", 1, 16)) {
    rules::Settings rs;
    rules::Rule r;
    r.name = "winner";
    r.kind = rules::Kind::Body;
    r.pattern = "WINNER";
    r.action = rules::Action::Reject;
    rs.rules = {r};
    std::string err;
    rules_ = Rules::build(rs, pool_, err);
    EXPECT_TRUE(rules_) << err;
  }

  Verdict run_data(const std::shared_ptr<Chain>& chain, const std::string& message) {
    Context ctx;
    ctx.session_id = "t";
    ctx.message = std::make_shared<const std::string>(message);
    ChainRun run(chain, io_.io().get_executor());
    return io_.spawn<Verdict>([&run, ctx]() -> boost::asio::awaitable<Verdict> {
                co_return co_await run.run(Phase::Data, ctx);
              }).get();
  }

  std::shared_ptr<Chain> chain(bool with_gate) {
    auto c = std::make_shared<Chain>();
    config::FilterSettings s{config::Seconds(10), config::OnError::TempFail};
    if (with_gate) c->add(std::make_shared<StructureGate>(pool_, 20, 1000), s);
    c->add(rules_, s);
    return c;
  }

  std::shared_ptr<net::BlockingPool> pool_;
  IoThread io_;
  std::shared_ptr<Rules> rules_;
};

TEST_F(GateChain, WithoutTheGateTextPastTheWalkWasNotSeen) {
  EXPECT_EQ(run_data(chain(false), nested("WINNER", 5)).action, Action::Reject);
  EXPECT_EQ(run_data(chain(false), nested("WINNER", 40)).action, Action::Continue);  // what the gate is for
}

TEST_F(GateChain, DeepOrManyPartedMessagesAreRefusedOthersJudgedWithOneParse) {
  auto c = chain(true);
  uint64_t before = mime::parse_count();
  Verdict ok = run_data(c, nested("hello", 20));
  EXPECT_EQ(ok.action, Action::Continue) << ok.reason;
  EXPECT_EQ(mime::parse_count() - before, 1u) << "the gate and the rules share one parse";
  Verdict rule = run_data(c, nested("WINNER", 3));
  EXPECT_EQ(rule.action, Action::Reject);
  EXPECT_EQ(rule.reply->enhanced, "5.7.1");  // the rule's refusal: the gate let it through
  for (const std::string& m : {nested("WINNER", 21), nested("WINNER", 40), nested("hello", 200), many_parts(1000)}) {
    Verdict v = run_data(c, m);
    EXPECT_EQ(v.action, Action::Reject);
    ASSERT_TRUE(v.reply);
    EXPECT_EQ(v.reply->code, 554);
    EXPECT_EQ(v.reply->enhanced, "5.6.0") << v.reply->text;
  }
  EXPECT_EQ(run_data(c, many_parts(999)).action, Action::Continue);  // 999 parts + the multipart = 1000
}

}  // namespace
}  // namespace filters
