// The dkim filter as the program sees it: the [dkim] rows, the filter built per generation with
// its authserv-id (server.authserv_id, else server.hostname), the shared worker pool and the key
// cache kept in Resources across generations, the owned Authentication-Results fields carrying
// that id, and the dkim_results_total counter family.
#include "filters/dkim/descriptor.h"

#include "config/setters.h"
#include "filters/auth_results.h"
#include "filters/cached_dns.h"
#include "filters/dkim/dkim_filter.h"

namespace filters::dkim {
namespace {
using namespace config::setters;
constexpr const char* kName = "dkim";

std::vector<config::Parameter> rows() {
  return {
      {"dkim", "dns_servers", "list", "[]", "DNS servers for the DKIM key lookups, \"ip:port\" / \"[ipv6]:port\"; empty = /etc/resolv.conf.",
       host_port_list(field(kName, &Settings::dns_servers), true)},
      {"dkim", "query_timeout", "seconds", "2", "Per DNS query try; a key lookup that does not answer makes the signature's result temperror.",
       seconds_param(field(kName, &Settings::query_timeout), 0.01, 60)},
      {"dkim", "tries", "integer", "2", "DNS tries per key query.", size_param(field(kName, &Settings::tries), 1, 10)},
      {"dkim", "cache_size", "integer", "10000", "DKIM key answers cached (by name) for their TTL, apart from the other caches; 0 disables the cache. Timeouts and failures are never cached.",
       size_param(field(kName, &Settings::cache_size), 0, 10000000)},
      {"dkim", "max_ttl", "seconds", "3600", "Longest time a DKIM key answer is cached, whatever its TTL.",
       seconds_param(field(kName, &Settings::max_ttl), 0, 86400)},
      {"dkim", "authserv_id", "string", "", "Alias of server.authserv_id (spf, dkim and dmarc write one Authentication-Results field): a value other than the one given there is a config error.",
       authserv_id_param()},
      {"dkim", "max_signatures", "integer", "5", "Signatures verified per message (top first); the others are reported neutral (not checked).",
       size_param(field(kName, &Settings::max_signatures), 1, 50)},
      {"dkim", "min_rsa_bits", "integer", "1024", "Shortest RSA key accepted; shorter keys give the result policy (never pass). Keys over 4096 bits are refused too.",
       size_param(field(kName, &Settings::min_rsa_bits), 512, 4096)},
      {"dkim", "score_pass", "number", "0", "Score added per signature that passes (negative to reward signed mail).",
       number_param(field(kName, &Settings::score_pass), -1000, 1000)},
      {"dkim", "score_fail", "number", "0", "Score added per signature that fails (bad signature or body hash, revoked key).",
       number_param(field(kName, &Settings::score_fail), -1000, 1000)},
      {"dkim", "score_policy", "number", "0", "Score added per signature refused by policy (rsa-sha1, short RSA key, expired x=).",
       number_param(field(kName, &Settings::score_policy), -1000, 1000)},
      {"dkim", "score_permerror", "number", "0", "Score added per signature with a permanent error (syntax, no key, malformed key).",
       number_param(field(kName, &Settings::score_permerror), -1000, 1000)},
  };
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(10), config::OnError::Continue};  // DNS trouble must not stop mail
  d.schema.rows = rows();
  d.build = [](const BuildContext& b) -> Built {
    // one key cache for every generation (a reload keeps what was learnt)
    auto cache = b.resources.keep<net::DnsCache>("dkim.dns_cache", [] { return std::make_shared<net::DnsCache>(); });
    return {std::make_shared<DkimFilter>(b.config->sections.get<Settings>(kName), filters::authserv_id(*b.config), b.resources.workers,
                                         std::move(cache)),
            {}};
  };
  d.owned_headers = [](const BuildContext& b) -> std::vector<OwnedHeader> {
    return {{"Authentication-Results", [id = filters::authserv_id(*b.config)](std::string_view v) { return carries_authserv_id(v, id); }}};
  };
  d.dependencies = [](const BuildContext& b) {  // its DNS servers (shared with spf/dkim/dmarc: one row each in /health)
    const auto& s = b.config->sections.get<Settings>(kName);
    return dns_server_dependencies(s.dns_servers, std::chrono::duration_cast<std::chrono::milliseconds>(s.query_timeout));
  };
  d.metrics = {{"dkim_results_total", "DKIM results of the dkim filter (RFC 6376), one per signature (none: unsigned), by result."}};
  return d;
}

}  // namespace filters::dkim
