// filters::CachedDns — one DNS query of a sender-authentication check (spf, dkim, dmarc) through
// the filter's answer cache: a cancelled check gets a Failure at once (no further query), a hit
// is answered from the cache, a miss goes to net::Resolver (non-blocking, on the check's
// executor); timeouts and failures are never cached. Also the filters' /health dependencies: their
// DNS servers, each up while it answers at all.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/dependency.h"
#include "filters/filter.h"
#include "net/dns.h"
#include "net/dns_cache.h"

namespace filters {

struct CachedDns {
  net::DnsOptions options;
  std::shared_ptr<net::DnsCache> cache;  // may be null: no caching
  size_t cache_size = 0;                 // 0: no caching
  std::chrono::seconds max_ttl{0};
  std::shared_ptr<const Cancel> cancel;
};

boost::asio::awaitable<net::DnsAnswer> resolve_cached(std::shared_ptr<const CachedDns> d, std::string name, net::DnsType t);

// One /health dependency ("dns", "ip:port") per server in `servers` ("dns", "resolv.conf" when empty):
// up while the server answers a TXT query for the root at all: any answer, an error rcode included
// (an authoritative-only server refuses it, a resolver answers it); down when it is silent or
// unreachable. The check runs on the monitor's thread, bounded by about 2 x `timeout` (max 2 s each).
std::vector<core::Dependency> dns_server_dependencies(const std::vector<std::string>& servers,
                                                      std::chrono::milliseconds timeout);

}  // namespace filters
