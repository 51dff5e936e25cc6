// The static rules filter: compiled RE2 patterns per kind, evaluated in config order; a reject
// rule ends the evaluation, score rules add up into one verdict.
#include "filters/rules/rules.h"

#include <re2/re2.h>

#include <cctype>
#include <fmt/format.h>

#include "core/text.h"
#include "filters/mime_text.h"
#include "filters/parsed_message.h"

namespace filters {
namespace R = core::replies;

namespace {

struct Rule {
  std::string name;
  std::string tag;     // "RULE_<NAME>"
  std::string header;  // kind "header": the header name
  double score = 0;
  bool reject = false;
  std::unique_ptr<RE2> re;
};

std::string tag_of(const std::string& name) {
  std::string t = "RULE_";
  for (char ch : name) {
    unsigned char u = static_cast<unsigned char>(ch);
    t += std::isalnum(u) ? static_cast<char>(std::toupper(u)) : '_';
  }
  return t;
}

// Runs `rules` in order: the first matching reject rule is the verdict; otherwise the matching
// score rules add up. `matches(rule)` says whether a rule matches.
template <class Match>
Verdict evaluate(const std::vector<Rule>& rules, std::string_view what, Match matches) {
  Verdict v;
  for (const Rule& r : rules) {
    if (!matches(r)) continue;
    if (r.reject) return {Action::Reject, R::rule_rejected(r.name), fmt::format("rule {} matched the {}", r.name, what)};
    v.score += r.score;
    v.tags.push_back(fmt::format("{}={:g}", r.tag, r.score));
    v.reason += fmt::format("{}rule {} ({:g})", v.reason.empty() ? "" : ", ", r.name, r.score);
  }
  return v;
}

// `a` then `b`, scores and tags summed; a decisive `b` wins.
Verdict merge(Verdict a, Verdict b) {
  if (b.action != Action::Continue) return b;
  a.score += b.score;
  a.tags.insert(a.tags.end(), b.tags.begin(), b.tags.end());
  if (!b.reason.empty()) a.reason += (a.reason.empty() ? "" : ", ") + b.reason;
  return a;
}

bool contains(const std::vector<core::Cidr>& list, const core::IpAddress& ip) {
  for (const auto& c : list)
    if (c.contains(ip)) return true;
  return false;
}

// What a data job answers: the verdict, or `skipped` when the check was cancelled before it ran.
struct JobResult {
  bool skipped = false;
  Verdict verdict;
};

}  // namespace

struct Rules::Compiled {
  std::vector<core::Cidr> block, allow;
  std::vector<Rule> helo, sender, header, body;
  size_t body_limit = 0;

  std::vector<Rule>& of(rules::Kind kind) {
    switch (kind) {
      case rules::Kind::Helo: return helo;
      case rules::Kind::Sender: return sender;
      case rules::Kind::Header: return header;
      case rules::Kind::Body: break;
    }
    return body;
  }
};

std::shared_ptr<Rules> Rules::build(const rules::Settings& cfg, std::shared_ptr<net::BlockingPool> workers,
                                    std::string& error) {
  auto c = std::make_shared<Compiled>();
  c->block = cfg.client_block;
  c->allow = cfg.client_allow;
  c->body_limit = cfg.body_limit;
  RE2::Options o;
  o.set_log_errors(false);
  for (const auto& r : cfg.rules) {
    std::vector<Rule>& list = c->of(r.kind);
    auto re = std::make_unique<RE2>(r.pattern, o);
    if (!re->ok()) {
      error = fmt::format("rule '{}': bad regular expression: {}", r.name, re->error());
      return nullptr;
    }
    list.push_back({r.name, tag_of(r.name), r.header, r.score, r.action == rules::Action::Reject, std::move(re)});
  }
  mime::ensure_init();
  return std::make_shared<Rules>(std::move(c), std::move(workers));
}

Rules::Rules(std::shared_ptr<const Compiled> c, std::shared_ptr<net::BlockingPool> workers)
    : c_(std::move(c)), workers_(std::move(workers)) {}

bool Rules::wants(Phase p) const {
  switch (p) {
    case Phase::Connect: return !c_->block.empty() || !c_->allow.empty();
    case Phase::Helo: return !c_->helo.empty();
    case Phase::MailFrom: return !c_->sender.empty();
    case Phase::RcptTo: return false;
    case Phase::Data: return !c_->header.empty() || !c_->body.empty();
  }
  return false;
}

Verdict Rules::connect_verdict(const core::IpAddress& ip) const {
  if (contains(c_->block, ip)) return {Action::Reject, R::client_blocked(ip.str()), "client_block"};
  if (contains(c_->allow, ip)) return {Action::Accept, std::nullopt, "client_allow"};
  return {};
}

mime::Limits Rules::mime_needs() const {
  mime::Limits l;
  if (!c_->header.empty()) l.header_octets = kHeaderLimit;
  if (!c_->body.empty()) l.text_octets = c_->body_limit;
  return l;
}

namespace {

Verdict header_verdict(const std::vector<Rule>& rules, const mime::Message& m) {
  if (rules.empty()) return {};
  return evaluate(rules, "header", [&](const Rule& r) {
    for (const auto& h : m.headers())
      if (core::iequals(h.name, r.header) && RE2::PartialMatch(h.value, *r.re)) return true;
    return false;
  });
}

// The text a shared parse kept may be longer than this filter's body_limit: its prefix is ours.
Verdict body_verdict(const std::vector<Rule>& rules, const mime::Message& m, size_t limit) {
  std::string_view text = std::string_view(m.text()).substr(0, limit);
  return evaluate(rules, "body", [&](const Rule& r) { return RE2::PartialMatch(text, *r.re); });
}

// The pool job: the message's parse (shared with the other filters: made here if nobody made it
// yet), then the header rules unless they were judged already, then the body rules.
JobResult data_job(const Rules::Compiled& c, const Context& ctx, const mime::Limits& needs, bool with_headers) {
  if (ctx.cancel->cancelled()) return {true, {}};
  std::shared_ptr<const mime::Message> m = parsed_message(ctx, needs);
  if (ctx.cancel->cancelled()) return {true, {}};
  Verdict headers = with_headers ? header_verdict(c.header, *m) : Verdict{};
  if (headers.action != Action::Continue || c.body.empty()) return {false, std::move(headers)};
  return {false, merge(std::move(headers), body_verdict(c.body, *m, c.body_limit))};
}

}  // namespace

boost::asio::awaitable<Verdict> Rules::data_verdict(std::shared_ptr<const Context> ctx) {
  if (!ctx->message) co_return Verdict{};
  const mime::Limits needs = mime_needs();
  // Parsed already (by an earlier filter): the header rules are cheap enough for this thread.
  Verdict headers;
  bool with_headers = true;
  if (auto m = ctx->parsed ? ctx->parsed->ready() : nullptr; m && m->limits().covers(needs)) {
    headers = header_verdict(c_->header, *m);
    if (headers.action != Action::Continue || c_->body.empty()) co_return headers;
    with_headers = false;
  }
  // The job owns what it reads: it may outlive this check (abandoned on timeout).
  auto job = [c = c_, ctx, needs, with_headers] { return data_job(*c, *ctx, needs, with_headers); };
  std::optional<JobResult> r = co_await workers_->run(std::move(job));
  if (!r) co_return Verdict{Action::TempFail, R::filter_busy(), "worker queue full"};
  if (r->skipped) co_return Verdict{};
  co_return merge(std::move(headers), std::move(r->verdict));
}

boost::asio::awaitable<Verdict> Rules::check(Phase p, std::shared_ptr<const Context> ctx) {
  switch (p) {
    case Phase::Connect: co_return connect_verdict(ctx->client_ip);
    case Phase::Helo:
      co_return evaluate(c_->helo, "HELO name", [&](const Rule& r) { return RE2::PartialMatch(ctx->helo, *r.re); });
    case Phase::MailFrom: {
      std::string sender = ctx->sender.str();
      co_return evaluate(c_->sender, "sender", [&](const Rule& r) { return RE2::PartialMatch(sender, *r.re); });
    }
    case Phase::RcptTo: co_return Verdict{};
    case Phase::Data: co_return co_await data_verdict(std::move(ctx));
  }
  co_return Verdict{};
}

}  // namespace filters
