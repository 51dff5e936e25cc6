// The dkim filter: every DKIM-Signature of the message's top-level header block (up to
// dkim.max_signatures) verified at Data (dkim.h). Key lookups run on the session's executor with
// non-blocking DNS (net::Resolver on dkim.dns_servers; answers cached by TTL in the filter's own
// net::DnsCache; a cancelled check makes no further query); the hashing and signature checks run
// on the worker pool (a full queue: 451 filter busy). Authenticated clients are not checked.
// The results are recorded for the chain (Context::auth->set_dkim, one DkimFacts per signature,
// empty for unsigned mail), in ONE Authentication-Results field (RFC 8601) with our authserv-id
// ("dkim=none" for unsigned mail), as scores/tags per result (settings.h; nothing is refused by
// the filter), in the counter dkim_results_total{result=...} and one log line per signature.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "filters/dkim/dkim.h"
#include "filters/dkim/settings.h"
#include "filters/filter.h"
#include "net/blocking_pool.h"
#include "net/dns.h"
#include "net/dns_cache.h"

namespace filters {

namespace dkim {
// The Authentication-Results value: "<id>; dkim=<result> (<detail>) header.d=... header.i=...
// header.s=... header.a=... header.b=..." with one dkim= per signature, or "<id>; dkim=none".
std::string auth_results(std::string_view authserv_id, const std::vector<DkimFacts>& facts);
// The verdict for the results under `s` (pure): the header, the scores and tags; always Continue.
Verdict verdict_for(const Settings& s, std::string_view authserv_id, const std::vector<DkimFacts>& facts);
}  // namespace dkim

class DkimFilter final : public Filter {
 public:
  // `workers` null: the CPU part runs inline (unit tests only).
  DkimFilter(dkim::Settings cfg, std::string authserv_id, std::shared_ptr<net::BlockingPool> workers,
             std::shared_ptr<net::DnsCache> cache = nullptr);
  std::string_view name() const override { return "dkim"; }
  bool wants(Phase p) const override { return p == Phase::Data; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

 private:
  struct Shared {
    dkim::Settings cfg;
    std::string authserv_id;
    net::DnsOptions dns;
    std::shared_ptr<net::DnsCache> cache;  // may be null: no caching
    std::shared_ptr<net::BlockingPool> workers;
  };
  std::shared_ptr<const Shared> s_;
};

}  // namespace filters
