// app::build_generation — one config generation made ready to serve: the TLS context, the
// directory, and each profile's filter chain built from the filter registry; and the shared
// dependencies it reports to /health. The only place that joins config, directory and filters.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/dependency.h"
#include "smtpd/snapshot.h"

namespace app {

// The first generation creates the shared filter resources (resources == nullptr); reloads pass
// the running generation's on. A refused generation changes no shared state.
smtpd::SnapshotOrError build_generation(std::shared_ptr<const config::Config> c,
                                        std::shared_ptr<filters::Resources> resources = nullptr,
                                        std::shared_ptr<smtpd::FarmCounts> farm_counts = nullptr);

// The farm-wide counts on [redis]: AUTH failures and refused recipients per client address (null
// without redis.address / redis.sentinels, or on error: `err` says why). Made once at start;
// reloads keep them.
std::shared_ptr<smtpd::FarmCounts> make_farm_counts(const config::Config& c, std::string& err);

// The mailbox servers, the directory servers and what each filter in a profile depends on.
std::vector<core::Dependency> dependencies_of(const smtpd::Snapshot& s);

}  // namespace app
