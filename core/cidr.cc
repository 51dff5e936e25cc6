// CIDR parsing (core::IpAddress::parse, which folds IPv4-mapped addresses) and prefix matching.
#include "core/cidr.h"

#include <algorithm>
#include <charconv>

namespace core {

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  Cidr c;
  c.addr = *ip;
  int max = ip->bits();
  c.prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), c.prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || c.prefix < 0 || c.prefix > max)
      return std::nullopt;
  }
  return c;
}

bool Cidr::contains(const IpAddress& ip) const {
  return ip.is_v6() == addr.is_v6() && ip.prefix(prefix) == addr.prefix(prefix);
}

std::string Cidr::str() const { return addr.str() + "/" + std::to_string(prefix); }

Cidr network_of(const IpAddress& ip, unsigned v4_prefix, unsigned v6_prefix) {
  int bits = static_cast<int>(ip.is_v6() ? v6_prefix : v4_prefix);
  IpAddress net = ip.prefix(bits);
  return Cidr{net, std::min(bits, ip.bits())};
}

}  // namespace core
