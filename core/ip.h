// core::parse_ip — a numeric IP address as bytes, with IPv4-mapped IPv6 (::ffff:a.b.c.d) unwrapped
// to its IPv4 address: the one place that decides a mapped address is IPv4 (core::Cidr matching,
// DNS list query names). Pure.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace core {

struct IpBytes {
  bool v6 = false;                  // false for IPv4, IPv4-mapped IPv6 included
  std::array<uint8_t, 16> bytes{};  // network byte order; IPv4 in bytes[0..3], the rest zero
};

// nullopt unless `text` is a whole numeric IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1",
// "::ffff:192.0.2.1") address as inet_pton reads it: no brackets, no port, no zone id.
std::optional<IpBytes> parse_ip(std::string_view text);

}  // namespace core
