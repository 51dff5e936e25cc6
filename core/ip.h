// core::IpAddress — a client's numeric IP address, parsed once (from the accepted socket or the
// PROXY header) and carried as a value from there on: limits, CIDR rules, DNS list query names,
// logs and the Received header all read the same bytes, never the text again. An IPv4-mapped IPv6
// address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) is folded to its IPv4 address here, the one place
// that decides it, so ::ffff:192.0.2.7 and 192.0.2.7 are the same client everywhere. Pure.
#pragma once
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace core {

class IpAddress {
 public:
  using Bytes = std::array<uint8_t, 16>;

  IpAddress() = default;  // 0.0.0.0

  // nullopt unless `text` is a whole numeric IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1",
  // "::ffff:192.0.2.1") address as inet_pton reads it: no brackets, no port, no zone id.
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress v4(const std::array<uint8_t, 4>& b);  // network byte order
  static IpAddress v6(const Bytes& b);                   // network byte order; ::ffff:a.b.c.d -> IPv4

  bool is_v6() const { return v6_; }
  int bits() const { return v6_ ? 128 : 32; }
  // Network byte order; IPv4 in bytes()[0..3], the rest zero.
  const Bytes& bytes() const { return bytes_; }

  // The first `n` bits kept, the rest zeroed (n is clamped to 0..bits()).
  IpAddress prefix(int n) const;
  // What counts as one client for per-client bounds: the /64 of an IPv6 address (one subscriber
  // or host usually holds a whole /64, RFC 6177), the address itself for IPv4.
  IpAddress network_key() const { return v6_ ? prefix(64) : *this; }

  std::string str() const;                      // canonical text (inet_ntop): "192.0.2.7", "2001:db8::1"
  std::string with_port(uint16_t port) const;   // "192.0.2.7:25", "[2001:db8::1]:25"
  std::string address_literal() const;          // RFC 5321 §4.1.3: "[192.0.2.7]", "[IPv6:2001:db8::1]"

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend std::strong_ordering operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  bool v6_ = false;  // first: IPv4 orders before IPv6
  Bytes bytes_{};
};

}  // namespace core

template <>
struct std::hash<core::IpAddress> {
  size_t operator()(const core::IpAddress& a) const noexcept;
};

// Formats as str(): log lines write "client={}" with the address itself.
template <>
struct fmt::formatter<core::IpAddress> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const core::IpAddress& a, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(a.str(), ctx);
  }
};
