// The spf filter: the identity, the DNS lookups through net::Resolver, and the verdict per policy.
#include "filters/spf/spf_filter.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <fmt/format.h>

#include "core/domain.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"
#include "filters/auth_results.h"
#include "filters/cached_dns.h"
#include "filters/sender_auth.h"

namespace filters {
namespace asio = boost::asio;
namespace R = core::replies;

namespace spf {
namespace {

// An identity usable as a property value (RFC 8601 §2.2 allows local@domain): otherwise only
// its domain is given.
std::string property_value(std::string_view identity) {
  if (auth_property_ok(identity)) return std::string(identity);
  return std::string(core::domain_of(identity));
}

double score_of(const Settings& s, Result r) {
  switch (r) {
    case Result::Fail: return s.score_fail;
    case Result::SoftFail: return s.score_softfail;
    case Result::PermError: return s.score_permerror;
    default: return 0;
  }
}

Policy policy_of(const Settings& s, Result r) {
  switch (r) {
    case Result::Fail: return s.on_fail;
    case Result::SoftFail: return s.on_softfail;
    case Result::PermError: return s.on_permerror;
    case Result::TempError: return s.on_temperror;
    default: return Policy::None;
  }
}

std::string tag_of(Result r, double score) {
  std::string name(result_name(r));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return fmt::format("SPF_{}={:g}", name, score);
}

core::Reply refusal(const Outcome& o, Policy p, std::string_view domain, const core::IpAddress& ip) {
  Result r = o.result;
  std::string name(result_name(r));
  if (r == Result::TempError) return R::spf_temperror(name, domain);
  if (p == Policy::Reject)
    return r == Result::PermError ? R::spf_error(domain) : R::spf_rejected(name, domain, ip.str(), o.explanation);
  return r == Result::PermError ? R::spf_temperror(name, domain) : R::spf_tempfailed(name, domain, ip.str());
}

}  // namespace

std::string auth_results(std::string_view authserv_id, const Outcome& o, std::string_view identity, bool helo_identity) {
  std::string v = fmt::format("{}; spf={}", authserv_id, result_name(o.result));
  if (!o.detail.empty()) v += fmt::format(" ({})", auth_comment(o.detail));
  if (helo_identity) v += fmt::format(" smtp.helo={}", property_value(core::domain_of(identity)));
  else v += fmt::format(" smtp.mailfrom={}", property_value(identity));
  return v;
}

Verdict verdict_for(const Settings& s, std::string_view authserv_id, const Outcome& o, std::string_view identity,
                    std::string_view domain, bool helo_identity, const core::IpAddress& ip) {
  Verdict v;
  v.add_headers.push_back({"Authentication-Results", auth_results(authserv_id, o, identity, helo_identity)});
  v.reason = fmt::format("spf={} {}", result_name(o.result), o.detail);
  Policy p = policy_of(s, o.result);
  if (p == Policy::Score) {
    v.score = score_of(s, o.result);
    v.tags.push_back(tag_of(o.result, v.score));
  } else if (p == Policy::Reject && o.result != Result::TempError) {
    v.action = Action::Reject;
    v.reply = refusal(o, p, domain, ip);
  } else if (p == Policy::TempFail || (p == Policy::Reject && o.result == Result::TempError)) {
    v.action = Action::TempFail;
    v.reply = refusal(o, Policy::TempFail, domain, ip);
  }
  if (s.report_only && v.action != Action::Continue) {
    v.reason += fmt::format(" (report only: would {} with {} {})", action_name(v.action), v.reply->code, v.reply->enhanced);
    v.action = Action::Continue;
    v.reply.reset();
  }
  return v;
}

// One transaction's evaluation: started at MAIL, awaited by the RCPT checks. Touched only on the
// session's executor.
struct Pending {
  explicit Pending(const asio::any_io_executor& ex)
      : done(ex, asio::steady_timer::time_point::max()), deadline(ex) {}
  // The verdict, once: wakes every waiting RCPT check and stops what is still running.
  void finish(Verdict v) {
    if (verdict) return;
    verdict = std::move(v);
    cancel->flag = true;  // no further DNS query (a finished evaluation makes none anyway)
    done.cancel();
    deadline.cancel();
  }
  // The transaction or the connection ended: nobody waits for it any more.
  void abandon() { finish(Verdict::failure("spf: transaction ended")); }

  std::shared_ptr<Cancel> cancel = std::make_shared<Cancel>();
  std::shared_ptr<const SenderAuth> transaction;  // whose evaluation this is (ChainRun's per-transaction record)
  std::optional<Verdict> verdict;
  bool reported = false;      // its score, tag and header went with an earlier recipient
  asio::steady_timer done;    // never expires; cancelled when the verdict is set
  asio::steady_timer deadline;
};

// Per connection (Filter::connect): the current transaction's evaluation.
struct Connection {
  std::shared_ptr<Pending> current;
  ~Connection() {
    if (current) current->abandon();
  }
};

}  // namespace spf

namespace {

using DnsContext = CachedDns;  // filters/cached_dns.h
constexpr auto resolve = resolve_cached;

void count_result(spf::Result r) {
  core::count(core::labeled_counter("spf_results_total", core::labels({{"result", spf::result_name(r)}})));
}

}  // namespace

SpfFilter::SpfFilter(spf::Settings cfg, std::string authserv_id, std::chrono::milliseconds timeout,
                     std::shared_ptr<net::DnsCache> cache) {
  auto s = std::make_shared<Shared>();
  s->timeout = timeout;
  s->cache = std::move(cache);
  s->dns.servers = cfg.dns_servers;
  s->dns.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.query_timeout);
  s->dns.tries = cfg.tries;
  s->cfg = std::move(cfg);
  s->authserv_id = std::move(authserv_id);
  s_ = std::move(s);
}

std::shared_ptr<void> SpfFilter::connect(const Context&, asio::any_io_executor) {
  return std::make_shared<spf::Connection>();
}

asio::awaitable<Verdict> SpfFilter::check(Phase p, std::shared_ptr<const Context> ctx) {
  auto conn = std::static_pointer_cast<spf::Connection>(ctx->state);
  if (p == Phase::RcptTo) {
    // Not checked (authenticated), or a MAIL that did not reach this filter: nothing to judge.
    bool ours = conn && conn->current && conn->current->transaction == ctx->auth;
    // Named, never a temporary inside the co_await (GCC 12 releases those twice: net/blocking_pool.h).
    std::shared_ptr<spf::Pending> pending = ours ? conn->current : nullptr;
    Verdict v = co_await judge(pending);
    co_return v;
  }
  // MailFrom: a new transaction; the previous one's evaluation (if still running) is dropped.
  if (conn && conn->current) conn->current->abandon();
  if (ctx->authenticated) {  // our own users: the profile decides
    if (conn) conn->current.reset();
    co_return Verdict::cont();
  }
  auto ex = co_await asio::this_coro::executor;
  auto pending = std::make_shared<spf::Pending>(ex);
  pending->transaction = ctx->auth;
  pending->deadline.expires_after(s_->timeout);
  pending->deadline.async_wait([pending](boost::system::error_code ec) {
    if (!ec) pending->finish(Verdict::failure("spf: timeout (the evaluation outlived spf.timeout since MAIL)"));
  });
  auto facts = std::make_shared<Context>(*ctx);
  facts->state.reset();  // the evaluation must not keep the connection's state (and so itself) alive
  asio::co_spawn(ex, evaluate(s_, std::move(facts), pending), asio::detached);
  if (!conn) {  // no connection state (outside a chain): judged here
    Verdict v = co_await judge(pending);
    co_return v;
  }
  conn->current = std::move(pending);
  co_return Verdict::cont();
}

// RcptTo: waits for the transaction's evaluation. A refusal answers every recipient; a score, tag
// and header go with the first recipient judged only (they count once per transaction).
asio::awaitable<Verdict> SpfFilter::judge(std::shared_ptr<spf::Pending> pending) {
  if (!pending) co_return Verdict::cont();
  if (!pending->verdict) {
    boost::system::error_code ec;
    co_await pending->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!pending->verdict) co_return Verdict::failure("spf: no result");
  const Verdict& v = *pending->verdict;
  if (v.failed || v.action != Action::Continue) co_return v;
  if (pending->reported) co_return Verdict::cont();
  pending->reported = true;
  co_return v;
}

// The evaluation of one transaction, on the session's executor; its verdict goes to `p`.
asio::awaitable<void> SpfFilter::evaluate(std::shared_ptr<const Shared> s, std::shared_ptr<const Context> ctx,
                                          std::shared_ptr<spf::Pending> p) {
  // RFC 7208 §2.4: the null sender is checked as postmaster@<HELO name>.
  bool helo_identity = ctx->sender.domain.empty();
  std::string domain = core::lowercase(helo_identity ? ctx->helo : ctx->sender.domain);
  std::string identity = helo_identity ? "postmaster@" + domain : ctx->sender.local + "@" + domain;
  auto dns = std::make_shared<DnsContext>();
  dns->options = s->dns;
  dns->cache = s->cache;
  dns->cache_size = s->cfg.cache_size;
  dns->max_ttl = std::chrono::duration_cast<std::chrono::seconds>(s->cfg.max_ttl);
  dns->cancel = p->cancel;
  spf::Lookup lookup = [dns = std::shared_ptr<const DnsContext>(dns)](std::string name, net::DnsType t) {
    return resolve(dns, std::move(name), t);
  };
  spf::Outcome o;
  try {
    o = co_await spf::check_host(ctx->client_ip, domain, identity, ctx->helo, std::move(lookup));
  } catch (const std::exception& e) {
    p->finish(Verdict::failure(std::string("spf: ") + e.what()));
    co_return;
  }
  if (p->verdict) co_return;  // timed out or abandoned meanwhile: nothing recorded
  count_result(o.result);
  if (ctx->auth) ctx->auth->set_spf({spf::auth_result(o.result), domain, helo_identity});
  Verdict v = spf::verdict_for(s->cfg, s->authserv_id, o, identity, domain, helo_identity, ctx->client_ip);
  core::log().info("spf id={} client={} identity={} result={} verdict={} reason={}", ctx->session_id, ctx->client_ip,
                   core::angled_for_log(identity), spf::result_name(o.result), action_name(v.action), core::quoted_for_log(v.reason));
  p->finish(std::move(v));
}

}  // namespace filters
