// filters::CachedDns — one DNS query of a sender-authentication check (spf, dkim, dmarc) through
// the filter's answer cache: a cancelled check gets a Failure at once (no further query), a hit
// is answered from the cache, a miss goes to net::Resolver (non-blocking, on the check's
// executor); timeouts and failures are never cached.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

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

}  // namespace filters
