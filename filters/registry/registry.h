// filters::registry() — the one explicit list of the filters built into this mxfront, in the order
// their names are documented. Adding a filter: a folder filters/NAME/ with its code, settings.h,
// descriptor.h/.cc and CMakeLists.txt, plus one line in registry.cc.
#pragma once
#include <string_view>
#include <vector>

#include "config/parameters.h"
#include "filters/descriptor.h"

namespace filters {

const std::vector<Descriptor>& registry();
const Descriptor* find(std::string_view name);  // null: no such filter
// Every config key of this program: the core's rows and each registered filter's.
const config::Schema& config_schema();

}  // namespace filters
