// Loads and validates a whole config file. Either every key is valid and a complete immutable
// Config comes back, or nothing does and `error` says "file:line: what is wrong".
#pragma once
#include <memory>
#include <string>

#include "config/config.h"
#include "config/parameters.h"

namespace config {

struct LoadResult {
  std::shared_ptr<const Config> config;
  std::string error;
};

// `schema` is every key the file may hold: config::core_schema(), or the program's whole schema
// with its filters (filters::config_schema()).
LoadResult load(const std::string& path, const Schema& schema);
LoadResult load_string(const std::string& text, const std::string& source_name, const Schema& schema);

}  // namespace config
