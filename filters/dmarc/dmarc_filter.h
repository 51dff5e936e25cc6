// The dmarc filter: RFC 7489 at Phase::Data, after spf (and dkim) in the chain. It reads their
// results from Context::auth (unset SPF = none, unset DKIM = no signatures), the From domain from
// the message's top-level header block, and the _dmarc policy over non-blocking DNS
// (net::Resolver on dmarc.dns_servers, answers cached by TTL in its own net::DnsCache).
// Authenticated clients are not checked. Enforcement: fail + p=reject -> 550 5.7.1, quarantine ->
// score dmarc.score_quarantine + tag DMARC_QUARANTINE, none -> recorded; several From addresses
// -> permerror, 550 5.7.1 when dmarc.reject_multiple_from. Never refused (logged as
// override=...): dmarc.monitor_only, From domains in dmarc.override_domains, clients in
// dmarc.trusted_forwarders. A temperror (DNS, or an aligned SPF/DKIM temperror) is never a 5xx:
// relayed, or 451 4.7.1 with dmarc.on_temperror = "tempfail".
// Every message judged gets one Authentication-Results field, a report log line ("dmarc id=...",
// docs/filters.md) and the counters dmarc_results_total / dmarc_dispositions_total.
#pragma once
#include <memory>
#include <string>

#include "filters/dmarc/dmarc.h"
#include "filters/dmarc/settings.h"
#include "filters/filter.h"
#include "filters/auth_results.h"  // carries_authserv_id
#include "net/dns.h"
#include "net/dns_cache.h"

namespace filters {

namespace dmarc {

// Everything found about one message (what the verdict is made from).
struct Judgement {
  FromDomain from;
  Discovery discovery;
  Evaluation eval;
  Inputs inputs;
  bool trusted_client = false;   // the client is in dmarc.trusted_forwarders
  bool override_domain = false;  // the From domain is in dmarc.override_domains
};

// What the filter does about it (pure).
struct Decision {
  Action action = Action::Continue;
  std::optional<core::Reply> reply;
  Policy applied = Policy::None;  // the disposition applied (none when overridden)
  Policy wanted = Policy::None;   // what the policy asked for (the would-be disposition)
  std::string override_reason;    // "" or monitor_only, trusted_forwarder, local_policy, sampled_out
  double score = 0;
};
Decision decide(const Settings& s, const Judgement& j);

// Whether `domain` is one of `list` or a subdomain of one (case-insensitive).
bool domain_listed(std::string_view domain, const std::vector<std::string>& list);
// "<id>; dmarc=<result> (p=<p> sp=<sp> dis=<DIS>[ policy.override=<r>]) header.from=<domain>".
std::string auth_results(std::string_view authserv_id, const Judgement& j, const Decision& d);
// The aggregate-report log line (without the leading "dmarc "): fixed key=value pairs.
std::string report_fields(std::string_view session_id, const core::IpAddress& ip, const Judgement& j, const Decision& d);
Verdict verdict_for(std::string_view authserv_id, const Judgement& j, const Decision& d);

}  // namespace dmarc

class DmarcFilter final : public Filter {
 public:
  DmarcFilter(dmarc::Settings cfg, std::string authserv_id, std::shared_ptr<const dmarc::PublicSuffixList> psl,
              std::shared_ptr<net::DnsCache> cache = nullptr);
  std::string_view name() const override { return "dmarc"; }
  bool wants(Phase p) const override { return p == Phase::Data; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

 private:
  struct Shared {
    dmarc::Settings cfg;
    std::string authserv_id;
    std::shared_ptr<const dmarc::PublicSuffixList> psl;
    net::DnsOptions dns;
    std::shared_ptr<net::DnsCache> cache;  // may be null: no caching
  };
  std::shared_ptr<const Shared> s_;
};

}  // namespace filters
