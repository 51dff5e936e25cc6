// The [ratelimit] section and its [[ratelimit.limit]] rows: plain values, filled by the rows in
// descriptor.cc (which also checks each limit: a name, a key usable at its phase, limit >= 1).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "config/config.h"

namespace filters::ratelimit {

// What a limit counts by.
enum class Key { Client, ClientNet, Sender, SenderDomain, User };
// What it counts: connections (at Connect), messages (at MAIL), recipients (at each RCPT).
enum class What { Connections, Messages, Recipients };
// What a hit does: 451 4.7.1, 421 4.7.0 and close, or add `score` and a tag.
enum class OnHit { TempFail, Disconnect, Score };

struct Limit {
  std::string name;               // for logs, metrics, tags and the Redis key
  Key key = Key::Client;
  What what = What::Messages;
  size_t limit = 0;               // events allowed per window; more is a hit
  config::Seconds window{60};     // sliding window length
  OnHit action = OnHit::TempFail;
  double score = 1;               // added on a hit when action = score
  bool skip_authenticated = false;  // client / client_net limits: authenticated clients are not counted
};

struct Settings {
  unsigned ipv4_prefix = 24;      // client_net for IPv4
  unsigned ipv6_prefix = 64;      // client_net for IPv6
  size_t local_table_size = 100000;  // keys of the per-instance counters (no Redis, or Redis down)
  std::vector<Limit> limits;
};

}  // namespace filters::ratelimit
