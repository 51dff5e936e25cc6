// The filter-chain part of the configuration that every filter shares: each filter's timeout and
// failure mode, the CPU worker pool and the spam-score headers. Each filter's own section is
// declared in its folder (filters/NAME/settings.h) and kept in Config::sections; config/ knows no
// filter by name. Keys, defaults and docs are rows in parameters.cc and in the filters' descriptors.
#pragma once
#include <chrono>
#include <cstddef>
#include <map>
#include <string>

namespace config {

using Seconds = std::chrono::duration<double>;

// What a filter's error or timeout means for the command being judged.
enum class OnError { TempFail, Continue };

struct FilterSettings {
  Seconds timeout{10};                 // a check still running after this is abandoned
  OnError on_error = OnError::TempFail;
};

// The bounded pool that runs CPU-heavy checks (ClamAV scans, body regexes) off the I/O threads.
struct Workers {
  unsigned threads = 0;                // 0 = one per CPU core
  size_t queue = 256;                  // waiting jobs; a job past it gets 451 4.3.0 (load shedding)
};

// Score headers added to relayed mail whose score reached the profile's tag_score.
struct SpamHeaders {
  std::string score = "X-Spam-Score";
  std::string status = "X-Spam-Status";
  std::string report = "X-Spam-Report";
};

// Everything the chain reads that is not one filter's own section.
struct FilterConfig {
  std::map<std::string, FilterSettings> settings;  // by filter name; each filter's defaults filled by the loader
  Workers workers;
  SpamHeaders headers;

  const FilterSettings& of(const std::string& filter) const;
};

}  // namespace config
