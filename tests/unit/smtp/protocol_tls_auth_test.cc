// smtp::Protocol: STARTTLS (RFC 3207, CVE-2011-0411) and AUTH PLAIN/LOGIN (RFC 4954) rules,
// and the submission profile's "AUTH before MAIL".
#include <gtest/gtest.h>

#include "core/base64.h"
#include "smtp/protocol.h"

using smtp::Event;
using smtp::Protocol;
using smtp::Settings;

namespace {

Settings submission(bool tls_active = false) {
  Settings s;
  s.starttls = true;
  s.auth = true;
  s.auth_required = true;
  s.tls_active = tls_active;
  s.auth_failure_limit = 3;
  return s;
}

// Drives the engine; StartTls is "handshake ok"; Auth accepts alice/secret only.
struct Driver {
  explicit Driver(Settings s) : p(std::move(s)) { p.greet(core::replies::greeting("mx.test")); p.output().clear(); }
  Protocol p;
  std::vector<std::pair<std::string, std::string>> auth_attempts;
  int handshakes = 0;
  bool closed = false;

  std::string feed(std::string_view in) {
    p.receive(in);
    for (;;) {
      Event e = p.next();
      if (e == Event::NeedInput) break;
      if (e == Event::Close) {
        closed = true;
        break;
      }
      if (e == Event::StartTls) ++handshakes;
      if (e == Event::Auth) {
        auth_attempts.emplace_back(p.auth_login(), p.auth_password());
        if (p.auth_login() == "alice" && p.auth_password() == "secret") p.accept();
        else p.reject(core::replies::auth_failed());
        continue;
      }
      p.accept();
    }
    std::string o = p.output();
    p.output().clear();
    return o;
  }
};

std::string b64(std::string_view s) { return core::base64_encode(s); }
const std::string kPlainAlice = b64(std::string("\0alice\0secret", 13));

TEST(StartTls, OfferedBeforeTlsAndAuthNotOfferedBeforeTls) {
  Driver d(submission());
  std::string out = d.feed("EHLO c\r\n");
  EXPECT_NE(out.find("250 STARTTLS\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("AUTH"), std::string::npos) << out;
}

TEST(StartTls, AfterHandshakeStateIsResetAndAuthIsOffered) {
  Driver d(submission());
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(d.handshakes, 1);
  EXPECT_TRUE(d.p.tls_active());
  EXPECT_NE(d.feed("MAIL FROM:<a@b.c>\r\n").find("503 5.5.1 Send HELO"), std::string::npos);  // EHLO again first
  std::string out = d.feed("EHLO c\r\n");
  EXPECT_EQ(out.find("STARTTLS"), std::string::npos) << out;
  EXPECT_NE(out.find("250 AUTH PLAIN LOGIN\r\n"), std::string::npos) << out;
}

TEST(StartTls, PipelinedCommandsAfterStartTlsAreDiscardedNotExecuted) {
  Driver d(submission());
  d.feed("EHLO c\r\n");
  std::string out = d.feed("STARTTLS\r\nNOOP\r\nMAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(out, "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(d.feed(""), "");  // nothing left to answer inside TLS
  EXPECT_FALSE(d.p.has_unprocessed_input());
}

TEST(StartTls, SecondStartTlsIsRefused) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_NE(d.feed("STARTTLS\r\n").find("503 5.5.1 TLS already active"), std::string::npos);
}

TEST(StartTls, NotOfferedMeansNotImplemented) {
  Driver d(Settings{});
  d.feed("EHLO c\r\n");
  EXPECT_NE(d.feed("STARTTLS\r\n").find("502 5.5.1"), std::string::npos);
}

TEST(Auth, BeforeTlsIs538) {
  Driver d(submission());
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH PLAIN " + kPlainAlice + "\r\n"),
            "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
  EXPECT_TRUE(d.auth_attempts.empty());
}

TEST(Auth, MailWithoutAuthOnSubmissionIs530) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_NE(d.feed("MAIL FROM:<a@b.c>\r\n").find("530 5.7.0"), std::string::npos);
}

TEST(Auth, PlainWithInitialResponse) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH PLAIN " + kPlainAlice + "\r\n"), "235 2.7.0 Authentication successful\r\n");
  EXPECT_TRUE(d.p.authenticated());
  EXPECT_EQ(d.p.auth_user(), "alice");
  EXPECT_EQ(d.p.received_protocol(), "ESMTPSA");
  EXPECT_NE(d.feed("MAIL FROM:<a@b.c>\r\n").find("250 2.1.0"), std::string::npos);
}

TEST(Auth, PlainWithEmptyChallenge) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH PLAIN\r\n"), "334 \r\n");
  EXPECT_EQ(d.feed(kPlainAlice + "\r\n"), "235 2.7.0 Authentication successful\r\n");
}

TEST(Auth, Login) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(d.feed(b64("alice") + "\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.feed(b64("secret") + "\r\n"), "235 2.7.0 Authentication successful\r\n");
  ASSERT_EQ(d.auth_attempts.size(), 1u);
  EXPECT_EQ(d.auth_attempts[0].first, "alice");
}

TEST(Auth, LoginWithInitialUsername) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH LOGIN " + b64("alice") + "\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.feed(b64("secret") + "\r\n"), "235 2.7.0 Authentication successful\r\n");
}

TEST(Auth, CancelIs501) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  d.feed("AUTH LOGIN\r\n");
  EXPECT_EQ(d.feed("*\r\n"), "501 5.0.0 Authentication canceled\r\n");
  EXPECT_FALSE(d.p.authenticated());
  EXPECT_EQ(d.feed("NOOP\r\n"), "250 2.0.0 Ok\r\n");  // back in command mode
}

TEST(Auth, MalformedBase64Is501) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH PLAIN !!!\r\n"), "501 5.5.2 Cannot decode response\r\n");
  d.feed("AUTH PLAIN\r\n");
  EXPECT_EQ(d.feed("abc\r\n"), "501 5.5.2 Cannot decode response\r\n");
  EXPECT_EQ(d.feed("AUTH PLAIN " + b64("no-nuls") + "\r\n"), "501 5.5.2 Cannot decode response\r\n");
}

TEST(Auth, UnknownMechanismIs504) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH CRAM-MD5\r\n"), "504 5.5.4 Unrecognized authentication type\r\n");
}

TEST(Auth, WrongPasswordIs535AndTheThirdFailureCloses) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  std::string bad = b64(std::string("\0alice\0nope", 11));
  EXPECT_EQ(d.feed("AUTH PLAIN " + bad + "\r\n"), "535 5.7.8 Authentication credentials invalid\r\n");
  EXPECT_EQ(d.feed("AUTH PLAIN " + bad + "\r\n"), "535 5.7.8 Authentication credentials invalid\r\n");
  std::string out = d.feed("AUTH PLAIN " + bad + "\r\n");
  EXPECT_NE(out.find("421 4.7.0"), std::string::npos) << out;
  EXPECT_TRUE(d.closed);
}

TEST(Auth, AuthzidOtherThanAuthcidFails) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  std::string out = d.feed("AUTH PLAIN " + b64(std::string("bob\0alice\0secret", 16)) + "\r\n");
  EXPECT_NE(out.find("535 5.7.8"), std::string::npos) << out;
}

TEST(Auth, SecondAuthAndAuthInTransactionAre503) {
  Driver d(submission(true));
  d.feed("EHLO c\r\nAUTH PLAIN " + kPlainAlice + "\r\n");
  EXPECT_NE(d.feed("AUTH PLAIN " + kPlainAlice + "\r\n").find("503 5.5.1 Already"), std::string::npos);
}

TEST(Auth, NotEnabledOnMxProfile) {
  Settings s;
  s.tls_active = true;
  Driver d(s);
  d.feed("EHLO c\r\n");
  EXPECT_NE(d.feed("AUTH PLAIN " + kPlainAlice + "\r\n").find("503 5.5.1 Authentication not enabled"), std::string::npos);
}

// Issue 12 item 11: an error inside the exchange ends it; the next line is a command again.
TEST(Auth, AnOverlongLineEndsTheLoginExchange) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(d.feed(std::string(600, 'A') + "\r\n").substr(0, 9), "500 5.5.2");
  // NOOP is a command, not the username (before: "334 UGFzc3dvcmQ6", then NOOP's base64 was the login)
  EXPECT_EQ(d.feed("NOOP\r\n").substr(0, 3), "250");
  EXPECT_TRUE(d.auth_attempts.empty());
}

TEST(Auth, AnOverlongLineInPiecesEndsThePasswordStep) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  d.feed("AUTH LOGIN " + b64("alice") + "\r\n");
  d.feed(std::string(400, 'A'));
  EXPECT_EQ(d.feed(std::string(400, 'A') + "\r\n").substr(0, 9), "500 5.5.2");
  EXPECT_EQ(d.feed(b64("secret") + "\r\n").substr(0, 3), "500");  // not taken as the password
  EXPECT_TRUE(d.auth_attempts.empty());
  EXPECT_FALSE(d.p.authenticated());
  EXPECT_EQ(d.feed("AUTH PLAIN " + kPlainAlice + "\r\n").substr(0, 3), "235");  // a new exchange works
}

TEST(Auth, AnOverlongPlainResponseEndsTheExchange) {
  Driver d(submission(true));
  d.feed("EHLO c\r\n");
  EXPECT_EQ(d.feed("AUTH PLAIN\r\n"), "334 \r\n");
  EXPECT_EQ(d.feed(std::string(1000, 'A') + "\r\n").substr(0, 9), "500 5.5.2");
  EXPECT_EQ(d.feed(kPlainAlice + "\r\n").substr(0, 3), "500");
  EXPECT_TRUE(d.auth_attempts.empty());
}

TEST(Base64, StrictDecoding) {
  EXPECT_EQ(core::base64_decode("YWxpY2U="), "alice");
  EXPECT_EQ(core::base64_decode(""), "");
  EXPECT_FALSE(core::base64_decode("YWxpY2U"));
  EXPECT_FALSE(core::base64_decode("YW=pY2U="));
  EXPECT_FALSE(core::base64_decode("YWxpY2V="));  // non-canonical trailing bits
  EXPECT_EQ(core::base64_encode("alice"), "YWxpY2U=");
}

}  // namespace
