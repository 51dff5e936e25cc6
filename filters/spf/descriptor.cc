// The spf filter as the program sees it: the [spf] rows, the filter built per generation with
// its authserv-id (server.authserv_id, else server.hostname) and the answer cache kept in
// Resources across generations, the owned Authentication-Results
// fields carrying that id, and the spf_results_total counter family.
#include "filters/spf/descriptor.h"

#include "config/setters.h"
#include "filters/cached_dns.h"
#include "filters/spf/spf_filter.h"

namespace filters::spf {
namespace {
using namespace config::setters;
using config::Listener;
constexpr const char* kName = "spf";

template <class Get>
Setter policy(Get get, bool temperror) {
  std::vector<std::pair<std::string, Policy>> names = {{"none", Policy::None}, {"tempfail", Policy::TempFail}};
  if (!temperror) {
    names.emplace_back("score", Policy::Score);
    names.emplace_back("reject", Policy::Reject);
  }
  return enum_param(get, names);
}

std::vector<config::Parameter> rows() {
  return {
      {"spf", "dns_servers", "list", "[]", "DNS servers for the SPF lookups, \"ip:port\" / \"[ipv6]:port\"; empty = /etc/resolv.conf.",
       host_port_list(field(kName, &Settings::dns_servers), true)},
      {"spf", "query_timeout", "seconds", "2", "Per DNS query try; a lookup that does not answer makes the result temperror.",
       seconds_param(field(kName, &Settings::query_timeout), 0.01, 60)},
      {"spf", "tries", "integer", "2", "DNS tries per query.", size_param(field(kName, &Settings::tries), 1, 10)},
      {"spf", "cache_size", "integer", "10000", "SPF DNS answers cached (by type and name) for their TTL, apart from the rbl cache; 0 disables the cache. Timeouts and failures are never cached.",
       size_param(field(kName, &Settings::cache_size), 0, 10000000)},
      {"spf", "max_ttl", "seconds", "3600", "Longest time an SPF DNS answer is cached, whatever its TTL.",
       seconds_param(field(kName, &Settings::max_ttl), 0, 86400)},
      {"spf", "authserv_id", "string", "", "Alias of server.authserv_id (spf, dkim and dmarc write one Authentication-Results field): a value other than the one given there is a config error.",
       authserv_id_param()},
      {"spf", "on_fail", "string", "score", "SPF fail: \"score\" (add score_fail), \"reject\" (every RCPT refused 550 5.7.23), \"tempfail\" (451 4.7.23) or \"none\" (header only).",
       policy(field(kName, &Settings::on_fail), false)},
      {"spf", "on_softfail", "string", "score", "SPF softfail: \"score\" (add score_softfail), \"reject\" (550 5.7.23), \"tempfail\" (451 4.7.23) or \"none\".",
       policy(field(kName, &Settings::on_softfail), false)},
      {"spf", "on_permerror", "string", "none", "SPF permerror (broken record): \"none\", \"score\" (add score_permerror), \"reject\" (550 5.7.24) or \"tempfail\" (451 4.7.24).",
       policy(field(kName, &Settings::on_permerror), false)},
      {"spf", "on_temperror", "string", "none", "SPF temperror (DNS timeout/SERVFAIL): \"none\" (relay, recorded in the header) or \"tempfail\" (451 4.7.24); never a 5xx.",
       policy(field(kName, &Settings::on_temperror), true)},
      {"spf", "score_fail", "number", "3", "Score added for fail when on_fail = \"score\".", number_param(field(kName, &Settings::score_fail), -1000, 1000)},
      {"spf", "score_softfail", "number", "1", "Score added for softfail when on_softfail = \"score\".",
       number_param(field(kName, &Settings::score_softfail), -1000, 1000)},
      {"spf", "score_permerror", "number", "0", "Score added for permerror when on_permerror = \"score\".",
       number_param(field(kName, &Settings::score_permerror), -1000, 1000)},
      {"spf", "report_only", "boolean", "false", "First rollout: no result refuses or tempfails a recipient; what the policy would have done is logged (\"report only: would reject\"). Scores and headers stay.",
       bool_param(field(kName, &Settings::report_only))},
  };
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(10), config::OnError::Continue};  // DNS trouble must not stop mail
  d.schema.judges_recipients = true;  // refuses at RcptTo: before relay_control (config/parameters.h)
  d.schema.rows = rows();
  d.build = [](const BuildContext& b) -> Built {
    // one answer cache for every generation (a reload keeps what was learnt)
    auto cache = b.resources.keep<net::DnsCache>("spf.dns_cache", [] { return std::make_shared<net::DnsCache>(); });
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(b.config->filters.of(kName).timeout);
    return {std::make_shared<SpfFilter>(b.config->sections.get<Settings>(kName), filters::authserv_id(*b.config), timeout,
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
  d.metrics = {{"spf_results_total", "SPF results of the spf filter (RFC 7208), by result."}};
  return d;
}

}  // namespace filters::spf
