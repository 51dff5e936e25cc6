// One cached DNS query of a sender-authentication check (cached_dns.h).
#include "filters/cached_dns.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>
#include <optional>

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

namespace {

// Whether `o`'s server answers: "" = it does (any rcode), else what went wrong. Blocking, bounded.
std::string server_check(const net::DnsOptions& o) {
  using std::chrono::milliseconds;
  std::optional<net::DnsAnswer> answer;  // before the io_context: its destruction drops a pending query
  auto run = [&]() -> boost::asio::awaitable<void> {
    auto resolver = net::Resolver::get(co_await boost::asio::this_coro::executor, o);
    answer = co_await resolver->query(".", net::DnsType::TXT);
  };
  boost::asio::io_context io(1);
  boost::asio::co_spawn(io, run(), [](std::exception_ptr) {});
  io.run_for(o.timeout * ((1u << o.tries) - 1) + milliseconds(250));  // c-ares doubles the later waits
  if (!answer) return "no answer in time";
  if (answer->status == net::DnsStatus::Timeout) return "timeout";
  if (answer->status == net::DnsStatus::Failure && !answer->server_answered) return answer->error;
  return "";
}

}  // namespace

std::vector<core::Dependency> dns_server_dependencies(const std::vector<std::string>& servers,
                                                      std::chrono::milliseconds timeout) {
  using std::chrono::milliseconds;
  std::vector<core::Dependency> deps;
  net::DnsOptions base;
  base.timeout = std::clamp(timeout, milliseconds(1), milliseconds(2000));
  base.tries = 1;
  base.error_answers = true;  // an authoritative-only server's REFUSED is an answer
  auto add = [&](std::string name, std::vector<std::string> use) {
    net::DnsOptions o = base;
    o.servers = std::move(use);
    deps.push_back({"dns", std::move(name), [o] { return server_check(o); }});
  };
  if (servers.empty()) add("resolv.conf", {});
  for (const auto& s : servers) add(s, {s});
  return deps;
}

}  // namespace filters
