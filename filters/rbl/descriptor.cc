// The rbl filter as the program sees it: the [rbl] and [[rbl.zone]] rows, the requirement of at
// least one zone, the filter built on the shared DNS cache, and one health check per zone (its
// RFC 5782 test point).
#include "filters/rbl/descriptor.h"

#include <set>

#include "config/setters.h"
#include "core/domain.h"
#include "core/ip.h"
#include "filters/rbl/rbl.h"

namespace filters::rbl {
namespace {
using namespace config::setters;
using config::Config;
using config::Listener;
constexpr const char* kName = "rbl";

Zone& zone(Config& c) { return c.sections.edit<Settings>(kName).zones.back(); }

std::optional<uint32_t> ipv4(std::string_view s) {
  auto ip = core::IpAddress::parse(s);
  if (!ip || ip->is_v6()) return std::nullopt;
  const auto& b = ip->bytes();
  return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
}

std::string set_zone_codes(Config& c, Listener&, const toml::node& n) {
  std::string err;
  auto list = string_list(n, err);
  if (!err.empty()) return err;
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const auto& s : list) {
    size_t dash = s.find('-');
    auto lo = ipv4(s.substr(0, dash));
    auto hi = dash == std::string::npos ? lo : ipv4(s.substr(dash + 1));
    if (!lo || !hi || *hi < *lo) return fmt::format("'{}' is not an address or \"a.b.c.d-a.b.c.e\" range", s);
    out.emplace_back(*lo, *hi);
  }
  zone(c).codes = std::move(out);
  return {};
}

std::string set_zone_name(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || s->empty()) return "expected a DNS zone name such as \"zen.example.org\"";
  if (!core::valid_domain(*s, core::DomainRules::Dns)) return fmt::format("'{}' is not a DNS zone name", *s);
  zone(c).zone = *s;
  return {};
}

std::string check_zone(const Config& c) {
  const Zone& z = c.sections.get<Settings>(kName).zones.back();
  if (z.kind == ZoneKind::Allow && z.action == ZoneAction::Reject)
    return fmt::format("zone '{}': an allow zone cannot reject", z.zone);
  return {};
}

std::vector<config::Parameter> rows() {
  auto zf = [](auto member) { return last_field(kName, &Settings::zones, member); };
  return {
      {"rbl", "servers", "list", "[]", "DNS servers for the lists, \"ip:port\" / \"[ipv6]:port\"; empty = /etc/resolv.conf.",
       host_port_list(field(kName, &Settings::servers), true)},
      {"rbl", "query_timeout", "seconds", "2", "Per DNS query try; a zone that does not answer is skipped and counted (fail open).",
       seconds_param(field(kName, &Settings::query_timeout), 0.01, 60)},
      {"rbl", "tries", "integer", "2", "DNS tries per query.", size_param(field(kName, &Settings::tries), 1, 10)},
      {"rbl", "allow", "list", "[]", "Client addresses/CIDRs that skip every blocklist (static allowlist).",
       cidr_list(field(kName, &Settings::allow))},
      {"rbl", "cache_size", "integer", "10000", "DNS answers cached (by query name) for their TTL; 0 disables the cache.",
       size_param(field(kName, &Settings::cache_size), 0, 10000000)},
      {"rbl", "max_ttl", "seconds", "3600", "Longest time an answer is cached, whatever its TTL.",
       seconds_param(field(kName, &Settings::max_ttl), 0, 86400)},
      {"rbl.zone", "zone", "string", "(required)", "[[rbl.zone]]: the list's DNS zone, e.g. \"zen.example.org\". One [[rbl.zone]] table per list.", set_zone_name},
      {"rbl.zone", "kind", "string", "ip", "[[rbl.zone]]: \"ip\" (client address, IPv4 octets or IPv6 nibbles reversed), \"domain\" (RHSBL: envelope sender domain) or \"allow\" (DNSWL: a listed client skips the blocklists).",
       enum_param(zf(&Zone::kind), std::vector<std::pair<std::string, ZoneKind>>{{"ip", ZoneKind::Ip}, {"domain", ZoneKind::Domain}, {"allow", ZoneKind::Allow}})},
      {"rbl.zone", "weight", "number", "1", "[[rbl.zone]]: score added when listed (action \"score\").",
       number_param(zf(&Zone::weight), -1000, 1000)},
      {"rbl.zone", "action", "string", "score", "[[rbl.zone]]: \"reject\" (554 5.7.1 naming the list and its TXT reason) or \"score\" (add weight).",
       enum_param(zf(&Zone::action), std::vector<std::pair<std::string, ZoneAction>>{{"score", ZoneAction::Score}, {"reject", ZoneAction::Reject}})},
      {"rbl.zone", "codes", "list", "[] (any 127.0.0.0/8)", "[[rbl.zone]]: answers honoured: addresses or ranges \"127.0.0.2-127.0.0.11\"; empty = any 127.0.0.0/8 answer except 127.255.255.0/24 (list errors).", set_zone_codes},
      {"rbl.zone", "servers", "list", "[] (rbl.servers)", "[[rbl.zone]]: DNS servers for this list only, \"ip:port\"; empty = rbl.servers.",
       host_port_list(zf(&Zone::servers), true)},
  };
}

// One dependency per zone name: its test point, through the zone's servers, on the monitor's
// thread (zone_check is blocking and bounded).
std::vector<core::Dependency> dependencies(const BuildContext& b) {
  auto s = std::make_shared<const Settings>(b.config->sections.get<Settings>(kName));
  std::vector<core::Dependency> deps;
  std::set<std::string> seen;
  for (const auto& z : s->zones) {
    if (!seen.insert(z.zone).second) continue;
    deps.push_back({"dns", z.zone, [&z, s] { return zone_check(z, *s); }});
  }
  return deps;
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(10), config::OnError::Continue};  // a dead list must not stop mail
  d.schema.rows = rows();
  d.schema.arrays = {{"rbl.zone", [](Config& c) { c.sections.edit<Settings>(kName).zones.emplace_back(); }, {"zone"}, check_zone}};
  d.schema.required = [](const Config& c) -> std::string {
    return c.sections.get<Settings>(kName).zones.empty() ? "at least one [[rbl.zone]] is required" : "";
  };
  d.build = [](const BuildContext& b) -> Built {
    return {std::make_shared<Rbl>(b.config->sections.get<Settings>(kName), b.resources.dns_cache), {}};
  };
  d.dependencies = dependencies;
  return d;
}

}  // namespace filters::rbl
