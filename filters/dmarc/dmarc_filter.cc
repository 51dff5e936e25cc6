// The dmarc filter: the From domain, the _dmarc lookups through net::Resolver, the decision
// (policy, pct, local overrides) and what is recorded (header, report log line, counters).
#include "filters/dmarc/dmarc_filter.h"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <cctype>
#include <fmt/format.h>
#include <random>

#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"
#include "filters/cached_dns.h"
#include "filters/sender_auth.h"

namespace filters {
namespace asio = boost::asio;
namespace R = core::replies;

namespace dmarc {
namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// A token for the report line and header: DNS-name characters only, "-" when empty.
std::string token(std::string_view s) {
  if (s.empty()) return "-";
  std::string out;
  for (char c : s.substr(0, 253))
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  return out;
}

bool multiple_from(const FromDomain& f) {
  return f.status == FromDomain::Status::MultipleFields || f.status == FromDomain::Status::MultipleAddresses;
}

// Why the action is not taken ("" = it is).
std::string override_of(const Settings& s, const Judgement& j) {
  if (s.monitor_only) return "monitor_only";
  if (j.trusted_client) return "trusted_forwarder";
  if (j.override_domain) return "local_policy";
  return "";
}

}  // namespace

bool domain_listed(std::string_view domain, const std::vector<std::string>& list) {
  for (const auto& d : list) {
    if (core::iequals(domain, d)) return true;
    if (domain.size() > d.size() + 1 && domain[domain.size() - d.size() - 1] == '.' &&
        core::iequals(domain.substr(domain.size() - d.size()), d))
      return true;
  }
  return false;
}

Decision decide(const Settings& s, const Judgement& j) {
  Decision d;
  if (multiple_from(j.from)) {
    if (!s.reject_multiple_from) return d;
    d.wanted = Policy::Reject;
    d.override_reason = override_of(s, j);
    if (!d.override_reason.empty()) return d;
    d.applied = Policy::Reject;
    d.action = Action::Reject;
    d.reply = R::dmarc_multiple_from();
    return d;
  }
  const Evaluation& e = j.eval;
  if (e.result == Result::TempError) {
    if (s.on_temperror != OnTempError::TempFail) return d;
    d.override_reason = override_of(s, j);
    if (!d.override_reason.empty()) return d;
    d.action = Action::TempFail;
    d.reply = R::dmarc_temperror(j.from.domain);
    return d;
  }
  if (e.result != Result::Fail) return d;
  d.wanted = e.disposition;
  if (e.sampled_out) d.override_reason = "sampled_out";
  if (e.disposition == Policy::None) return d;
  if (auto o = override_of(s, j); !o.empty()) {
    d.override_reason = o;
    return d;
  }
  d.applied = e.disposition;
  if (e.disposition == Policy::Reject) {
    d.action = Action::Reject;
    d.reply = R::dmarc_rejected(j.from.domain);
  } else {
    d.score = s.score_quarantine;
  }
  return d;
}

std::string auth_results(std::string_view authserv_id, const Judgement& j, const Decision& d) {
  std::string v = fmt::format("{}; dmarc={}", authserv_id, result_name(j.eval.result));
  std::string comment;
  if (j.discovery.status == Discovery::Status::Found) {
    const Record& r = j.discovery.record;
    comment = fmt::format("p={} sp={} dis={}", policy_name(r.p), policy_name(r.subdomain_policy()), upper(policy_name(d.applied)));
  } else if (!j.eval.detail.empty()) {
    comment = auth_comment(j.eval.detail);
  }
  if (!d.override_reason.empty()) comment += (comment.empty() ? "" : " ") + ("policy.override=" + d.override_reason);
  if (!comment.empty()) v += " (" + comment + ")";
  if (j.from.status == FromDomain::Status::Ok) v += " header.from=" + j.from.domain;
  return v;
}

std::string report_fields(std::string_view session_id, const core::IpAddress& ip, const Judgement& j, const Decision& d) {
  bool found = j.discovery.status == Discovery::Status::Found;
  const Record& r = j.discovery.record;
  std::string dkim;
  if (j.inputs.dkim)
    for (const auto& s : *j.inputs.dkim)
      dkim += fmt::format("{}{}:{}", dkim.empty() ? "" : ",", token(s.domain), auth_result_name(s.result));
  const auto& spf = j.inputs.spf;
  return fmt::format(
      "id={} source_ip={} header_from={} policy_domain={} p={} sp={} pct={} adkim={} aspf={} disposition={} dmarc={} "
      "spf={} spf_domain={} spf_scope={} spf_aligned={} dkim={} dkim_aligned={} override={} detail={}",
      token(session_id), ip.str(), token(j.from.domain), token(j.discovery.policy_domain), found ? policy_name(r.p) : "-",
      found ? policy_name(r.subdomain_policy()) : "-", found ? std::to_string(r.pct) : "-",
      found ? (r.adkim == Alignment::Strict ? "s" : "r") : "-", found ? (r.aspf == Alignment::Strict ? "s" : "r") : "-",
      policy_name(d.wanted), result_name(j.eval.result), spf ? auth_result_name(spf->result) : "none",
      token(spf ? spf->domain : ""), !spf ? "-" : spf->helo_identity ? "helo" : "mfrom", j.eval.spf_aligned ? "yes" : "no", dkim.empty() ? "-" : dkim,
      j.eval.dkim_aligned ? "yes" : "no", token(d.override_reason),
      core::quoted_for_log(multiple_from(j.from) ? j.from.detail : j.eval.detail));
}

Verdict verdict_for(std::string_view authserv_id, const Judgement& j, const Decision& d) {
  Verdict v;
  v.action = d.action;
  v.reply = d.reply;
  v.add_headers.push_back({"Authentication-Results", auth_results(authserv_id, j, d)});
  v.reason = fmt::format("dmarc={} disposition={}{}", result_name(j.eval.result), policy_name(d.applied),
                         d.override_reason.empty() ? "" : " override=" + d.override_reason);
  if (d.applied == Policy::Quarantine) {
    v.score = d.score;
    v.tags.push_back(fmt::format("DMARC_QUARANTINE={:g}", d.score));
  }
  return v;
}

}  // namespace dmarc

namespace {

using DnsContext = CachedDns;  // filters/cached_dns.h
constexpr auto resolve = resolve_cached;

unsigned draw() {  // uniform 0..99, for pct
  thread_local std::mt19937 gen{std::random_device{}()};
  return std::uniform_int_distribution<unsigned>(0, 99)(gen);
}

void count(const dmarc::Judgement& j, const dmarc::Decision& d) {
  core::count(core::labeled_counter("dmarc_results_total", core::labels({{"result", dmarc::result_name(j.eval.result)}})));
  core::count(core::labeled_counter("dmarc_dispositions_total",
                                    core::labels({{"disposition", dmarc::policy_name(d.applied)}})));
}

}  // namespace

DmarcFilter::DmarcFilter(dmarc::Settings cfg, std::string authserv_id, std::shared_ptr<const dmarc::PublicSuffixList> psl,
                         std::shared_ptr<net::DnsCache> cache) {
  auto s = std::make_shared<Shared>();
  s->cache = std::move(cache);
  s->psl = std::move(psl);
  s->dns.servers = cfg.dns_servers;
  s->dns.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.query_timeout);
  s->dns.tries = cfg.tries;
  s->cfg = std::move(cfg);
  s->authserv_id = std::move(authserv_id);
  s_ = std::move(s);
}

asio::awaitable<Verdict> DmarcFilter::check(Phase, std::shared_ptr<const Context> ctx) {
  auto s = s_;  // the settings stay with this check even if the filter goes (reload)
  if (ctx->authenticated || !ctx->message) co_return Verdict::cont();  // our own users are never judged
  dmarc::Judgement j;
  j.from = dmarc::from_domain(*ctx->message);
  j.trusted_client = std::any_of(s->cfg.trusted_forwarders.begin(), s->cfg.trusted_forwarders.end(),
                                 [&](const core::Cidr& c) { return c.contains(ctx->client_ip); });
  if (ctx->auth) {
    j.inputs.spf = ctx->auth->spf();
    j.inputs.dkim = ctx->auth->dkim();
  }
  j.inputs.null_sender = ctx->sender.null();
  if (j.from.status == dmarc::FromDomain::Status::Ok) {
    j.inputs.from_domain = j.from.domain;
    j.override_domain = dmarc::domain_listed(j.from.domain, s->cfg.override_domains);
    auto dns = std::make_shared<DnsContext>();
    dns->options = s->dns;
    dns->cache = s->cache;
    dns->cache_size = s->cfg.cache_size;
    dns->max_ttl = std::chrono::duration_cast<std::chrono::seconds>(s->cfg.max_ttl);
    dns->cancel = ctx->cancel;
    dmarc::Lookup lookup = [dns = std::shared_ptr<const DnsContext>(dns)](std::string name, net::DnsType t) {
      return resolve(dns, std::move(name), t);
    };
    j.discovery = co_await dmarc::discover(j.from.domain, s->psl->organizational_domain(j.from.domain), std::move(lookup));
    j.eval = dmarc::evaluate(j.discovery, j.inputs, *s->psl, draw());
    // spf and dkim run before dmarc (the config requires it); one that recorded nothing did not
    // complete (its timeout, an error, with on_error "continue"). What it would have found is
    // unknown, so a failure is a temperror then, never a reject.
    if (j.eval.result == dmarc::Result::Fail && ctx->auth && (!j.inputs.spf || !j.inputs.dkim)) {
      j.eval.result = dmarc::Result::TempError;
      j.eval.detail = std::string(!j.inputs.spf ? "spf" : "dkim") + " did not complete: " + j.eval.detail;
    }
  } else {
    j.eval.result = dmarc::Result::PermError;
    j.eval.detail = j.from.detail;
  }
  dmarc::Decision d = dmarc::decide(s->cfg, j);
  count(j, d);
  core::log().info("dmarc {}", dmarc::report_fields(ctx->session_id, ctx->client_ip, j, d));
  co_return dmarc::verdict_for(s->authserv_id, j, d);
}

}  // namespace filters
