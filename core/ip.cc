// parse_ip (ip.h): inet_pton for each family, then the IPv4-mapped prefix check.
#include "core/ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

namespace core {
namespace {

// ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) -> a.b.c.d in bytes[0..3].
bool unwrap_v4_mapped(std::array<uint8_t, 16>& b) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!std::equal(std::begin(kPrefix), std::end(kPrefix), b.begin())) return false;
  std::copy(b.begin() + 12, b.end(), b.begin());
  std::fill(b.begin() + 4, b.end(), 0);
  return true;
}

}  // namespace

std::optional<IpBytes> parse_ip(std::string_view text) {
  std::string z(text);  // inet_pton needs a NUL-terminated string
  IpBytes ip;
  if (inet_pton(AF_INET, z.c_str(), ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, z.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  ip.v6 = !unwrap_v4_mapped(ip.bytes);
  return ip;
}

}  // namespace core
