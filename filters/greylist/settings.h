// The [greylist] section: plain values, filled by the rows in descriptor.cc (which checks that
// delay < retry_window and that every allow-list entry is a domain or an address).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/cidr.h"

namespace filters::greylist {

struct Settings {
  config::Seconds delay{300};                 // a triplet's retry is accepted this long after its first sight
  config::Seconds retry_window{2 * 86400};    // ...and no later: then the first sight is forgotten
  config::Seconds pass_ttl{36 * 86400};       // a passed triplet is accepted at once this long (refreshed)
  unsigned ipv4_prefix = 24;                  // the client network of the triplet
  unsigned ipv6_prefix = 64;
  std::vector<core::Cidr> client_allow;       // never greylisted
  std::vector<std::string> recipient_allow;   // "example.org" (the domain) or "user@example.org"
  std::vector<std::string> sender_allow;      // the same, for MAIL FROM
  bool null_sender = true;                    // false: the null sender <> is never greylisted
  size_t local_table_size = 100000;           // triplets of the per-instance table (no Redis, Redis down)
};

}  // namespace filters::greylist
