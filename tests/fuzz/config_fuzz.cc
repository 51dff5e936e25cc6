// libFuzzer target for the config loader: any bytes give either a config or a file:line error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  config::LoadResult r = config::load_string(text, "fuzz.toml", config::core_schema());
  if (!r.config && r.error.rfind("fuzz.toml:", 0) != 0) __builtin_trap();
  return 0;
}
