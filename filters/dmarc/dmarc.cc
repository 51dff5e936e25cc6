// The DMARC core (dmarc.h): policy discovery over the abstract lookup and the evaluation.
#include "filters/dmarc/dmarc.h"

#include <fmt/format.h>

namespace filters::dmarc {

std::string_view result_name(Result r) { return auth_result_name(auth_result(r)); }

AuthResult auth_result(Result r) {
  switch (r) {
    case Result::None: return AuthResult::None;
    case Result::Pass: return AuthResult::Pass;
    case Result::Fail: return AuthResult::Fail;
    case Result::TempError: return AuthResult::TempError;
    case Result::PermError: return AuthResult::PermError;
  }
  return AuthResult::None;
}

// ---- discovery ----

Discovery discover_level(const net::DnsAnswer& answer, const std::string& domain) {
  Discovery d;
  if (answer.status == net::DnsStatus::Timeout || answer.status == net::DnsStatus::Failure) {
    d.status = Discovery::Status::TempError;
    d.detail = fmt::format("_dmarc.{} lookup failed: {}", domain,
                           answer.error.empty() ? std::string(net::dns_status_name(answer.status)) : answer.error);
    return d;
  }
  if (answer.status != net::DnsStatus::Ok) return d;
  std::vector<std::string> records;
  for (const auto& t : answer.txt)
    if (is_dmarc_record(t)) records.push_back(t);
  if (records.empty()) return d;
  if (records.size() > 1) {
    d.detail = fmt::format("{} DMARC records at _dmarc.{}", records.size(), domain);
    return d;
  }
  std::string error;
  auto r = parse_record(records.front(), error);
  if (!r) {
    d.status = Discovery::Status::PermError;
    d.policy_domain = domain;
    d.detail = fmt::format("invalid DMARC record at _dmarc.{}: {}", domain, error);
    return d;
  }
  d.status = Discovery::Status::Found;
  d.record = std::move(*r);
  d.policy_domain = domain;
  return d;
}

boost::asio::awaitable<Discovery> discover(std::string from_domain, std::string org_domain, Lookup lookup) {
  net::DnsAnswer a = co_await lookup("_dmarc." + from_domain, net::DnsType::TXT);
  Discovery d = discover_level(a, from_domain);
  if (d.status != Discovery::Status::None || !d.detail.empty() || org_domain == from_domain) co_return d;
  a = co_await lookup("_dmarc." + org_domain, net::DnsType::TXT);
  d = discover_level(a, org_domain);
  d.organizational = d.status == Discovery::Status::Found;
  co_return d;
}

// ---- evaluation ----

Evaluation evaluate(const Discovery& d, const Inputs& in, const PublicSuffixList& psl, unsigned draw) {
  Evaluation e;
  if (d.status == Discovery::Status::TempError) {
    e.result = Result::TempError;
    e.detail = d.detail;
    return e;
  }
  if (d.status == Discovery::Status::PermError) {
    e.result = Result::PermError;
    e.detail = d.detail;
    return e;
  }
  if (d.status == Discovery::Status::None) {
    e.result = Result::None;
    e.detail = d.detail.empty() ? "no DMARC record" : d.detail;
    return e;
  }
  const Record& r = d.record;
  e.requested = d.organizational && in.from_domain != d.policy_domain ? r.subdomain_policy() : r.p;
  bool temp = false;  // a temperror of an aligned identifier
  // the SPF-authenticated identifier: MAIL FROM's domain, or the HELO name for the null sender only
  bool spf_counts = in.spf && in.spf->helo_identity == in.null_sender;
  if (spf_counts && aligned(in.spf->domain, in.from_domain, r.aspf, psl)) {
    e.spf_aligned = in.spf->result == AuthResult::Pass;
    temp |= in.spf->result == AuthResult::TempError;
  }
  if (in.dkim)
    for (const auto& s : *in.dkim) {
      if (!aligned(s.domain, in.from_domain, r.adkim, psl)) continue;
      e.dkim_aligned |= s.result == AuthResult::Pass;
      temp |= s.result == AuthResult::TempError;
    }
  if (e.spf_aligned || e.dkim_aligned) {
    e.result = Result::Pass;
    e.detail = !e.spf_aligned ? "aligned DKIM pass" : in.null_sender ? "aligned SPF pass (HELO identity)" : "aligned SPF pass";
    return e;
  }
  if (temp) {
    e.result = Result::TempError;
    e.detail = "temporary error on an aligned SPF or DKIM identifier";
    return e;
  }
  e.result = Result::Fail;
  e.disposition = e.requested;
  if (r.pct < 100 && draw >= r.pct && e.disposition != Policy::None) {
    e.disposition = weaker(e.disposition);
    e.sampled_out = true;
  }
  e.detail = "no aligned SPF or DKIM pass";
  return e;
}

}  // namespace filters::dmarc
