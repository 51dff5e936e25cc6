// filters::Resources — what filters share across config generations and sessions: the bounded
// worker pool for CPU-heavy checks. Built once at start-up from the first config (a reload does
// not resize the pool; that is logged). Filters that keep process-wide state (a virus engine,
// a DNS cache) add it here so that a reload reuses it.
#pragma once
#include <memory>

#include "config/config.h"
#include "net/blocking_pool.h"
#include "net/dns_cache.h"

namespace filters {

struct Resources {
  explicit Resources(const config::Config& c);
  std::shared_ptr<net::BlockingPool> workers;  // "filter-N" threads; queue bound from [workers]
  // The rbl filter's DNS answers, kept across reloads (its bounds are applied per insertion, from
  // the current config). The DNS channels themselves live with each I/O thread's io_context.
  std::shared_ptr<net::DnsCache> dns_cache = std::make_shared<net::DnsCache>();
};

}  // namespace filters
