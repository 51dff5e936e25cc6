// Unit tests for filters::Chain / ChainRun with scripted fake filters: order, first decisive
// verdict wins, scores and tags summed, reject_score and tag_score, per-filter timeout and
// on_error (tempfail / continue) for timeouts, failures and exceptions, the allowlist, per-filter
// state from connect(), and cancel() abandoning a running check (whose work stops).
#include "filters/chain.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <stdexcept>

namespace filters {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A filter whose verdict, delay and phases are set by the test; it records its calls.
class Scripted : public Filter {
 public:
  Scripted(std::string name, Verdict v, std::chrono::milliseconds delay = 0ms, bool spam = false)
      : name_(std::move(name)), verdict_(std::move(v)), delay_(delay), spam_(spam) {}
  std::string_view name() const override { return name_; }
  bool wants(Phase p) const override { return phases_.empty() || std::count(phases_.begin(), phases_.end(), p); }
  bool skipped_when_allowlisted() const override { return spam_; }
  std::shared_ptr<void> connect(const Context& ctx, asio::any_io_executor) override {
    ++connects;
    return with_state ? std::make_shared<std::string>("state-of-" + ctx.client_ip.str()) : nullptr;
  }
  asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override {
    ++calls;
    if (ctx->state) seen_state = *std::static_pointer_cast<std::string>(ctx->state);
    if (delay_ > 0ms) {
      asio::steady_timer t(co_await asio::this_coro::executor);
      t.expires_after(delay_);
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      saw_cancel = ctx->cancel->cancelled();
      finished = true;
    }
    if (throws) throw std::runtime_error("scripted failure");
    co_return verdict_;
  }

  std::vector<Phase> phases_;
  bool with_state = false, throws = false;
  int calls = 0, connects = 0;
  bool saw_cancel = false, finished = false;
  std::string seen_state;

 private:
  std::string name_;
  Verdict verdict_;
  std::chrono::milliseconds delay_;
  bool spam_;
};

Verdict scored(double s, std::string tag) {
  Verdict v;
  v.score = s;
  v.tags = {std::move(tag)};
  return v;
}

config::FilterSettings settings(double timeout_s = 5, config::OnError e = config::OnError::TempFail) {
  return {config::Seconds(timeout_s), e};
}

// Runs one phase of `run` on `io` to completion.
Verdict run_phase(asio::io_context& io, ChainRun& run, Phase p, Context ctx = {}) {
  std::optional<Verdict> out;
  asio::co_spawn(io, run.run(p, std::move(ctx)), [&](std::exception_ptr e, Verdict v) {
    if (!e) out = std::move(v);
  });
  io.restart();
  io.run();
  EXPECT_TRUE(out.has_value());
  return out.value_or(Verdict{});
}

TEST(Chain, FiltersRunInOrderAndTheFirstDecisiveVerdictWins) {
  asio::io_context io;
  auto a = std::make_shared<Scripted>("a", Verdict{});
  auto b = std::make_shared<Scripted>("b", Verdict{Action::Reject, core::replies::rule_rejected("B"), "b says no"});
  auto c = std::make_shared<Scripted>("c", Verdict{Action::Accept});
  auto chain = std::make_shared<Chain>();
  chain->add(a, settings());
  chain->add(b, settings());
  chain->add(c, settings());
  ChainRun run(chain, io.get_executor());
  Verdict v = run_phase(io, run, Phase::RcptTo);
  EXPECT_EQ(v.action, Action::Reject);
  EXPECT_EQ(v.reason, "b says no");
  EXPECT_EQ(a->calls, 1);
  EXPECT_EQ(b->calls, 1);
  EXPECT_EQ(c->calls, 0) << "a filter after the decisive one must not run";
}

TEST(Chain, OnlyFiltersWantingThePhaseRun) {
  asio::io_context io;
  auto a = std::make_shared<Scripted>("a", Verdict{Action::Reject});
  a->phases_ = {Phase::Data};
  auto chain = std::make_shared<Chain>();
  chain->add(a, settings());
  ChainRun run(chain, io.get_executor());
  EXPECT_EQ(run_phase(io, run, Phase::MailFrom).action, Action::Continue);
  EXPECT_EQ(a->calls, 0);
  EXPECT_EQ(run_phase(io, run, Phase::Data).action, Action::Reject);
}

TEST(Chain, ScoresAddUpAcrossFiltersAndPhasesAndRejectAtRejectScore) {
  asio::io_context io;
  auto conn = std::make_shared<Scripted>("conn", scored(2, "RBL_X=2"));
  conn->phases_ = {Phase::Connect};
  auto mail = std::make_shared<Scripted>("mail", scored(1.5, "RULE_Y=1.5"));
  mail->phases_ = {Phase::MailFrom};
  auto data = std::make_shared<Scripted>("data", scored(2, "RULE_Z=2"));
  data->phases_ = {Phase::Data};
  auto chain = std::make_shared<Chain>(5.0, 3.0);
  for (auto& f : {conn, mail, data}) chain->add(f, settings());
  ChainRun run(chain, io.get_executor());
  EXPECT_EQ(run_phase(io, run, Phase::Connect).action, Action::Continue) << "connect-phase scores never reject alone";
  EXPECT_EQ(run_phase(io, run, Phase::MailFrom).action, Action::Continue) << "3.5 < 5";
  EXPECT_DOUBLE_EQ(run.score().total(), 3.5);
  Verdict v = run_phase(io, run, Phase::Data);
  EXPECT_EQ(v.action, Action::Reject);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 554);
  EXPECT_EQ(v.reply->enhanced, "5.7.1");
  EXPECT_NE(v.reply->text.find("RBL_X=2 RULE_Y=1.5 RULE_Z=2"), std::string::npos) << v.reply->text;
}

TEST(Chain, TagScoreAddsSpamHeadersAndANewTransactionStartsFromTheConnectionScore) {
  asio::io_context io;
  auto conn = std::make_shared<Scripted>("conn", scored(1, "C=1"));
  conn->phases_ = {Phase::Connect};
  auto data = std::make_shared<Scripted>("data", scored(2.5, "D=2.5"));
  data->phases_ = {Phase::Data};
  auto chain = std::make_shared<Chain>(10.0, 3.0);
  chain->add(conn, settings());
  chain->add(data, settings());
  ChainRun run(chain, io.get_executor());
  config::SpamHeaders names;
  run_phase(io, run, Phase::Connect);
  EXPECT_EQ(run.spam_headers(names), "") << "1 < tag_score 3";
  run.new_transaction();
  EXPECT_EQ(run_phase(io, run, Phase::Data).action, Action::Continue);
  EXPECT_EQ(run.spam_headers(names),
            "X-Spam-Score: 3.5\nX-Spam-Status: Yes, score=3.5 tag=3 reject=10\nX-Spam-Report: C=1 D=2.5\n");
  run.new_transaction();
  EXPECT_DOUBLE_EQ(run.score().total(), 1.0) << "the transaction part is dropped, the connection part stays";
}

// A verdict with Verdict::tag (rspamd's "add header") has the message tagged below tag_score, and
// with no tag_score at all; the next transaction starts untagged.
TEST(Chain, ATaggingVerdictAddsTheSpamHeadersWhateverTheScore) {
  asio::io_context io;
  Verdict tagged = scored(0, "RSPAMD_SYM=7");
  tagged.tag = true;
  auto data = std::make_shared<Scripted>("data", tagged);
  data->phases_ = {Phase::Data};
  auto chain = std::make_shared<Chain>();  // reject_score and tag_score 0: never by score
  chain->add(data, settings());
  ChainRun run(chain, io.get_executor());
  config::SpamHeaders names;
  EXPECT_EQ(run_phase(io, run, Phase::Data).action, Action::Continue);
  EXPECT_EQ(run.spam_headers(names),
            "X-Spam-Score: 0.0\nX-Spam-Status: Yes, score=0.0 tag=0 reject=0\nX-Spam-Report: RSPAMD_SYM=7\n");
  run.new_transaction();
  EXPECT_EQ(run.spam_headers(names), "");
}

// Header fields asked for by verdicts: connection ones stay for every message, transaction ones
// go with the transaction; values are folded safely and a bad field name is dropped.
TEST(Chain, AddedAndRemovedHeadersFollowTheTransactionAndAreWrittenSafely) {
  asio::io_context io;
  Verdict c;
  c.add_headers = {{"X-Conn", "seen"}};
  auto conn = std::make_shared<Scripted>("conn", c);
  conn->phases_ = {Phase::Connect};
  Verdict d;
  d.add_headers = {{"Authentication-Results", "mx.test;\r\n\tspf=pass smtp.mailfrom=a.test\r\n"},
                   {"Bad Name", "x"},
                   {"X-Evil", "a\r\nInjected: yes\x01"}};
  d.remove_headers = {{"X-Old"}, {"X-Twice", -1}};
  auto data = std::make_shared<Scripted>("data", d);
  data->phases_ = {Phase::Data};
  auto chain = std::make_shared<Chain>();
  chain->add(conn, settings());
  chain->add(data, settings());
  ChainRun run(chain, io.get_executor());
  run_phase(io, run, Phase::Connect);
  EXPECT_EQ(run.added_headers(), "X-Conn: seen\n");
  run_phase(io, run, Phase::Data);
  EXPECT_EQ(run.added_headers(),
            "X-Conn: seen\n"
            "Authentication-Results: mx.test;\n\tspf=pass smtp.mailfrom=a.test\n"
            "X-Evil: a\n\tInjected: yes \n");
  EXPECT_EQ(run.removed_headers(), (std::vector<HeaderRemoval>{{"X-Old", 0}, {"X-Twice", -1}}));
  run.new_transaction();
  EXPECT_EQ(run.added_headers(), "X-Conn: seen\n");
  EXPECT_TRUE(run.removed_headers().empty());
}

// spf, dkim and dmarc each write an Authentication-Results field with our authserv-id: the
// message gets one field carrying all their results, in order; another id's field stays apart.
TEST(Chain, AuthenticationResultsWithOneAuthservIdAreWrittenAsOneField) {
  asio::io_context io;
  Verdict spf, dkim, dmarc;
  spf.add_headers = {{"Authentication-Results", "mx.test; spf=pass smtp.mailfrom=a@a.test"}};
  dkim.add_headers = {{"Authentication-Results", "MX.test;\n\tdkim=pass header.d=a.test;\n\tdkim=fail header.d=b.test"},
                      {"authentication-results", "other.test; dkim=none"}};
  dmarc.add_headers = {{"Authentication-Results", "mx.test; dmarc=pass header.from=a.test"}};
  auto chain = std::make_shared<Chain>();
  for (auto& [name, v] : std::vector<std::pair<std::string, Verdict>>{{"spf", spf}, {"dkim", dkim}, {"dmarc", dmarc}}) {
    auto f = std::make_shared<Scripted>(name, v);
    f->phases_ = {Phase::Data};
    chain->add(f, settings());
  }
  ChainRun run(chain, io.get_executor());
  run_phase(io, run, Phase::Data);
  EXPECT_EQ(run.added_headers(),
            "Authentication-Results: mx.test; spf=pass smtp.mailfrom=a@a.test;\n\tdkim=pass header.d=a.test;\n\t"
            "dkim=fail header.d=b.test;\n\tdmarc=pass header.from=a.test\n"
            "authentication-results: other.test; dkim=none\n");
}

TEST(Chain, TimeoutAppliesOnErrorTempfail) {
  asio::io_context io;
  auto slow = std::make_shared<Scripted>("slow", Verdict{Action::Reject}, 300ms);
  auto chain = std::make_shared<Chain>();
  chain->add(slow, settings(0.02, config::OnError::TempFail));
  ChainRun run(chain, io.get_executor());
  auto* counters = core::filter_counters("slow");
  uint64_t before = core::value(counters, core::FilterOutcome::Timeout);
  Verdict v = run_phase(io, run, Phase::Data);
  EXPECT_EQ(v.action, Action::TempFail);
  ASSERT_TRUE(v.reply);
  EXPECT_EQ(v.reply->code, 451);
  EXPECT_EQ(v.reply->enhanced, "4.3.0");
  EXPECT_EQ(core::value(counters, core::FilterOutcome::Timeout), before + 1);
  EXPECT_TRUE(slow->finished) << "io.run() returns only once the abandoned check has ended";
  EXPECT_TRUE(slow->saw_cancel) << "an abandoned check is told so through ctx->cancel";
}

TEST(Chain, TimeoutWithOnErrorContinueGoesOnToTheNextFilter) {
  asio::io_context io;
  auto slow = std::make_shared<Scripted>("slow2", Verdict{Action::Reject}, 300ms);
  auto next = std::make_shared<Scripted>("next", Verdict{Action::Accept});
  auto chain = std::make_shared<Chain>();
  chain->add(slow, settings(0.02, config::OnError::Continue));
  chain->add(next, settings());
  ChainRun run(chain, io.get_executor());
  EXPECT_EQ(run_phase(io, run, Phase::RcptTo).action, Action::Accept);
  EXPECT_EQ(next->calls, 1);
}

TEST(Chain, FailedVerdictAndExceptionFollowOnError) {
  asio::io_context io;
  auto failing = std::make_shared<Scripted>("failing", Verdict::failure("scanner exploded"));
  auto throwing = std::make_shared<Scripted>("throwing", Verdict{});
  throwing->throws = true;
  {
    auto chain = std::make_shared<Chain>();
    chain->add(failing, settings(5, config::OnError::TempFail));
    ChainRun run(chain, io.get_executor());
    Verdict v = run_phase(io, run, Phase::Data);
    EXPECT_EQ(v.action, Action::TempFail);
    EXPECT_EQ(v.reason, "scanner exploded");
  }
  {
    auto chain = std::make_shared<Chain>();
    chain->add(throwing, settings(5, config::OnError::TempFail));
    ChainRun run(chain, io.get_executor());
    Verdict v = run_phase(io, run, Phase::Data);
    EXPECT_EQ(v.action, Action::TempFail);
    EXPECT_EQ(v.reason, "scripted failure");
  }
  {
    auto chain = std::make_shared<Chain>();
    chain->add(failing, settings(5, config::OnError::Continue));
    chain->add(throwing, settings(5, config::OnError::Continue));
    ChainRun run(chain, io.get_executor());
    EXPECT_EQ(run_phase(io, run, Phase::Data).action, Action::Continue);
  }
}

TEST(Chain, ConnectAcceptAllowlistsAndSkipsSpamChecksButNotSafetyChecks) {
  asio::io_context io;
  auto allow = std::make_shared<Scripted>("allow", Verdict{Action::Accept});
  allow->phases_ = {Phase::Connect};
  auto spam = std::make_shared<Scripted>("spam", Verdict{Action::Reject}, 0ms, /*spam=*/true);
  spam->phases_ = {Phase::MailFrom};
  auto safety = std::make_shared<Scripted>("safety", Verdict{Action::Reject});
  safety->phases_ = {Phase::Data};
  auto chain = std::make_shared<Chain>();
  for (auto& f : {allow, spam, safety}) chain->add(f, settings());
  ChainRun run(chain, io.get_executor());
  EXPECT_EQ(run_phase(io, run, Phase::Connect).action, Action::Continue);
  EXPECT_TRUE(run.allowlisted());
  EXPECT_EQ(run_phase(io, run, Phase::MailFrom).action, Action::Continue);
  EXPECT_EQ(spam->calls, 0);
  EXPECT_EQ(run_phase(io, run, Phase::Data).action, Action::Reject);
}

TEST(Chain, ConnectStateComesBackInEveryCheckOfThatConnection) {
  asio::io_context io;
  auto f = std::make_shared<Scripted>("stateful", Verdict{});
  f->with_state = true;
  auto chain = std::make_shared<Chain>();
  chain->add(f, settings());
  ChainRun run(chain, io.get_executor());
  Context base;
  base.client_ip = core::IpAddress::v4({192, 0, 2, 7});
  run.connect(base);
  EXPECT_EQ(f->connects, 1);
  run_phase(io, run, Phase::MailFrom);
  EXPECT_EQ(f->seen_state, "state-of-192.0.2.7");
}

TEST(Chain, CancelAbandonsTheRunningCheckAtOnce) {
  asio::io_context io;
  auto slow = std::make_shared<Scripted>("slow3", Verdict{Action::Accept}, 1000ms);
  auto after = std::make_shared<Scripted>("after", Verdict{Action::Accept});
  auto chain = std::make_shared<Chain>();
  chain->add(slow, settings(10));
  chain->add(after, settings());
  auto run = std::make_unique<ChainRun>(chain, io.get_executor());
  std::optional<Verdict> out;
  bool slow_done_when_answered = true;
  asio::co_spawn(io, run->run(Phase::Data, Context{}), [&](std::exception_ptr, Verdict v) {
    out = std::move(v);
    slow_done_when_answered = slow->finished;
  });
  asio::steady_timer t(io);
  t.expires_after(20ms);
  t.async_wait([&](boost::system::error_code) { run->cancel(); });
  io.run();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->action, Action::Disconnect);
  EXPECT_EQ(after->calls, 0);
  EXPECT_TRUE(slow->saw_cancel);
  EXPECT_FALSE(slow_done_when_answered) << "the chain must answer without waiting for the abandoned check";
  EXPECT_EQ(core::value(core::filter_counters("slow3"), core::FilterOutcome::Cancelled), 1u);
}

TEST(Chain, EveryVerdictIsCountedPerFilterAndOutcome) {
  asio::io_context io;
  auto f = std::make_shared<Scripted>("counted", Verdict{Action::Reject});
  auto chain = std::make_shared<Chain>();
  chain->add(f, settings());
  ChainRun run(chain, io.get_executor());
  run_phase(io, run, Phase::Data);
  run_phase(io, run, Phase::Data);
  EXPECT_EQ(core::value(core::filter_counters("counted"), core::FilterOutcome::Reject), 2u);
  EXPECT_NE(core::counters_line().find("filter_counted_reject=2"), std::string::npos);
}

}  // namespace
}  // namespace filters
