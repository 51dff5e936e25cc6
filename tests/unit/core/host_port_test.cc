// core::HostPort: the bracketed text form and parse_host_port's accepted forms and error texts.
#include "core/host_port.h"

#include <gtest/gtest.h>

using core::HostPort;
using core::HostSyntax;

namespace {

HostPort parsed(std::string_view s, HostSyntax syntax = HostSyntax::Numeric) {
  HostPort hp;
  std::string err = core::parse_host_port(s, hp, syntax);
  EXPECT_EQ(err, "") << s;
  return hp;
}

std::string error_of(std::string_view s, HostSyntax syntax = HostSyntax::Numeric) {
  HostPort hp{"untouched", 7};
  std::string err = core::parse_host_port(s, hp, syntax);
  EXPECT_EQ(hp.host, "untouched") << s;
  EXPECT_EQ(hp.port, 7) << s;
  return err;
}

TEST(HostPort, StrBracketsIpv6Only) {
  EXPECT_EQ((HostPort{"192.0.2.1", 25}).str(), "192.0.2.1:25");
  EXPECT_EQ((HostPort{"mail.example.org", 628}).str(), "mail.example.org:628");
  EXPECT_EQ((HostPort{"2001:db8::1", 25}).str(), "[2001:db8::1]:25");
  EXPECT_EQ((HostPort{"::", 2525}).str(), "[::]:2525");
}

TEST(HostPort, ParsesIpv4Ipv6AndNames) {
  HostPort a = parsed("127.0.0.1:2525");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 2525);
  HostPort b = parsed("[::1]:25");
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.port, 25);
  HostPort c = parsed("qmqp.example.org:628", HostSyntax::Name);
  EXPECT_EQ(c.host, "qmqp.example.org");
  EXPECT_EQ(c.port, 628);
  EXPECT_EQ(parsed("[2001:db8::1]:65535", HostSyntax::Name).port, 65535);
}

TEST(HostPort, StrAndParseRoundTrip) {
  for (const char* s : {"192.0.2.1:1", "[2001:db8::25]:587", "[::ffff:192.0.2.1]:25"}) EXPECT_EQ(parsed(s).str(), s);
  EXPECT_EQ(parsed("relay_1:628", HostSyntax::Name).str(), "relay_1:628");
}

TEST(HostPort, ErrorTexts) {
  EXPECT_EQ(error_of("[::1]"), "expected \"[ipv6]:port\"");
  EXPECT_EQ(error_of("[::1]25"), "expected \"[ipv6]:port\"");
  EXPECT_EQ(error_of("[::1"), "expected \"[ipv6]:port\"");
  EXPECT_EQ(error_of("[192.0.2.1]:25"), "bad IPv6 address");
  EXPECT_EQ(error_of("::1:25"), "expected \"host:port\" (IPv6 goes in brackets)");
  EXPECT_EQ(error_of("127.0.0.1"), "expected \"host:port\" (IPv6 goes in brackets)");
  EXPECT_EQ(error_of("localhost:25"), "expected a numeric IPv4 address or [IPv6]");
  EXPECT_EQ(error_of(":25"), "expected a numeric IPv4 address or [IPv6]");
  EXPECT_EQ(error_of(":25", HostSyntax::Name), "empty host");
  for (const char* s : {"127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:25x", "127.0.0.1:-1", "127.0.0.1: 25"})
    EXPECT_EQ(error_of(s), "bad port (1-65535)") << s;
}

}  // namespace
