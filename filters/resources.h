// filters::Resources — what filters share across config generations and sessions: the bounded
// worker pool for CPU-heavy checks and the ClamAV engine. Built once at start-up from the first config (a reload does
// not resize the pool; that is logged). Filters that keep process-wide state (a virus engine,
// a DNS cache) add it here so that a reload reuses it.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "config/config.h"
#include "filters/clamav_engine.h"
#include "net/blocking_pool.h"

namespace filters {

struct Resources {
  explicit Resources(const config::Config& c);
  std::shared_ptr<net::BlockingPool> workers;  // "filter-N" threads; queue bound from [workers]

  // The ClamAV engine for config generation `c` (which uses clamav). The first call compiles it
  // synchronously (an unusable directory is a config error, returned); a later generation (SIGHUP)
  // hands over its settings after a cheap directory check and the engine is recompiled in the
  // background. Called again for the same generation (several profiles): nothing more happens.
  struct ClamavOrError {
    std::shared_ptr<clamav::EngineHolder> engines;
    std::string error;
  };
  ClamavOrError clamav_for(std::shared_ptr<const config::Config> c);

 private:
  std::mutex clamav_mu_;
  std::shared_ptr<clamav::EngineHolder> clamav_;   // null until a generation uses clamav
  std::shared_ptr<const config::Config> clamav_config_;  // the generation last handed over
};

}  // namespace filters
