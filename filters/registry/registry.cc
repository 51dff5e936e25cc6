// The filter registry: one line per filter, no static-initialisation tricks.
#include "filters/registry/registry.h"

#include "filters/clamav/descriptor.h"
#include "filters/dkim/descriptor.h"
#include "filters/dmarc/descriptor.h"
#include "filters/greylist/descriptor.h"
#include "filters/ocr/descriptor.h"
#include "filters/ratelimit/descriptor.h"
#include "filters/rbl/descriptor.h"
#include "filters/relay_control/descriptor.h"
#include "filters/rspamd/descriptor.h"
#include "filters/rules/descriptor.h"
#include "filters/spf/descriptor.h"

namespace filters {

const std::vector<Descriptor>& registry() {
  static const std::vector<Descriptor> all = {
      relay_control::descriptor(),
      rules::descriptor(),
      rbl::descriptor(),
      clamav::descriptor(),
      ocr::descriptor(),
      spf::descriptor(),
      dkim::descriptor(),
      dmarc::descriptor(),
      rspamd::descriptor(),
      ratelimit::descriptor(),
      greylist::descriptor(),
  };
  return all;
}

const Descriptor* find(std::string_view name) {
  for (const auto& d : registry())
    if (d.name() == name) return &d;
  return nullptr;
}

const config::Schema& config_schema() {
  static const config::Schema schema = [] {
    std::vector<config::FilterSchema> filters;
    for (const auto& d : registry()) filters.push_back(d.schema);
    return config::make_schema(std::move(filters));
  }();
  return schema;
}

}  // namespace filters
