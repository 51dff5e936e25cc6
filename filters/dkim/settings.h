// The [dkim] section: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace filters::dkim {

struct Settings {
  std::vector<std::string> dns_servers;             // "host:port"; empty = /etc/resolv.conf
  std::chrono::duration<double> query_timeout{2};   // per DNS query try
  unsigned tries = 2;
  size_t cache_size = 10000;                        // key answers cached by name, TTL-bound; 0 = none
  std::chrono::duration<double> max_ttl{3600};      // cache entries live min(answer TTL, max_ttl)
  size_t max_signatures = 5;                        // signatures checked per message; the rest: neutral
  unsigned min_rsa_bits = 1024;                     // shorter RSA keys: policy
  double score_pass = 0;                            // added per signature with that result
  double score_fail = 0;
  double score_policy = 0;
  double score_permerror = 0;
};

}  // namespace filters::dkim
