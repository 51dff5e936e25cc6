// core::HostPort — a "host:port" endpoint (listeners, mailbox servers, DNS servers, the admin
// address) and its one text form: IPv6 hosts in brackets, "[2001:db8::1]:25", so that the port
// is never read as part of the address. parse_host_port() reads the same forms back.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace core {

struct HostPort {
  std::string host;  // a name or a numeric address; IPv6 without brackets
  uint16_t port = 0;
  // "host:port", or "[host]:port" when host holds a ':' (IPv6).
  std::string str() const;
};

enum class HostSyntax {
  Numeric,  // the host is a numeric IPv4 address or a bracketed IPv6 address
  Name,     // ... or any other non-empty text without ':' (a host name, resolved later)
};

// Reads "host:port", "a.b.c.d:port" or "[ipv6]:port" (port 1-65535). Returns "" and sets `out`,
// or the error text (one of: expected "[ipv6]:port" / bad IPv6 address / expected "host:port" (IPv6
// goes in brackets) / expected a numeric IPv4 address or [IPv6] / empty host / bad port (1-65535))
// and leaves `out` as it was.
std::string parse_host_port(std::string_view s, HostPort& out, HostSyntax syntax);

}  // namespace core
