// IpAddress (ip.h): inet_pton for each family, the IPv4-mapped fold, prefixes and the text forms.
#include "core/ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace core {
namespace {

// ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) -> a.b.c.d in b[0..3].
bool unwrap_v4_mapped(IpAddress::Bytes& b) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!std::equal(std::begin(kPrefix), std::end(kPrefix), b.begin())) return false;
  std::copy(b.begin() + 12, b.end(), b.begin());
  std::fill(b.begin() + 4, b.end(), 0);
  return true;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return std::nullopt;  // c_str() would stop there
  std::string z(text);  // inet_pton needs a NUL-terminated string
  Bytes b{};
  if (inet_pton(AF_INET, z.c_str(), b.data()) == 1) return v4({b[0], b[1], b[2], b[3]});
  if (inet_pton(AF_INET6, z.c_str(), b.data()) != 1) return std::nullopt;
  return v6(b);
}

IpAddress IpAddress::v4(const std::array<uint8_t, 4>& b) {
  IpAddress a;
  std::copy(b.begin(), b.end(), a.bytes_.begin());
  return a;
}

IpAddress IpAddress::v6(const Bytes& b) {
  IpAddress a;
  a.bytes_ = b;
  a.v6_ = !unwrap_v4_mapped(a.bytes_);
  return a;
}

IpAddress IpAddress::prefix(int n) const {
  IpAddress a = *this;
  n = std::clamp(n, 0, bits());
  size_t full = static_cast<size_t>(n / 8);
  int rest = n % 8;
  if (rest) a.bytes_[full++] &= static_cast<uint8_t>(0xff << (8 - rest));
  std::fill(a.bytes_.begin() + full, a.bytes_.end(), 0);
  return a;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v6_ ? AF_INET6 : AF_INET, bytes_.data(), buf, sizeof buf);
  return buf;
}

std::string IpAddress::with_port(uint16_t port) const {
  return v6_ ? fmt::format("[{}]:{}", str(), port) : fmt::format("{}:{}", str(), port);
}

std::string IpAddress::address_literal() const { return v6_ ? "[IPv6:" + str() + "]" : "[" + str() + "]"; }

}  // namespace core

size_t std::hash<core::IpAddress>::operator()(const core::IpAddress& a) const noexcept {
  uint64_t hi, lo;
  std::memcpy(&hi, a.bytes().data(), 8);
  std::memcpy(&lo, a.bytes().data() + 8, 8);
  uint64_t h = hi * 0x9E3779B97F4A7C15ull ^ (lo + 0x632BE59BD9B4E019ull + (hi << 6) + (hi >> 2));
  return static_cast<size_t>(h ^ (a.is_v6() ? 0x5bd1e995u : 0u));
}
