// One cached DNS query of a sender-authentication check (cached_dns.h).
#include "filters/cached_dns.h"

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

namespace filters {

boost::asio::awaitable<net::DnsAnswer> resolve_cached(std::shared_ptr<const CachedDns> d, std::string name, net::DnsType t) {
  if (d->cancel && d->cancel->cancelled()) {
    net::DnsAnswer a;
    a.error = "check cancelled";
    co_return a;
  }
  std::string key = fmt::format("{} {}", static_cast<int>(t), name);
  if (d->cache && d->cache_size)
    if (auto hit = d->cache->get(key, net::DnsCache::Clock::now())) co_return *hit;
  auto resolver = net::Resolver::get(co_await boost::asio::this_coro::executor, d->options);
  net::DnsAnswer a = co_await resolver->query(name, t);
  if (d->cache && d->cache_size && a.status != net::DnsStatus::Timeout && a.status != net::DnsStatus::Failure)
    d->cache->put(key, a, net::DnsCache::Clock::now(), d->max_ttl, d->cache_size);
  co_return a;
}

}  // namespace filters
