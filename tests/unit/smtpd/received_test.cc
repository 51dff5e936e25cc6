// The Received header: shape, the optional for-clause, and HELO sanitising.
#include "smtpd/received.h"

#include <gtest/gtest.h>

using namespace smtpd;

TEST(Received, HeaderShape) {
  ReceivedInfo r{.helo = "client.test", .client_ip = "192.0.2.7", .hostname = "mx.test", .protocol = "ESMTP",
                 .id = "ABC.1", .recipient = "bob@example.org", .when = 0};
  EXPECT_EQ(received_header(r),
            "Received: from client.test ([192.0.2.7])\n\tby mx.test (mxfront) with ESMTP id ABC.1\n"
            "\tfor <bob@example.org>; Thu, 01 Jan 1970 00:00:00 +0000\n");
}

TEST(Received, NoForClauseWithSeveralRecipientsAndHeloSanitised) {
  ReceivedInfo r{.helo = "evil)(\"x", .client_ip = "::1", .hostname = "mx.test", .protocol = "SMTP", .id = "ABC.2"};
  std::string h = received_header(r);
  EXPECT_EQ(h.find("for <"), std::string::npos);
  EXPECT_NE(h.find("from evil???x ([::1])"), std::string::npos);
}

TEST(Received, TlsClause) {
  ReceivedInfo r{.helo = "c", .client_ip = "192.0.2.7", .hostname = "mx.test", .protocol = "ESMTPSA", .id = "X.1",
                 .tls = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"};
  EXPECT_NE(received_header(r).find("Received: from c ([192.0.2.7])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\n"
                                    "\tby mx.test (mxfront) with ESMTPSA id X.1;"),
            std::string::npos);
}
