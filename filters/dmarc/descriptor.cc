// The dmarc filter as the program sees it: the [dmarc] rows, the requirement that spf comes
// before dmarc in every profile listing it, the filter built per generation with the public
// suffix list read from dmarc.public_suffix_list (at start and on every reload; a missing or
// empty file makes the generation invalid), its authserv-id (server.authserv_id, else
// server.hostname) and the answer cache kept in Resources across generations, the owned
// Authentication-Results fields carrying that id, and the dmarc_* counter families.
#include "filters/dmarc/descriptor.h"

#include <algorithm>

#include "config/setters.h"
#include "filters/cached_dns.h"
#include "filters/dmarc/dmarc_filter.h"

namespace filters::dmarc {
namespace {
using namespace config::setters;
using config::Config;
constexpr const char* kName = "dmarc";

std::vector<config::Parameter> rows() {
  return {
      {"dmarc", "dns_servers", "list", "[]", "DNS servers for the _dmarc lookups, \"ip:port\" / \"[ipv6]:port\"; empty = /etc/resolv.conf.",
       host_port_list(field(kName, &Settings::dns_servers), true)},
      {"dmarc", "query_timeout", "seconds", "2", "Per DNS query try; a _dmarc lookup that does not answer makes the result temperror (never none).",
       seconds_param(field(kName, &Settings::query_timeout), 0.01, 60)},
      {"dmarc", "tries", "integer", "2", "DNS tries per query.", size_param(field(kName, &Settings::tries), 1, 10)},
      {"dmarc", "cache_size", "integer", "10000", "DMARC DNS answers cached for their TTL (the filter's own cache); 0 disables it. Timeouts and failures are never cached.",
       size_param(field(kName, &Settings::cache_size), 0, 10000000)},
      {"dmarc", "max_ttl", "seconds", "3600", "Longest time a DMARC DNS answer is cached, whatever its TTL.",
       seconds_param(field(kName, &Settings::max_ttl), 0, 86400)},
      {"dmarc", "authserv_id", "string", "", "Alias of server.authserv_id (spf, dkim and dmarc write one Authentication-Results field): a value other than the one given there is a config error.",
       authserv_id_param()},
      {"dmarc", "public_suffix_list", "string", "\"/usr/share/publicsuffix/public_suffix_list.dat\"",
       "The public suffix list (organisational domains), read at start and on reload; a missing or empty file is a config error.",
       string_param(field(kName, &Settings::public_suffix_list))},
      {"dmarc", "monitor_only", "boolean", "false", "First rollout: no DMARC result refuses, tempfails or scores a message; the would-be disposition is logged (override=monitor_only).",
       bool_param(field(kName, &Settings::monitor_only))},
      {"dmarc", "override_domains", "list", "[]", "From domains (and their subdomains) whose policy is never enforced here (local policy; logged override=local_policy).",
       list_param(field(kName, &Settings::override_domains))},
      {"dmarc", "trusted_forwarders", "list", "[]", "Client addresses / CIDR ranges (forwarders, mailing lists) whose mail is never refused or scored by DMARC (logged override=trusted_forwarder).",
       cidr_list(field(kName, &Settings::trusted_forwarders))},
      {"dmarc", "score_quarantine", "number", "5", "Score added (tag DMARC_QUARANTINE) when the policy asks for quarantine.",
       number_param(field(kName, &Settings::score_quarantine), -1000, 1000)},
      {"dmarc", "on_temperror", "string", "none", "DMARC temperror (DNS timeout/SERVFAIL, or an aligned SPF/DKIM temperror): \"none\" (relay, recorded) or \"tempfail\" (451 4.7.1); never a 5xx.",
       enum_param(field(kName, &Settings::on_temperror),
                  std::vector<std::pair<std::string, OnTempError>>{{"none", OnTempError::None}, {"tempfail", OnTempError::TempFail}})},
      {"dmarc", "reject_multiple_from", "boolean", "true", "A message with several From fields or several addresses in From (dmarc=permerror) is refused 550 5.7.1.",
       bool_param(field(kName, &Settings::reject_multiple_from))},
  };
}

// dmarc reads the spf filter's result: spf must come earlier in every profile listing dmarc.
// dmarc reads what spf and dkim recorded for the transaction (filters/sender_auth.h): both must run
// before it, or a message signed by its own domain would look unauthenticated and be refused.
std::string spf_and_dkim_before_dmarc(const Config& c) {
  for (const auto& p : c.profiles) {
    auto dmarc = std::find(p.filters.begin(), p.filters.end(), kName);
    if (dmarc == p.filters.end()) continue;
    for (const char* needed : {"spf", "dkim"})
      if (std::find(p.filters.begin(), dmarc, needed) == dmarc)
        return fmt::format("profile.{}.filters lists dmarc without {} before it (dmarc reads the spf and dkim results)",
                           p.name, needed);
  }
  return "";
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(10), config::OnError::Continue};  // DNS trouble must not stop mail
  d.schema.rows = rows();
  d.schema.required = spf_and_dkim_before_dmarc;
  d.build = [](const BuildContext& b) -> Built {
    const auto& s = b.config->sections.get<Settings>(kName);
    std::string error;
    auto psl = PublicSuffixList::load(s.public_suffix_list, error);
    if (!psl) return {nullptr, "dmarc.public_suffix_list: " + error};
    // one answer cache for every generation (a reload keeps what was learnt)
    auto cache = b.resources.keep<net::DnsCache>("dmarc.dns_cache", [] { return std::make_shared<net::DnsCache>(); });
    return {std::make_shared<DmarcFilter>(s, filters::authserv_id(*b.config), std::move(psl), std::move(cache)), {}};
  };
  d.owned_headers = [](const BuildContext& b) -> std::vector<OwnedHeader> {
    return {{"Authentication-Results", [id = filters::authserv_id(*b.config)](std::string_view v) { return carries_authserv_id(v, id); }}};
  };
  d.dependencies = [](const BuildContext& b) {  // its DNS servers (shared with spf/dkim/dmarc: one row each in /health)
    const auto& s = b.config->sections.get<Settings>(kName);
    return dns_server_dependencies(s.dns_servers, std::chrono::duration_cast<std::chrono::milliseconds>(s.query_timeout));
  };
  d.metrics = {{"dmarc_results_total", "DMARC results of the dmarc filter (RFC 7489), by result."},
               {"dmarc_dispositions_total", "Dispositions the dmarc filter applied (none when overridden or monitor only), by disposition."}};
  return d;
}

}  // namespace filters::dmarc
