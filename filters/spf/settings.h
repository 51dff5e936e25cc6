// The [spf] section: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace filters::spf {

// What a result does: nothing but the header, add its score (and tag), refuse MAIL with 550, or
// answer 451. A temperror is never refused with a 5xx (only none / tempfail are accepted for it).
enum class Policy { None, Score, Reject, TempFail };

struct Settings {
  std::vector<std::string> dns_servers;             // "host:port"; empty = /etc/resolv.conf
  std::chrono::duration<double> query_timeout{2};   // per DNS query try
  unsigned tries = 2;
  size_t cache_size = 10000;                        // answers cached (by type and name), TTL-bound; 0 = none
  std::chrono::duration<double> max_ttl{3600};      // cache entries live min(answer TTL, max_ttl)
  Policy on_fail = Policy::Score;
  Policy on_softfail = Policy::Score;
  Policy on_permerror = Policy::None;
  Policy on_temperror = Policy::None;
  double score_fail = 3;
  double score_softfail = 1;
  double score_permerror = 0;
  bool report_only = false;                         // never refuse: log what would have been refused
};

}  // namespace filters::spf
