// HostPort: the bracketed text form and its parser (host_port.h).
#include "core/host_port.h"

#include <arpa/inet.h>

#include <charconv>

#include <fmt/format.h>

namespace core {
namespace {

bool is_ipv4(std::string_view h) {
  unsigned char buf[4];
  return inet_pton(AF_INET, std::string(h).c_str(), buf) == 1;
}

bool is_ipv6(std::string_view h) {
  unsigned char buf[16];
  return inet_pton(AF_INET6, std::string(h).c_str(), buf) == 1;
}

// "[v6]:port" -> host, port text; or the error.
std::string split_bracketed(std::string_view s, std::string_view& host, std::string_view& port) {
  size_t close = s.find(']');
  if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return "expected \"[ipv6]:port\"";
  host = s.substr(1, close - 1);
  port = s.substr(close + 2);
  return is_ipv6(host) ? "" : "bad IPv6 address";
}

// "host:port" (exactly one ':') -> host, port text; or the error.
std::string split_plain(std::string_view s, HostSyntax syntax, std::string_view& host, std::string_view& port) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || s.find(':') != colon) return "expected \"host:port\" (IPv6 goes in brackets)";
  host = s.substr(0, colon);
  port = s.substr(colon + 1);
  if (syntax == HostSyntax::Numeric && !is_ipv4(host)) return "expected a numeric IPv4 address or [IPv6]";
  return host.empty() ? "empty host" : "";
}

bool parse_port(std::string_view p, uint16_t& port) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || v == 0 || v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

std::string HostPort::str() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string parse_host_port(std::string_view s, HostPort& out, HostSyntax syntax) {
  std::string_view host, port_text;
  std::string err = !s.empty() && s.front() == '[' ? split_bracketed(s, host, port_text)
                                                    : split_plain(s, syntax, host, port_text);
  if (!err.empty()) return err;
  uint16_t port = 0;
  if (!parse_port(port_text, port)) return "bad port (1-65535)";
  out = HostPort{std::string(host), port};
  return {};
}

}  // namespace core
