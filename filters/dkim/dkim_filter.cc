// The dkim filter: key lookups through net::Resolver, verification on the worker pool, and the
// Authentication-Results field, scores, counter and log lines.
#include "filters/dkim/dkim_filter.h"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <cctype>
#include <fmt/format.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/reply.h"
#include "core/text.h"
#include "filters/auth_results.h"
#include "filters/cached_dns.h"
#include "filters/sender_auth.h"

namespace filters {
namespace asio = boost::asio;
namespace R = core::replies;

namespace dkim {
namespace {

double score_of(const Settings& s, AuthResult r) {
  switch (r) {
    case AuthResult::Pass: return s.score_pass;
    case AuthResult::Fail: return s.score_fail;
    case AuthResult::Policy: return s.score_policy;
    case AuthResult::PermError: return s.score_permerror;
    default: return 0;
  }
}

std::string resinfo(const DkimFacts& f) {
  std::string v = fmt::format("dkim={}", auth_result_name(f.result));
  if (!f.detail.empty()) v += fmt::format(" ({})", auth_comment(f.detail));
  auto prop = [&v](const char* name, std::string_view value) {
    if (auth_property_ok(value)) v += fmt::format(" header.{}={}", name, value);  // else left out
  };
  prop("d", f.domain);
  prop("i", f.identity);
  prop("s", f.selector);
  prop("a", f.algorithm);
  prop("b", f.b_prefix);
  return v;
}

}  // namespace

std::string auth_results(std::string_view authserv_id, const std::vector<DkimFacts>& facts) {
  if (facts.empty()) return fmt::format("{}; dkim=none", authserv_id);
  std::string v(authserv_id);
  for (const auto& f : facts) v += ";\n\t" + resinfo(f);
  return v;
}

Verdict verdict_for(const Settings& s, std::string_view authserv_id, const std::vector<DkimFacts>& facts) {
  Verdict v;
  v.add_headers.push_back({"Authentication-Results", auth_results(authserv_id, facts)});
  v.reason = facts.empty() ? "dkim=none" : "";
  for (const auto& f : facts) {
    if (!v.reason.empty()) v.reason += "; ";
    v.reason += fmt::format("dkim={} d={} ({})", auth_result_name(f.result), f.domain, f.detail);
    double score = score_of(s, f.result);
    if (score == 0) continue;
    v.score += score;
    std::string name(auth_result_name(f.result));
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    v.tags.push_back(fmt::format("DKIM_{}={:g}", name, score));
  }
  return v;
}

}  // namespace dkim

namespace {

using DnsContext = CachedDns;  // filters/cached_dns.h
constexpr auto resolve = resolve_cached;

void count_result(AuthResult r) {
  core::count(core::labeled_counter("dkim_results_total", core::labels({{"result", auth_result_name(r)}})));
}

using Finished = std::optional<std::vector<DkimFacts>>;  // nullopt: cancelled before the work

}  // namespace

DkimFilter::DkimFilter(dkim::Settings cfg, std::string authserv_id, std::shared_ptr<net::BlockingPool> workers,
                       std::shared_ptr<net::DnsCache> cache) {
  auto s = std::make_shared<Shared>();
  s->cache = std::move(cache);
  s->workers = std::move(workers);
  s->dns.servers = cfg.dns_servers;
  s->dns.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.query_timeout);
  s->dns.tries = cfg.tries;
  s->cfg = std::move(cfg);
  s->authserv_id = std::move(authserv_id);
  s_ = std::move(s);
}

asio::awaitable<Verdict> DkimFilter::check(Phase, std::shared_ptr<const Context> ctx) {
  auto s = s_;  // the settings stay with this check even if the filter goes (reload)
  if (ctx->authenticated || !ctx->message) co_return Verdict::cont();  // our own users: not checked
  dkim::Options o;
  o.max_signatures = s->cfg.max_signatures;
  o.min_rsa_bits = s->cfg.min_rsa_bits;
  o.now = std::chrono::system_clock::now();
  std::vector<dkim::Pending> sigs = dkim::collect(*ctx->message, o);  // the header block only: cheap
  std::vector<DkimFacts> facts;
  if (!sigs.empty()) {
    auto dns = std::make_shared<DnsContext>();
    dns->options = s->dns;
    dns->cache = s->cache;
    dns->cache_size = s->cfg.cache_size;
    dns->max_ttl = std::chrono::duration_cast<std::chrono::seconds>(s->cfg.max_ttl);
    dns->cancel = ctx->cancel;
    dkim::Lookup lookup = [dns = std::shared_ptr<const DnsContext>(dns)](std::string name, net::DnsType t) {
      return resolve(dns, std::move(name), t);
    };
    co_await dkim::fetch_keys(sigs, std::move(lookup));
    if (ctx->cancel->cancelled()) co_return Verdict::failure("dkim check cancelled");
    // The job owns what it reads: it may outlive this check (abandoned on timeout).
    auto job = [ctx, sigs = std::move(sigs), o]() mutable -> Finished {
      if (ctx->cancel->cancelled()) return std::nullopt;
      return dkim::finish(*ctx->message, std::move(sigs), o);
    };
    std::optional<Finished> r;
    if (s->workers) r = co_await s->workers->run(std::move(job));
    else r = job();
    if (!r) co_return Verdict{Action::TempFail, R::filter_busy(), "worker queue full"};
    if (!*r) co_return Verdict::failure("dkim check cancelled");
    facts = std::move(**r);
  }
  if (ctx->auth) ctx->auth->set_dkim(facts);
  if (facts.empty()) {
    count_result(AuthResult::None);
    core::log().info("dkim id={} result=none reason=\"unsigned\"", ctx->session_id);
  }
  for (const auto& f : facts) {
    count_result(f.result);
    core::log().info("dkim id={} d={} s={} a={} result={} reason={}", ctx->session_id, core::quoted_for_log(f.domain),
                     core::quoted_for_log(f.selector), core::quoted_for_log(f.algorithm), auth_result_name(f.result),
                     core::quoted_for_log(f.detail));
  }
  co_return dkim::verdict_for(s->cfg, s->authserv_id, facts);
}

}  // namespace filters
