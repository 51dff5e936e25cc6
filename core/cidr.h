// CIDR address ranges ("127.0.0.0/8", "::1/128", or a bare address = a single host) and the
// membership test used for trusted PROXY-protocol peers, client block/allow lists and the DNS
// list allowlist. Pure; an address is matched as the core::IpAddress it already is (IPv4-mapped
// IPv6 addresses were folded to IPv4 when parsed, so they match IPv4 ranges).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "core/ip.h"

namespace core {

struct Cidr {
  IpAddress addr;  // as written (host bits are ignored when matching)
  int prefix = 0;

  static std::optional<Cidr> parse(std::string_view text);  // nullopt if malformed
  bool contains(const IpAddress& ip) const;                 // same family and the same first `prefix` bits
  std::string str() const;
};

// The network `ip` belongs to, by family: its first v4_prefix (IPv4) or v6_prefix (IPv6) bits,
// host bits zeroed ("192.0.2.0/24"): what counts as one client network for rate limits and greylisting.
Cidr network_of(const IpAddress& ip, unsigned v4_prefix, unsigned v6_prefix);

}  // namespace core
