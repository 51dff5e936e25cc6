// Builds the shared filter resources from the first config; the ClamAV engine on first use.
#include "filters/resources.h"

#include <thread>

namespace filters {

Resources::Resources(const config::Config& c) {
  unsigned n = c.filters.workers.threads ? c.filters.workers.threads : std::max(1u, std::thread::hardware_concurrency());
  workers = std::make_shared<net::BlockingPool>("filter", n, c.filters.workers.queue);
  ocr_cache = std::make_shared<ocr::ResultCache>(
      c.filters.ocr.cache_size, std::chrono::duration_cast<ocr::ResultCache::Clock::duration>(c.filters.ocr.cache_ttl));
}

Resources::ClamavOrError Resources::clamav_for(const std::shared_ptr<const config::Config>& c) {
  std::lock_guard lk(clamav_mu_);
  if (!clamav_) {
    auto created = clamav::EngineHolder::create(c->filters.clamav);
    if (!created.holder) return {nullptr, created.error};
    clamav_ = created.holder;
    clamav_current_ = c;
  } else if (clamav_checked_ != c && clamav_current_ != c) {
    if (std::string err = clamav::check_settings(c->filters.clamav); !err.empty()) return {nullptr, "clamav: " + err};
  }
  clamav_checked_ = c;
  return {clamav_, {}};
}

void Resources::commit_clamav(const std::shared_ptr<const config::Config>& c) {
  std::lock_guard lk(clamav_mu_);
  if (!clamav_ || clamav_checked_ != c || clamav_current_ == c) return;
  clamav_->reconfigure(c->filters.clamav);
  clamav_current_ = c;
}

std::shared_ptr<clamav::EngineHolder> Resources::clamav_engines() const {
  std::lock_guard lk(clamav_mu_);
  return clamav_;
}

}  // namespace filters
