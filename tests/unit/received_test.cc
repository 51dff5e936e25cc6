// The Received header: shape, the optional for-clause, and HELO sanitising.
#include "smtpd/received.h"

#include <gtest/gtest.h>

using namespace smtpd;

TEST(Received, HeaderShape) {
  ReceivedInfo r{"client.test", "192.0.2.7", "mx.test", "ESMTP", "ABC.1", "bob@example.org", 0};
  EXPECT_EQ(received_header(r),
            "Received: from client.test ([192.0.2.7])\n\tby mx.test (mxfront) with ESMTP id ABC.1\n"
            "\tfor <bob@example.org>; Thu, 01 Jan 1970 00:00:00 +0000\n");
}

TEST(Received, NoForClauseWithSeveralRecipientsAndHeloSanitised) {
  ReceivedInfo r{"evil)(\"x", "::1", "mx.test", "SMTP", "ABC.2", "", 0};
  std::string h = received_header(r);
  EXPECT_EQ(h.find("for <"), std::string::npos);
  EXPECT_NE(h.find("from evil???x ([::1])"), std::string::npos);
}
