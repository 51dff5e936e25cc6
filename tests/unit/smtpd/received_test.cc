// The Received header: shape, the optional for-clause, HELO sanitising, and the RFC 5321 §4.1.3
// address literal ("[192.0.2.7]", "[IPv6:2001:db8::25]").
#include "smtpd/received.h"

#include <gtest/gtest.h>

using namespace smtpd;

namespace {
core::IpAddress ip(const char* text) {
  auto a = core::IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(core::IpAddress{});
}
}  // namespace

TEST(Received, HeaderShape) {
  ReceivedInfo r{.helo = "client.test", .client_ip = ip("192.0.2.7"), .hostname = "mx.test", .protocol = "ESMTP",
                 .id = "ABC.1", .recipient = "bob@example.org", .when = 0};
  EXPECT_EQ(received_header(r),
            "Received: from client.test ([192.0.2.7])\n\tby mx.test (mxfront) with ESMTP id ABC.1\n"
            "\tfor <bob@example.org>; Thu, 01 Jan 1970 00:00:00 +0000\n");
}

TEST(Received, NoForClauseWithSeveralRecipientsAndHeloSanitised) {
  ReceivedInfo r{.helo = "evil)(\"x", .client_ip = ip("192.0.2.9"), .hostname = "mx.test", .protocol = "SMTP", .id = "ABC.2"};
  std::string h = received_header(r);
  EXPECT_EQ(h.find("for <"), std::string::npos);
  EXPECT_NE(h.find("from evil???x ([192.0.2.9])"), std::string::npos);
}

TEST(Received, TlsClause) {
  ReceivedInfo r{.helo = "c", .client_ip = ip("192.0.2.7"), .hostname = "mx.test", .protocol = "ESMTPSA", .id = "X.1",
                 .tls = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"};
  EXPECT_NE(received_header(r).find("Received: from c ([192.0.2.7])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\n"
                                    "\tby mx.test (mxfront) with ESMTPSA id X.1;"),
            std::string::npos);
}

TEST(Received, Ipv6ClientIsAnIpv6AddressLiteral) {
  ReceivedInfo r{.helo = "client.test", .client_ip = ip("2001:db8::25"), .hostname = "mx.test", .protocol = "ESMTP",
                 .id = "ABC.3", .when = 0};
  EXPECT_EQ(received_header(r),
            "Received: from client.test ([IPv6:2001:db8::25])\n\tby mx.test (mxfront) with ESMTP id ABC.3;"
            " Thu, 01 Jan 1970 00:00:00 +0000\n");
  r.client_ip = ip("::1");
  EXPECT_NE(received_header(r).find("Received: from client.test ([IPv6:::1])\n"), std::string::npos);
}

TEST(Received, Ipv4MappedClientIsAnIpv4AddressLiteral) {
  ReceivedInfo r{.helo = "client.test", .client_ip = ip("::ffff:192.0.2.7"), .hostname = "mx.test",
                 .protocol = "ESMTP", .id = "ABC.4"};
  EXPECT_NE(received_header(r).find("Received: from client.test ([192.0.2.7])\n"), std::string::npos);
}
