// CIDR parsing (core::parse_ip, which unwraps IPv4-mapped addresses) and prefix matching.
#include "core/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "core/ip.h"

namespace core {

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto ip = core::parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  Cidr c;
  c.v6 = ip->v6;
  c.addr = ip->bytes;
  int max = c.v6 ? 128 : 32;
  c.prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), c.prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || c.prefix < 0 || c.prefix > max)
      return std::nullopt;
  }
  return c;
}

bool Cidr::contains(std::string_view ip) const {
  auto p = core::parse_ip(ip);
  if (!p || p->v6 != v6) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(p->bytes.data(), addr.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (p->bytes[full] & mask) == (addr[full] & mask);
}

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

}  // namespace core
