// CIDR address ranges ("127.0.0.0/8", "::1/128", or a bare address = a single host) and the
// membership test used for trusted PROXY-protocol peers. Pure; IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) match IPv4 ranges.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace core {

struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> addr{};  // network byte order; IPv4 uses the first 4 bytes
  int prefix = 0;

  static std::optional<Cidr> parse(std::string_view text);  // nullopt if malformed
  bool contains(std::string_view ip) const;                 // false for a malformed ip
  std::string str() const;
};

}  // namespace core
