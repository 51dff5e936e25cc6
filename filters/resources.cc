// Builds the shared filter resources from the first config.
#include "filters/resources.h"

#include <algorithm>
#include <thread>

namespace filters {

Resources::Resources(const config::Config& c) {
  unsigned n = c.filters.workers.threads ? c.filters.workers.threads : std::max(1u, std::thread::hardware_concurrency());
  workers = std::make_shared<net::BlockingPool>("filter", n, c.filters.workers.queue);
}

}  // namespace filters
