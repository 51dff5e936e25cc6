// The spf filter: the identity, the DNS lookups through net::Resolver, and the verdict per policy.
#include "filters/spf/spf_filter.h"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
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

}  // namespace spf

namespace {

using DnsContext = CachedDns;  // filters/cached_dns.h
constexpr auto resolve = resolve_cached;

void count_result(spf::Result r) {
  core::count(core::labeled_counter("spf_results_total", core::labels({{"result", spf::result_name(r)}})));
}

}  // namespace

SpfFilter::SpfFilter(spf::Settings cfg, std::string authserv_id, std::shared_ptr<net::DnsCache> cache) {
  auto s = std::make_shared<Shared>();
  s->cache = std::move(cache);
  s->dns.servers = cfg.dns_servers;
  s->dns.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.query_timeout);
  s->dns.tries = cfg.tries;
  s->cfg = std::move(cfg);
  s->authserv_id = std::move(authserv_id);
  s_ = std::move(s);
}

asio::awaitable<Verdict> SpfFilter::check(Phase, std::shared_ptr<const Context> ctx) {
  auto s = s_;  // the settings stay with this check even if the filter goes (reload)
  if (ctx->authenticated) co_return Verdict::cont();  // our own users: the profile decides
  // RFC 7208 §2.4: the null sender is checked as postmaster@<HELO name>.
  bool helo_identity = ctx->sender.domain.empty();
  std::string domain = core::lowercase(helo_identity ? ctx->helo : ctx->sender.domain);
  std::string identity = helo_identity ? "postmaster@" + domain : ctx->sender.local + "@" + domain;
  auto dns = std::make_shared<DnsContext>();
  dns->options = s->dns;
  dns->cache = s->cache;
  dns->cache_size = s->cfg.cache_size;
  dns->max_ttl = std::chrono::duration_cast<std::chrono::seconds>(s->cfg.max_ttl);
  dns->cancel = ctx->cancel;
  spf::Lookup lookup = [dns = std::shared_ptr<const DnsContext>(dns)](std::string name, net::DnsType t) {
    return resolve(dns, std::move(name), t);
  };
  spf::Outcome o = co_await spf::check_host(ctx->client_ip, domain, identity, ctx->helo, std::move(lookup));
  count_result(o.result);
  if (ctx->auth) ctx->auth->set_spf({spf::auth_result(o.result), domain, helo_identity});
  Verdict v = spf::verdict_for(s->cfg, s->authserv_id, o, identity, domain, helo_identity, ctx->client_ip);
  core::log().info("spf id={} client={} identity={} result={} verdict={} reason={}", ctx->session_id, ctx->client_ip,
                   core::angled_for_log(identity), spf::result_name(o.result), action_name(v.action), core::quoted_for_log(v.reason));
  co_return v;
}

}  // namespace filters
