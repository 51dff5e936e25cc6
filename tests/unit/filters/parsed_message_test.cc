// One MIME parse per message (issue 11): filters::ParsedMessage, the lazily made parse that
// ChainRun shares with every check at Data, driven through a real chain with the rules and ocr
// filters in either order, and directly with concurrent consumers. mime::parse_count() counts
// the GMime parses.
#include "filters/parsed_message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "core/base64.h"
#include "filters/chain.h"
#include "filters/ocr/ocr_filter.h"
#include "filters/rules/rules.h"
#include "tests/unit/net/io_thread.h"

namespace filters {
namespace {

using testing_support::IoThread;

rules::Rule rule(std::string name, rules::Kind kind, std::string pattern, double score, std::string header = "") {
  rules::Rule r;
  r.name = std::move(name);
  r.kind = kind;
  r.pattern = std::move(pattern);
  r.score = score;
  r.header = std::move(header);
  return r;
}

// Header rule, body rule (base64 text part) and a part that says image/gif but is not a picture
// (the ocr filter scores the mismatch): each filter shows in the verdict that it read the parse.
const std::string kMessage =
    "From: a@example.net\nSubject: Casino night\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n"
    "--B\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + core::base64_encode("You are a WINNER\n") +
    "\n--B\nContent-Type: image/gif\nContent-Transfer-Encoding: base64\n\n" + core::base64_encode("not a picture") +
    "\n--B--\n";

class OneParse : public testing::TestWithParam<bool> {  // param: ocr before rules
 protected:
  OneParse() : pool_(std::make_shared<net::BlockingPool>("parse-test", 2, 16)) {
    rules::Settings rs;
    rs.rules = {rule("casino", rules::Kind::Header, "(?i)casino", 1, "Subject"), rule("winner", rules::Kind::Body, "WINNER", 2)};
    std::string err;
    rules_ = Rules::build(rs, pool_, err);
    EXPECT_TRUE(rules_) << err;
    auto words = ocr::parse_words("cheap viagra\n", "test");
    ocr::Settings os;
    os.mismatch_score = 0.5;
    ocr_ = std::make_shared<OcrFilter>(os, *words.list, pool_, nullptr);
  }

  // One message through the chain's data phase: the verdict, and the tags scored on the way.
  std::pair<Verdict, std::vector<std::string>> run_data(const std::shared_ptr<Chain>& chain, Context ctx) {
    ChainRun run(chain, io_.io().get_executor());
    auto v = io_.spawn<Verdict>([&run, ctx]() -> boost::asio::awaitable<Verdict> {
      co_return co_await run.run(Phase::Data, ctx);
    });
    Verdict verdict = v.get();
    std::vector<std::string> tags = run.score().transaction_tags;
    std::sort(tags.begin(), tags.end());
    return {verdict, tags};
  }

  std::shared_ptr<net::BlockingPool> pool_;
  IoThread io_;
  std::shared_ptr<Rules> rules_;
  std::shared_ptr<OcrFilter> ocr_;
};

TEST_P(OneParse, RulesAndOcrInOneChainShareOneParse) {
  auto chain = std::make_shared<Chain>();
  config::FilterSettings s{config::Seconds(10), config::OnError::TempFail};
  if (GetParam()) chain->add(ocr_, s);
  chain->add(rules_, s);
  if (!GetParam()) chain->add(ocr_, s);
  EXPECT_TRUE(chain->mime_needs().covers(rules_->mime_needs()));
  EXPECT_TRUE(chain->mime_needs().covers(ocr_->mime_needs()));

  Context ctx;
  ctx.session_id = "t";
  ctx.message = std::make_shared<const std::string>(kMessage);
  uint64_t before = mime::parse_count();
  auto [v, tags] = run_data(chain, ctx);
  EXPECT_EQ(mime::parse_count() - before, 1u) << "rules and ocr must share one MIME parse";
  EXPECT_EQ(v.action, Action::Continue) << v.reason;
  // Each filter read the parse: header rule, body rule (decoded base64), ocr's type mismatch.
  EXPECT_EQ(tags, (std::vector<std::string>{"OCR_TYPE_MISMATCH=0.5", "RULE_CASINO=1", "RULE_WINNER=2"}));

  // The same message through a second transaction is parsed again (one parse per message).
  before = mime::parse_count();
  run_data(chain, ctx);
  EXPECT_EQ(mime::parse_count() - before, 1u);
}

INSTANTIATE_TEST_SUITE_P(Order, OneParse, testing::Bool());

TEST(ParsedMessage, ConcurrentConsumersGetTheSameParse) {
  auto raw = std::make_shared<const std::string>(kMessage);
  auto holder = std::make_shared<const ParsedMessage>(raw, mime::Limits{1024, 1024, 8, SIZE_MAX});
  EXPECT_FALSE(holder->ready());
  uint64_t before = mime::parse_count();
  std::vector<std::shared_ptr<const mime::Message>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) threads.emplace_back([&, i] { got[i] = holder->get(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mime::parse_count() - before, 1u);
  for (const auto& m : got) EXPECT_EQ(m, got[0]);
  EXPECT_EQ(holder->ready(), got[0]);
  EXPECT_EQ(got[0]->text(), "You are a WINNER\n");
  EXPECT_EQ(got[0]->binary_parts().size(), 1u);
}

TEST(ParsedMessage, AConsumerNeedingMoreThanTheSharedParseMakesItsOwn) {
  Context ctx;
  ctx.message = std::make_shared<const std::string>(kMessage);
  ctx.parsed = std::make_shared<const ParsedMessage>(ctx.message, mime::Limits{1024, 0, 0, 0});
  uint64_t before = mime::parse_count();
  auto shared = parsed_message(ctx, {512, 0, 0, 0});
  EXPECT_EQ(shared, ctx.parsed->ready());
  auto own = parsed_message(ctx, {0, 100, 0, 0});  // text: not kept by the shared parse
  EXPECT_NE(own, shared);
  EXPECT_EQ(own->text(), "You are a WINNER\n");
  Context bare;  // no chain: each call parses
  bare.message = ctx.message;
  parsed_message(bare, {0, 100, 0, 0});
  EXPECT_EQ(mime::parse_count() - before, 3u);
}

}  // namespace
}  // namespace filters
