// filters::Resources — what filters share across config generations and sessions: the bounded
// worker pool for CPU-heavy checks, the DNS answer cache, and whatever process-wide state a filter
// keeps for itself (the ClamAV engine, the OCR result cache), stored by the filter under its own
// key. Built once at start-up from the first config (a reload does not resize the pool; that is
// logged); a reload reuses everything here.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.h"
#include "net/blocking_pool.h"
#include "net/dns_cache.h"

namespace filters {

class Resources {
 public:
  explicit Resources(const config::Config& c);

  std::shared_ptr<net::BlockingPool> workers;  // "filter-N" threads; queue bound from [workers]
  // DNS answers of the filters that look things up (rbl), kept across reloads; bounds are applied
  // per insertion by the caller. The DNS channels live with each I/O thread's io_context.
  std::shared_ptr<net::DnsCache> dns_cache = std::make_shared<net::DnsCache>();

  // The state filed under `key`, created by `make` on first use; later calls (later generations)
  // get the same object. T must be the same type for a key every time.
  template <class T>
  std::shared_ptr<T> keep(const std::string& key, const std::function<std::shared_ptr<T>()>& make) {
    std::lock_guard lk(mu_);
    auto& slot = kept_[key];
    if (!slot) slot = make();
    return std::static_pointer_cast<T>(slot);
  }
  // The state filed under `key`, or null when nothing was kept yet.
  template <class T>
  std::shared_ptr<T> kept(const std::string& key) const {
    std::lock_guard lk(mu_);
    auto it = kept_.find(key);
    return it == kept_.end() ? nullptr : std::static_pointer_cast<T>(it->second);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<void>> kept_;
};

}  // namespace filters
