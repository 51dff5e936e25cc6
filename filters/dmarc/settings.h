// The [dmarc] section: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/cidr.h"

namespace filters::dmarc {

// What a DMARC temperror does: relay with the result recorded, or answer 451 (never a 5xx).
enum class OnTempError { None, TempFail };

struct Settings {
  std::vector<std::string> dns_servers;             // "host:port"; empty = /etc/resolv.conf
  std::chrono::duration<double> query_timeout{2};   // per DNS query try
  unsigned tries = 2;
  size_t cache_size = 10000;                        // answers cached, TTL-bound; 0 = none
  std::chrono::duration<double> max_ttl{3600};
  std::string public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
  bool monitor_only = false;                        // never refuse nor score: log the would-be disposition
  std::vector<std::string> override_domains;        // From domains (and their subdomains) never refused
  std::vector<core::Cidr> trusted_forwarders;       // clients never refused
  double score_quarantine = 5;
  OnTempError on_temperror = OnTempError::None;
  bool reject_multiple_from = true;                 // 550 5.7.1 for several From fields / addresses
};

}  // namespace filters::dmarc
