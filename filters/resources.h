// filters::Resources — what filters share across config generations and sessions: the bounded
// worker pool for CPU-heavy checks, the DNS cache and the ClamAV engine. Built once at start-up from
// the first config (a reload does not resize the pool; that is logged). Filters that keep
// process-wide state add it here so that a reload reuses it.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "config/config.h"
#include "filters/clamav_engine.h"
#include "filters/ocr/cache.h"
#include "net/blocking_pool.h"
#include "net/dns_cache.h"

namespace filters {

struct Resources {
  explicit Resources(const config::Config& c);
  std::shared_ptr<net::BlockingPool> workers;  // "filter-N" threads; queue bound from [workers]
  // The rbl filter's DNS answers, kept across reloads (its bounds are applied per insertion, from
  // the current config). The DNS channels themselves live with each I/O thread's io_context.
  std::shared_ptr<net::DnsCache> dns_cache = std::make_shared<net::DnsCache>();
  // The ocr filter's results by image hash, kept across reloads (a generation that uses ocr sets
  // its bounds when its filter is built).
  std::shared_ptr<ocr::ResultCache> ocr_cache;

  // The ClamAV engine for config generation `c` (which uses clamav), in two steps so that a
  // refused reload changes nothing:
  //  * clamav_for(c), while the generation is built: the first call compiles the engine
  //    synchronously (an unusable directory is a config error, returned); for a later generation
  //    (SIGHUP) only a cheap check of the directory is made. Repeated calls (several profiles) are free.
  //  * commit_clamav(c), once the whole generation was built: a later generation hands over its
  //    settings and the engine is recompiled in the background (SIGHUP = a reload, even unchanged).
  //    Nothing happens when `c` does not use clamav or is the generation that created the engine.
  struct ClamavOrError {
    std::shared_ptr<clamav::EngineHolder> engines;
    std::string error;
  };
  ClamavOrError clamav_for(const std::shared_ptr<const config::Config>& c);
  void commit_clamav(const std::shared_ptr<const config::Config>& c);
  std::shared_ptr<clamav::EngineHolder> clamav_engines() const;  // null until a generation used clamav

 private:
  mutable std::mutex clamav_mu_;
  std::shared_ptr<clamav::EngineHolder> clamav_;          // null until a generation uses clamav
  std::shared_ptr<const config::Config> clamav_checked_;  // clamav_for() accepted it
  std::shared_ptr<const config::Config> clamav_current_;  // handed over (or created the engine)
};

}  // namespace filters
