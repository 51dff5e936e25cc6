// Runs a phase through the chain: per-filter timeout race (net::Race), failure mode, scores, logging.
#include "filters/chain.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "core/log.h"
#include "filters/parsed_message.h"
#include "net/deadline.h"
#include "core/text.h"

namespace filters {
namespace asio = boost::asio;
namespace R = core::replies;
using core::FilterOutcome;

std::string_view phase_name(Phase p) {
  switch (p) {
    case Phase::Connect: return "connect";
    case Phase::Helo: return "helo";
    case Phase::MailFrom: return "mail";
    case Phase::RcptTo: return "rcpt";
    case Phase::Data: return "data";
  }
  return "?";
}

std::string_view action_name(Action a) {
  switch (a) {
    case Action::Continue: return "continue";
    case Action::Accept: return "accept";
    case Action::Reject: return "reject";
    case Action::TempFail: return "tempfail";
    case Action::Disconnect: return "disconnect";
  }
  return "?";
}

void Chain::add(std::shared_ptr<Filter> f, config::FilterSettings s) {
  core::describe_histogram({"filter_duration_seconds",
                            "Time of one filter's check of one SMTP phase (its timeout included), by filter."});
  auto* counters = core::filter_counters(f->name());
  auto* latency = core::histogram("filter_duration_seconds", core::labels({{"filter", f->name()}}));
  if (f->wants(Phase::Data)) mime_needs_ = mime::Limits::merge(mime_needs_, f->mime_needs());
  steps_.push_back({std::move(f), s, counters, latency});
}

std::string Score::report() const {
  std::string out;
  for (const auto* tags : {&connection_tags, &transaction_tags})
    for (const auto& t : *tags) out += (out.empty() ? "" : " ") + t;
  return out;
}

// One check in flight: the race of its completion against the filter's timeout and cancel(),
// and the flag that tells the check it was abandoned.
struct ChainRun::Waiter : net::Race<Verdict> {
  using Race::Race;
  std::shared_ptr<Cancel> abandoned = std::make_shared<Cancel>();
};

namespace {
std::string message_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}
}  // namespace

ChainRun::ChainRun(std::shared_ptr<const Chain> chain, asio::any_io_executor ex)
    : chain_(std::move(chain)), ex_(std::move(ex)), states_(chain_->size()) {}

ChainRun::~ChainRun() { cancel(); }

void ChainRun::connect(const Context& base) {
  const auto& steps = chain_->steps();
  for (size_t i = 0; i < steps.size(); ++i) states_[i] = steps[i].filter->connect(base, ex_);
}

void ChainRun::new_transaction() {
  score_.transaction = 0;
  score_.transaction_tags.clear();
  added_.clear();
  removed_.clear();
  tagged_ = false;
  auth_ = std::make_shared<SenderAuth>();
}

void ChainRun::cancel() {
  cancelled_ = true;
  if (current_) {
    current_->abandoned->flag = true;
    current_->cancel();
  }
}

void ChainRun::add_score(const Verdict& v, Phase p) {
  bool conn = p == Phase::Connect || p == Phase::Helo;
  (conn ? score_.connection : score_.transaction) += v.score;
  auto& tags = conn ? score_.connection_tags : score_.transaction_tags;
  tags.insert(tags.end(), v.tags.begin(), v.tags.end());
  auto& added = conn ? connection_added_ : added_;
  added.insert(added.end(), v.add_headers.begin(), v.add_headers.end());
  removed_.insert(removed_.end(), v.remove_headers.begin(), v.remove_headers.end());
  tagged_ = tagged_ || v.tag;
}

// The check gets its own copy of the phase's context (one per check, never shared with the next
// filter): an abandoned check keeps reading it, with its own state and cancel flag.
asio::awaitable<Verdict> ChainRun::check_one(const Chain::Step& step, Phase p, const Context& phase_ctx,
                                             std::shared_ptr<void> state, FilterOutcome& outcome) {
  auto w = std::make_shared<Waiter>(ex_);
  auto c = std::make_shared<Context>(phase_ctx);
  c->state = std::move(state);
  c->cancel = w->abandoned;
  current_ = w;
  if (cancelled_) w->cancel();
  auto work = step.filter->check(p, std::move(c));
  auto deadline = net::SteadyClock::now() + std::chrono::duration_cast<net::SteadyClock::duration>(step.settings.timeout);
  // The race keeps the filter alive: an abandoned check may outlive this config generation.
  w->start(std::move(work), deadline, step.filter);
  co_await w->wait();
  current_.reset();
  std::optional<Verdict>& result = w->value();
  if (result && !result->failed) {
    outcome = static_cast<FilterOutcome>(result->action);
    co_return std::move(*result);
  }
  w->abandoned->flag = true;  // abandoned or finished: tell any work still queued not to start
  if (cancelled_) {
    outcome = FilterOutcome::Cancelled;
    co_return Verdict{Action::Disconnect, std::nullopt, "client gone"};
  }
  std::string error = w->error() ? message_of(w->error()) : "";  // the check threw
  outcome = result ? FilterOutcome::Error : !error.empty() ? FilterOutcome::Error : FilterOutcome::Timeout;
  std::string why = result ? result->reason : !error.empty() ? error : "timeout";
  Verdict v;
  v.reason = why;
  if (step.settings.on_error == config::OnError::TempFail) {
    v.action = Action::TempFail;
    v.reply = R::filter_unavailable();
  }
  v.failed = true;  // marks the log line; the chain treats it by its action
  co_return v;
}

asio::awaitable<Verdict> ChainRun::run(Phase p, Context base) {
  const auto& steps = chain_->steps();
  if (!base.auth) base.auth = auth_;
  if (p == Phase::Data && base.message && !base.parsed && !chain_->mime_needs().empty())
    base.parsed = std::make_shared<const ParsedMessage>(base.message, chain_->mime_needs());
  for (size_t i = 0; i < steps.size() && !cancelled_; ++i) {
    const Chain::Step& step = steps[i];
    if (!step.filter->wants(p)) continue;
    if (allowlisted_ && step.filter->skipped_when_allowlisted()) continue;
    auto t0 = std::chrono::steady_clock::now();
    FilterOutcome outcome = FilterOutcome::Continue;
    // Named, not a temporary inside the co_await: GCC 12 releases such a temporary twice (see
    // net/blocking_pool.h); it showed as a use-after-free once a filter had per-connection state.
    std::shared_ptr<void> state = states_[i];
    Verdict v = co_await check_one(step, p, base, std::move(state), outcome);
    core::count(step.counters, outcome);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    core::observe(step.latency, ms / 1000);
    bool plain = v.action == Action::Continue && v.score == 0 && !v.failed && !v.tag;
    auto& lg = core::log();
    auto level = plain ? spdlog::level::debug : outcome == FilterOutcome::Timeout || outcome == FilterOutcome::Error
                                                    ? spdlog::level::warn
                                                    : spdlog::level::info;
    lg.log(level, "filter id={} client={} filter={} phase={} verdict={}{} score={:g} duration_ms={:.2f} reason={}",
           base.session_id, base.client_ip, step.filter->name(), phase_name(p), action_name(v.action),
           outcome == FilterOutcome::Timeout ? " (timeout)" : outcome == FilterOutcome::Error ? " (error)" : "", v.score, ms,
           core::quoted_for_log(v.reason));
    add_score(v, p);
    if (p == Phase::Connect && v.action == Action::Accept) {
      allowlisted_ = true;
      continue;  // allowlisting does not end the connect phase: safety filters still see it
    }
    if (v.action != Action::Continue) {
      if (v.reason.empty()) v.reason = std::string(step.filter->name());
      co_return v;
    }
  }
  if (cancelled_) co_return Verdict{Action::Disconnect, std::nullopt, "client gone"};
  double limit = chain_->reject_score();
  if (p != Phase::Connect && p != Phase::Helo && limit > 0 && score_.total() >= limit) {
    std::string reasons = fmt::format("score {:g} >= {:g}: {}", score_.total(), limit, score_.report());
    core::log().info("filter id={} client={} filter=score phase={} verdict=reject reason={}", base.session_id,
                     base.client_ip, phase_name(p), core::quoted_for_log(reasons, 4096));
    static core::FilterCounters* const score_counters = core::filter_counters("score");
    core::count(score_counters, FilterOutcome::Reject);
    co_return Verdict{Action::Reject, R::spam_rejected(reasons), reasons};
  }
  co_return Verdict{};
}

namespace {
// RFC 5322 field name: printable US-ASCII except ':'.
bool valid_field_name(std::string_view n) {
  if (n.empty() || n.size() > 76) return false;
  for (char c : n)
    if (c <= 32 || c >= 127 || c == ':') return false;
  return true;
}

// One header line: the value's line ends become folds (LF + tab) and white space around them
// collapses; a control byte other than tab becomes a space; a trailing fold is dropped.
std::string header_line(const HeaderField& f) {
  std::string out = f.name + ": ";
  bool fold = false;
  for (char c : f.value) {
    if (c == '\r' || c == '\n') {
      fold = true;
      continue;
    }
    if (fold) {
      if (c == ' ' || c == '\t') continue;
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      out += "\n\t";
      fold = false;
    }
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 32 && c != '\t') || u == 127 ? ' ' : c;
  }
  out += '\n';
  return out;
}
// The authserv-id part of an Authentication-Results value ("mx.test" of "mx.test; spf=pass"), or
// "" when there is no ';'.
std::string_view authserv_part(std::string_view value) {
  size_t semi = value.find(';');
  if (semi == std::string_view::npos) return {};
  std::string_view id = value.substr(0, semi);
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!id.empty() && space(id.front())) id.remove_prefix(1);
  while (!id.empty() && space(id.back())) id.remove_suffix(1);
  return id;
}

// The fields to write: the Authentication-Results fields of several filters (spf, dkim, dmarc)
// with the same authserv-id become one field, in the order their results came (RFC 8601 §2.2:
// one field carries several results; readers look for one field per authserv-id).
std::vector<HeaderField> merge_auth_results(const std::vector<const HeaderField*>& fields) {
  std::vector<HeaderField> out;
  std::vector<std::pair<std::string, size_t>> seen;  // authserv-id -> index in out
  for (const HeaderField* f : fields) {
    std::string_view id = core::iequals(f->name, "Authentication-Results") ? authserv_part(f->value) : std::string_view();
    auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& e) { return !id.empty() && core::iequals(e.first, id); });
    if (it == seen.end()) {
      if (!id.empty()) seen.emplace_back(std::string(id), out.size());
      out.push_back(*f);
      continue;
    }
    std::string_view rest = std::string_view(f->value).substr(f->value.find(';') + 1);
    while (!rest.empty() && std::string_view(" \t\r\n").find(rest.front()) != std::string_view::npos) rest.remove_prefix(1);
    if (!rest.empty()) out[it->second].value += ";\n\t" + std::string(rest);
  }
  return out;
}
}  // namespace

std::string ChainRun::added_headers() const {
  std::vector<const HeaderField*> fields;
  for (const auto* list : {&connection_added_, &added_})
    for (const auto& f : *list)
      if (valid_field_name(f.name)) fields.push_back(&f);
  std::string out;
  for (const auto& f : merge_auth_results(fields)) out += header_line(f);
  return out;
}

std::string ChainRun::spam_headers(const config::SpamHeaders& h) const {
  double tag = chain_->tag_score();
  if (!tagged_ && (tag <= 0 || score_.total() < tag)) return {};
  std::string out;
  out += fmt::format("{}: {:.1f}\n", h.score, score_.total());
  out += fmt::format("{}: Yes, score={:.1f} tag={:g} reject={:g}\n", h.status, score_.total(), tag, chain_->reject_score());
  std::string report = score_.report();
  if (!report.empty()) out += fmt::format("{}: {}\n", h.report, report);
  return out;
}

}  // namespace filters
