// The DNS list filter (rbl), judged at MailFrom:
//  * connect() starts the client's lookups in every "ip" and "allow" zone at once (A record, then
//    the TXT of a listed client in a "reject" zone), so DNS latency overlaps the SMTP dialogue;
//  * the check awaits them and the RHSBL lookups of the envelope sender's domain ("domain" zones;
//    none for the null sender). A client in rbl.allow or listed in an "allow" zone skips every
//    blocklist. A listing in a "reject" zone answers 554 5.7.1 with the TXT reason; "score" zones
//    add their weight and a tag (RBL_ZEN_EXAMPLE_ORG=3) — the chain sums and judges the score;
//  * a zone that times out or fails is skipped (fail open): counted (rbl_zone_failures) and logged
//    at warn; NXDOMAIN means "not listed". Answers are cached (net::DnsCache, from Resources).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.h"
#include "filters/rbl/settings.h"
#include "filters/filter.h"
#include "net/dns.h"
#include "net/dns_cache.h"

namespace filters {

namespace rbl {
using Codes = std::vector<std::pair<uint32_t, uint32_t>>;

// The reversed form used in DNS list queries: "2.0.0.127" for 127.0.0.2, 32 dot-separated nibbles
// for IPv6 (an IPv4-mapped ::ffff:a.b.c.d is an IPv4 core::IpAddress, so it gets the IPv4 form).
std::string reverse_name(const core::IpAddress& ip);
// Whether answer `a` (host order) counts as a listing: inside one of `codes`, or, with no codes,
// inside 127.0.0.0/8 but not 127.255.255.0/24 (the lists' error answers).
bool code_honoured(const Codes& codes, uint32_t a);
std::string ipv4_text(uint32_t a);  // host order -> "127.0.0.2"
// The X-Spam-Report tag of a zone: "RBL_" (ip zones) or "RHSBL_" (domain zones) + the zone name
// upper-cased with every non-alphanumeric character turned into '_'.
std::string tag_name(const rbl::Zone& z);
// Whether `d` can be looked up under a zone: core::valid_domain(d, DomainRules::Dns) (a plain host
// name, '_' tolerated, no address literal).
bool valid_domain(std::string_view d);

struct ZoneResult {
  enum class Status { NotListed, Listed, Failed } status = Status::NotListed;
  uint32_t code = 0;    // the honoured answer when Listed
  std::string txt;      // the TXT reason (reject zones), may be empty
  std::string detail;   // Failed: why; NotListed: e.g. "127.0.0.11 not in codes"
};
// The meaning of an A answer for zone `z` (pure).
ZoneResult judge(const rbl::Zone& z, const net::DnsAnswer& a);

// The RFC 5782 test point of zone `z`: "2.0.0.127.<zone>" (ip, allow), "test.<zone>" (domain).
std::string test_point(const rbl::Zone& z);
// What an A answer for the test point says about the list (pure): "" when it lists the test
// point (an answer in 127.0.0.0/8 outside 127.255.255.0/24, whatever the zone's codes), else
// the error: NXDOMAIN/NODATA "test point 127.0.0.2 not listed (list empty or not serving)",
// the lists' error answers (127.255.255.x: the list refuses our queries), timeouts, failures.
std::string judge_test_point(const rbl::Zone& z, const net::DnsAnswer& a);
// The dependency health check of one zone (ops::DependencyMonitor, kind "dns", name = the zone):
// an A query for its test point through the zone's servers (else rbl.servers; c-ares reads
// /etc/resolv.conf only when neither is set, as the filter does), on a private io_context run by
// the CALLING thread — blocking, never on an I/O thread. Bounded: each try waits
// min(rbl.query_timeout, 2 s), at most 2 tries, and the whole check gives up after the c-ares
// rounds plus a margin. "" = healthy, else the error. For an ip/allow zone whose IPv4 test point
// is not there, the IPv6 one (::ffff:127.0.0.2, nibble form) is tried too: an IPv6-only list is
// healthy when it lists that.
std::string zone_check(const rbl::Zone& z, const rbl::Settings& cfg);
}  // namespace rbl

class Rbl final : public Filter {
 public:
  Rbl(rbl::Settings cfg, std::shared_ptr<net::DnsCache> cache);
  std::string_view name() const override { return "rbl"; }
  bool wants(Phase p) const override { return p == Phase::MailFrom; }
  bool skipped_when_allowlisted() const override { return true; }
  std::shared_ptr<void> connect(const Context& ctx, boost::asio::any_io_executor ex) override;
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

  struct Shared;    // the settings and the cache, shared with lookups still running
  struct Pending;   // one zone lookup: its query and, once done, its result
  struct State;     // per connection: the client's lookups

 private:
  std::shared_ptr<State> start_client(const Context& ctx, const boost::asio::any_io_executor& ex) const;
  std::shared_ptr<const Shared> s_;
};

}  // namespace filters
