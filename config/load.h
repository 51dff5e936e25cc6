// Loads and validates a whole config file. Either every key is valid and a complete immutable
// Config comes back, or nothing does and `error` says "file:line: what is wrong".
#pragma once
#include <memory>
#include <string>

#include "config/config.h"

namespace config {

struct LoadResult {
  std::shared_ptr<const Config> config;
  std::string error;
};

LoadResult load(const std::string& path);
LoadResult load_string(const std::string& text, const std::string& source_name);

}  // namespace config
