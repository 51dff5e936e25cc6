// filters::Descriptor — everything the program needs to know about one filter, declared in the
// filter's own folder (filters/NAME/descriptor.cc) and listed once in filters/registry/registry.cc:
//  * its config: the name profiles list it by, its default timeout and on_error, the rows of its
//    own section(s) and what it requires once a profile lists it (config::FilterSchema);
//  * how it is built for a config generation from the config and the shared resources;
//  * what it depends on, as background health checks for /health and /metrics;
//  * the labeled-counter families it counts into, with their HELP text.
// Nothing outside the filter's folder and the registry names a filter.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/parameters.h"
#include "core/dependency.h"
#include "core/metrics.h"
#include "filters/filter.h"
#include "filters/owned_headers.h"
#include "filters/resources.h"
#include "directory/directory.h"

namespace filters {

// What a filter is built from, for one config generation.
struct BuildContext {
  std::shared_ptr<const config::Config> config;
  Resources& resources;                        // shared by every generation
  std::shared_ptr<ldap::Directory> directory;  // null: directory type "none"
  // The profile the filter is built for (build() is called once per profile that lists it);
  // null outside a profile (owned_headers, dependencies, commit, unit tests).
  const config::Profile* profile = nullptr;
};

struct Built {
  std::shared_ptr<Filter> filter;  // null: `error` says why
  std::string error;
};

struct Descriptor {
  config::FilterSchema schema;
  // Builds the filter for a generation. An error makes the whole generation invalid: start-up
  // fails, a reload is refused and the running generation stays. Called once per profile that
  // lists the filter; must not change shared state a running generation uses (see commit).
  std::function<Built(const BuildContext&)> build;
  // Optional: called once the whole generation was built and is about to serve (e.g. hand new
  // settings to a shared engine). Not called for a refused generation.
  std::function<void(const BuildContext&)> commit;
  // Optional: health checks of what the filter depends on (shown in /health, never in /readyz).
  std::function<std::vector<core::Dependency>(const BuildContext&)> dependencies;
  std::vector<core::CounterFamily> metrics;
  // Optional: header fields the filter writes into relayed messages (e.g. Authentication-Results
  // with our authserv-id). Copies a client sent are removed from the message's top-level header
  // block before the relay, like the [spam] headers (filters/owned_headers.h).
  std::function<std::vector<OwnedHeader>(const BuildContext&)> owned_headers;

  std::string_view name() const { return schema.name; }
};

}  // namespace filters
