// CIDR parsing (inet_pton) and prefix matching.
#include "core/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace core {
namespace {

struct Parsed {
  bool v6;
  std::array<uint8_t, 16> a{};
};

std::optional<Parsed> parse_ip(std::string_view s) {
  std::string z(s);
  Parsed p{};
  if (inet_pton(AF_INET, z.c_str(), p.a.data()) == 1) {
    p.v6 = false;
    return p;
  }
  if (inet_pton(AF_INET6, z.c_str(), p.a.data()) == 1) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(p.a.data(), mapped, 12) == 0) {  // ::ffff:a.b.c.d is the IPv4 address
      std::memmove(p.a.data(), p.a.data() + 12, 4);
      std::memset(p.a.data() + 4, 0, 12);
      p.v6 = false;
    } else {
      p.v6 = true;
    }
    return p;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  Cidr c;
  c.v6 = ip->v6;
  c.addr = ip->a;
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
  auto p = parse_ip(ip);
  if (!p || p->v6 != v6) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(p->a.data(), addr.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (p->a[full] & mask) == (addr[full] & mask);
}

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

}  // namespace core
