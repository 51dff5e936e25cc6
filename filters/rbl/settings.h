// The [rbl] section and its [[rbl.zone]] tables: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/cidr.h"

namespace filters::rbl {

// "ip": the client address (reversed IPv4 octets / IPv6 nibbles) is looked up; "domain": the
// envelope sender's domain (RHSBL); "allow" (DNSWL): a listed client skips every blocklist.
enum class ZoneKind { Ip, Domain, Allow };
enum class ZoneAction { Score, Reject };  // add weight / 554 5.7.1 at once

struct Zone {
  std::string zone;                    // "zen.example.org"
  ZoneKind kind = ZoneKind::Ip;
  double weight = 1.0;                 // added to the score when listed and action = Score
  ZoneAction action = ZoneAction::Score;
  // Answers (127.0.0.x) honoured; empty = any answer in 127.0.0.0/8. Each entry is one address
  // or an inclusive range "127.0.0.2-127.0.0.11", stored as host-order pairs. 127.255.255.0/24
  // (the lists' error answers) is never honoured when `codes` is empty.
  std::vector<std::pair<uint32_t, uint32_t>> codes;
  std::vector<std::string> servers;    // "host:port" DNS servers for this list; empty = Settings::servers
};

struct Settings {
  std::vector<std::string> servers;    // "host:port" DNS servers; empty = /etc/resolv.conf
  std::chrono::duration<double> query_timeout{2};  // per query try; a zone not answering is skipped (fail open)
  unsigned tries = 2;
  std::vector<Zone> zones;
  std::vector<core::Cidr> allow;        // static allowlist: these clients skip every blocklist
  size_t cache_size = 10000;           // cached answers (by query name), TTL-bound
  std::chrono::duration<double> max_ttl{3600};  // cache entries live min(answer TTL, max_ttl)
};

}  // namespace filters::rbl
