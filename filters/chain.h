// filters::Chain — one profile's ordered filters with their timeouts and failure modes — and
// filters::ChainRun, one connection's passage through it.
//
// Semantics, per phase: the filters that want the phase run in order; each verdict's score and
// tags are added up; the first verdict that is not Continue ends the phase and is the answer.
//  * A check that fails (Verdict::failed, an exception) or outlives its filter's timeout gets the
//    filter's on_error: "tempfail" answers 451 4.3.0, "continue" goes on as if it had not run.
//  * An Accept at Connect allowlists the connection: spam checks (Filter::skipped_when_allowlisted)
//    do not run for it any more.
//  * From MailFrom on, when no filter decided and the score (connection + transaction) reached the
//    profile's reject_score, the answer is 554 5.7.1 naming what scored.
//  * A relayed message gets the spam headers when its score reached tag_score, or when a verdict of
//    its transaction set Verdict::tag (e.g. rspamd's "add header"), whatever the score.
//  * At RcptTo a recipient is accepted only on an explicit Accept (ChainRun leaves that to the
//    session; Continue means "nobody vouched for it").
//  * cancel() (the client went away) abandons the running check at once.
//  * At Data, every check's Context::parsed is the same ParsedMessage (filters/parsed_message.h):
//    the message is MIME-parsed at most once, by the first filter that asks.
// Every verdict is counted per filter and outcome; decisive or scoring ones are logged at info.
#pragma once
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "config/filters.h"
#include "core/metrics.h"
#include "filters/filter.h"
#include "filters/sender_auth.h"

namespace filters {

class Chain {
 public:
  struct Step {
    std::shared_ptr<Filter> filter;
    config::FilterSettings settings;
    core::FilterCounters* counters;
    core::Histogram* latency;  // filter_duration_seconds{filter=...}
  };
  Chain(double reject_score = 0, double tag_score = 0) : reject_score_(reject_score), tag_score_(tag_score) {}
  void add(std::shared_ptr<Filter> f, config::FilterSettings s);
  const std::vector<Step>& steps() const { return steps_; }
  size_t size() const { return steps_.size(); }
  double reject_score() const { return reject_score_; }
  double tag_score() const { return tag_score_; }
  // The union of the Data-phase filters' Filter::mime_needs(): what the message's shared parse keeps.
  const mime::Limits& mime_needs() const { return mime_needs_; }

 private:
  std::vector<Step> steps_;
  double reject_score_, tag_score_;
  mime::Limits mime_needs_;
};

// Scores and tags, split so that a new transaction starts from the connection's part.
struct Score {
  double connection = 0, transaction = 0;
  std::vector<std::string> connection_tags, transaction_tags;
  double total() const { return connection + transaction; }
  std::string report() const;  // "RBL_ZEN=3 RULE_X=2"
};

class ChainRun {
 public:
  // `base` carries the session fields (id, client, ...); each run() gets the phase's own copy.
  ChainRun(std::shared_ptr<const Chain> chain, boost::asio::any_io_executor ex);
  ~ChainRun();

  // At connection arrival: every filter's connect() (e.g. starts the DNS lookups).
  void connect(const Context& base);
  // Runs one phase. `ctx` is this phase's data; state and cancel are filled in per filter.
  boost::asio::awaitable<Verdict> run(Phase p, Context ctx);
  void new_transaction();   // MAIL after RSET / a finished message: the transaction score restarts
  void cancel();            // the client went away: abandon the running check
  bool allowlisted() const { return allowlisted_; }
  const Score& score() const { return score_; }
  // The spam headers to add to a relayed message, or "" when the score is below tag_score and no
  // verdict of the transaction asked for them (Verdict::tag).
  std::string spam_headers(const config::SpamHeaders& names) const;
  // What the verdicts of this connection and transaction asked to add (as header lines, LF line
  // ends: a field whose name is not a valid field name is dropped, a value's line ends become
  // folds, control bytes other than tab become spaces) and to remove (field names). The
  // Authentication-Results fields with the same authserv-id (spf, dkim, dmarc) are written as one.
  std::string added_headers() const;
  const std::vector<HeaderRemoval>& removed_headers() const { return removed_; }

 private:
  struct Waiter;
  boost::asio::awaitable<Verdict> check_one(const Chain::Step& step, Phase p, const Context& phase_ctx,
                                            std::shared_ptr<void> state, core::FilterOutcome& outcome);
  void add_score(const Verdict& v, Phase p);

  std::shared_ptr<const Chain> chain_;
  boost::asio::any_io_executor ex_;
  std::vector<std::shared_ptr<void>> states_;
  std::shared_ptr<Waiter> current_;
  bool allowlisted_ = false;
  bool cancelled_ = false;
  Score score_;
  std::vector<HeaderField> connection_added_, added_;  // added_: this transaction's
  std::vector<HeaderRemoval> removed_;
  bool tagged_ = false;  // a verdict of this transaction asked for the spam headers (Verdict::tag)
  std::shared_ptr<SenderAuth> auth_ = std::make_shared<SenderAuth>();  // this transaction's
};

}  // namespace filters
