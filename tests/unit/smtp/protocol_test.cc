// smtp::Protocol behaviour: sequencing, PIPELINING order, DATA framing and transparency,
// limits, smuggling defence (CVE-2023-51764 family), drain and timeouts — no sockets.
#include "smtp/protocol.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

using smtp::Event;
using smtp::Protocol;
using smtp::Settings;

namespace {

struct Driver {
  explicit Driver(Settings s = {}) : p(std::move(s)) { p.greet(core::replies::greeting("mx.test")); take(); }

  Protocol p;
  std::function<void(Protocol&, Event)> decide = [](Protocol& p, Event) { p.accept(); };
  std::vector<std::string> messages;
  bool closed = false;

  std::string take() {
    std::string o = p.output();
    p.output().clear();
    return o;
  }

  // Feeds input and runs the engine until it wants more input; returns everything it wrote.
  std::string feed(std::string_view in) {
    p.receive(in);
    for (;;) {
      Event e = p.next();
      if (e == Event::NeedInput) break;
      if (e == Event::Close) {
        closed = true;
        break;
      }
      if (e == Event::Message) messages.push_back(p.message());
      decide(p, e);
    }
    return take();
  }
};

const std::string kEnvelope = "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";

TEST(Protocol, GreetingThenEhloAdvertisesExtensionsButNotDsnChunkingRequiretls) {
  Driver d;
  std::string out = d.feed("EHLO client.test\r\n");
  EXPECT_NE(out.find("250-localhost\r\n"), std::string::npos);
  EXPECT_NE(out.find("250-PIPELINING\r\n"), std::string::npos);
  EXPECT_NE(out.find("250-SIZE 10485760\r\n"), std::string::npos);
  EXPECT_NE(out.find("250-8BITMIME\r\n"), std::string::npos);
  EXPECT_NE(out.find("250 ENHANCEDSTATUSCODES\r\n"), std::string::npos);
  EXPECT_EQ(out.find("DSN"), std::string::npos);
  EXPECT_EQ(out.find("CHUNKING"), std::string::npos);
  EXPECT_EQ(out.find("REQUIRETLS"), std::string::npos);
  EXPECT_EQ(d.p.helo_name(), "client.test");
}

TEST(Protocol, FullTransactionDeliversDotUnstuffedLfMessage) {
  Driver d;
  std::string out = d.feed(kEnvelope);
  EXPECT_NE(out.find("354 "), std::string::npos);
  d.feed("Subject: x\r\n\r\n..leading dot\r\n.\r\n");
  ASSERT_EQ(d.messages.size(), 1u);
  EXPECT_EQ(d.messages[0], "Subject: x\n\n.leading dot\n");
  EXPECT_EQ(d.p.messages(), 1u);
}

TEST(Protocol, PipelinedCommandsAnsweredInOrderInOneBatch) {
  Driver d;
  std::string out = d.feed(kEnvelope);
  size_t ehlo = out.find("250 ENHANCEDSTATUSCODES"), mail = out.find("250 2.1.0"), rcpt = out.find("250 2.1.5"),
         data = out.find("354");
  ASSERT_NE(data, std::string::npos);
  EXPECT_LT(ehlo, mail);
  EXPECT_LT(mail, rcpt);
  EXPECT_LT(rcpt, data);
}

TEST(Protocol, EachDecisionPausesTheEngineUntilAnswered) {
  Driver d;
  d.decide = [](Protocol&, Event) {};  // never answer
  d.p.receive("EHLO a\r\nNOOP\r\n");
  EXPECT_EQ(d.p.next(), Event::Helo);
  EXPECT_EQ(d.p.next(), Event::Helo);  // still pending: NOOP not processed
  EXPECT_EQ(d.take(), "");
  d.p.accept();
  EXPECT_EQ(d.p.next(), Event::NeedInput);
  std::string out = d.take();
  EXPECT_LT(out.find("250 ENHANCED"), out.find("250 2.0.0 Ok"));
}

TEST(Protocol, BytesAfterDataAreNotCommandsBeforeThe354) {
  Driver d;
  d.decide = [](Protocol& p, Event e) {
    if (e == Event::DataStart) p.reject(core::replies::insufficient_storage());
    else p.accept();
  };
  std::string out = d.feed(kEnvelope + "NOOP\r\n");
  EXPECT_NE(out.find("452 4.3.1"), std::string::npos);
  EXPECT_NE(out.find("250 2.0.0 Ok"), std::string::npos);  // NOOP after a refused DATA is a command
  EXPECT_FALSE(d.p.in_data());
}

TEST(Protocol, RejectedRecipientIsNotAddedAndDataWithoutRecipientsIs554) {
  Driver d;
  d.decide = [](Protocol& p, Event e) {
    if (e == Event::RcptTo) p.reject(core::replies::relay_denied());
    else p.accept();
  };
  std::string out = d.feed(kEnvelope);
  EXPECT_NE(out.find("554 5.7.1"), std::string::npos);
  EXPECT_NE(out.find("554 5.5.1 No valid recipients"), std::string::npos);
}

struct SeqCase {
  const char* name;
  std::string input;
  std::string expect;
};

class Sequencing : public ::testing::TestWithParam<SeqCase> {};
TEST_P(Sequencing, Reply) {
  Driver d;
  std::string out = d.feed(GetParam().input);
  EXPECT_NE(out.find(GetParam().expect), std::string::npos) << out;
}
INSTANTIATE_TEST_SUITE_P(
    Protocol, Sequencing,
    ::testing::Values(
        SeqCase{"MailBeforeHelo", "MAIL FROM:<a@b.c>\r\n", "503 5.5.1 Send HELO"},
        SeqCase{"RcptBeforeMail", "EHLO a\r\nRCPT TO:<b@example.org>\r\n", "503 5.5.1"},
        SeqCase{"DataBeforeMail", "EHLO a\r\nDATA\r\n", "503 5.5.1"},
        SeqCase{"NestedMail", "EHLO a\r\nMAIL FROM:<a@b.c>\r\nMAIL FROM:<a@b.c>\r\n", "503 5.5.1 Bad sequence of commands: nested"},
        SeqCase{"UnknownCommand", "FOO\r\n", "500 5.5.1"},
        SeqCase{"NotImplementedExpn", "EXPN x\r\n", "502 5.5.1"},
        SeqCase{"NotImplementedBdat", "EHLO a\r\nBDAT 10 LAST\r\n", "502 5.5.1"},
        SeqCase{"VrfyNeverReveals", "VRFY root\r\n", "252 2.0.0"},
        SeqCase{"Help", "HELP\r\n", "214 2.0.0"},
        SeqCase{"Noop", "NOOP\r\n", "250 2.0.0 Ok"},
        SeqCase{"RsetWithArgument", "RSET x\r\n", "501 5.5.4"},
        SeqCase{"EhloWithoutName", "EHLO\r\n", "501 5.5.4"},
        SeqCase{"HeloIsPlain250", "HELO a.b\r\n", "250 localhost\r\n"},
        SeqCase{"HeloClientCannotUseParams", "HELO a\r\nMAIL FROM:<a@b.c> SIZE=10\r\n", "555 5.5.4"},
        SeqCase{"UnknownMailParam", "EHLO a\r\nMAIL FROM:<a@b.c> RET=FULL\r\n", "555 5.5.4"},
        SeqCase{"RcptDsnParamRefused", "EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<b@example.org> NOTIFY=NEVER\r\n", "555 5.5.4"},
        SeqCase{"SizeTooBig", "EHLO a\r\nMAIL FROM:<a@b.c> SIZE=99999999999\r\n", "552 5.3.4"},
        SeqCase{"SizeOverflow", "EHLO a\r\nMAIL FROM:<a@b.c> SIZE=999999999999999999999999\r\n", "552 5.3.4"},
        SeqCase{"SizeNotNumber", "EHLO a\r\nMAIL FROM:<a@b.c> SIZE=abc\r\n", "501 5.5.4"},
        SeqCase{"BodyBad", "EHLO a\r\nMAIL FROM:<a@b.c> BODY=BINARYMIME\r\n", "501 5.5.4"},
        SeqCase{"Body8bit", "EHLO a\r\nMAIL FROM:<a@b.c> BODY=8BITMIME\r\n", "250 2.1.0"},
        SeqCase{"NullSender", "EHLO a\r\nMAIL FROM:<>\r\n", "250 2.1.0"},
        SeqCase{"BadSender", "EHLO a\r\nMAIL FROM:a@b.c\r\n", "501 5.1.7"},
        SeqCase{"BadRecipient", "EHLO a\r\nMAIL FROM:<>\r\nRCPT TO:<a@@b>\r\n", "501 5.1.3"},
        SeqCase{"NulInCommand", std::string("NO\0OP\r\n", 7), "500 5.5.2 Invalid character"},
        SeqCase{"EightBitInCommand", "EHLO caf\xc3\xa9\r\n", "500 5.5.2 Invalid character"},
        SeqCase{"Quit", "QUIT\r\n", "221 2.0.0"},
        SeqCase{"LowercaseCommands", "ehlo a\r\nmail from:<a@b.c>\r\n", "250 2.1.0"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Protocol, RsetEndsTheTransaction) {
  Driver d;
  std::string out = d.feed("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRSET\r\nMAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(out.find("503"), std::string::npos) << out;
}

TEST(Protocol, TooManyRecipientsGets452AndKeepsTheFirst) {
  Settings s;
  s.recipients = 2;
  Driver d(s);
  std::string out = d.feed(
      "EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<1@example.org>\r\nRCPT TO:<2@example.org>\r\nRCPT TO:<3@example.org>\r\n");
  EXPECT_NE(out.find("452 4.5.3"), std::string::npos);
  EXPECT_EQ(d.p.transaction().recipients.size(), 2u);
}

TEST(Protocol, LongCommandLineGets500AndSessionContinues) {
  Driver d;
  std::string out = d.feed("NOOP " + std::string(600, 'x') + "\r\nNOOP\r\n");
  EXPECT_NE(out.find("500 5.5.2 Line too long"), std::string::npos);
  EXPECT_NE(out.find("250 2.0.0 Ok"), std::string::npos);
  EXPECT_FALSE(d.closed);
}

TEST(Protocol, LongCommandLineSplitAcrossReadsIsSkippedWhole) {
  Driver d;
  EXPECT_EQ(d.feed("NOOP " + std::string(600, 'x')), "");
  EXPECT_EQ(d.feed(std::string(600, 'y')), "");
  std::string out = d.feed("zz\r\nNOOP\r\n");
  EXPECT_EQ(out, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
}

TEST(Protocol, CommandLineOf512OctetsIsAccepted) {
  Driver d;
  std::string out = d.feed("NOOP " + std::string(512 - 7, 'x') + "\r\n");
  EXPECT_EQ(out, "250 2.0.0 Ok\r\n");
}

TEST(Protocol, DataLinesOf1000OctetsAndLongerUpToTheCapAreKept) {
  Settings s;
  s.data_line_length = 5000;
  Driver d(s);
  d.feed(kEnvelope);
  std::string l998(998, 'a'), l4000(4000, 'b');
  d.feed(l998 + "\r\n" + l4000 + "\r\n.\r\n");
  ASSERT_EQ(d.messages.size(), 1u);
  EXPECT_EQ(d.messages[0], l998 + "\n" + l4000 + "\n");
}

TEST(Protocol, DataLinePastTheCapIs552AndNothingIsDelivered) {
  Settings s;
  s.data_line_length = 1000;
  Driver d(s);
  d.feed(kEnvelope);
  std::string out = d.feed(std::string(999, 'a') + "\r\nok\r\n.\r\n");
  EXPECT_NE(out.find("552 5.3.4 Line too long"), std::string::npos);
  EXPECT_TRUE(d.messages.empty());
  EXPECT_EQ(d.feed("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST(Protocol, MessageOverSizeIs552AndNothingIsDelivered) {
  Settings s;
  s.message_size = 1024;
  Driver d(s);
  d.feed(kEnvelope);
  std::string out;
  for (int i = 0; i < 30; ++i) out += d.feed(std::string(70, 'x') + "\r\n");
  out += d.feed(".\r\n");
  EXPECT_NE(out.find("552 5.3.4 Message size"), std::string::npos);
  EXPECT_TRUE(d.messages.empty());
  EXPECT_LT(d.p.held_bytes(), 70000u);
}

// RFC 1870: the size is the message's octets with CRLF line ends, without the dots added by
// dot-stuffing and without the terminating ".": a message of exactly limits.message_size octets,
// announced with SIZE=N, is accepted; one octet more is refused.
TEST(Protocol, MessageOfExactlyTheSizeLimitWithStuffedLinesIsAcceptedOneMoreIsNot) {
  const size_t n = 1024;
  auto content = [](size_t octets) {  // lines starting with '.', CRLF ends, `octets` long in all
    std::string c;
    while (c.size() + 40 <= octets) c += "." + std::string(37, 'x') + "\r\n";
    c += std::string(octets - c.size() - 2, 'y') + "\r\n";
    return c;
  };
  auto stuffed = [](const std::string& c) {
    std::string w;
    bool bol = true;
    for (char ch : c) {
      if (bol && ch == '.') w += '.';
      w += ch;
      bol = ch == '\n';
    }
    return w;
  };
  for (size_t size : {n, n + 1}) {
    Settings s;
    s.message_size = n;
    Driver d(s);
    std::string c = content(size);
    ASSERT_EQ(c.size(), size);
    std::string out = d.feed("EHLO c.test\r\nMAIL FROM:<a@x.test> SIZE=" + std::to_string(size) +
                             "\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    if (size > n) {  // SIZE=N+1 is refused at MAIL; without SIZE the data itself is too big
      EXPECT_NE(out.find("552 5.3.4"), std::string::npos) << out;
      out = d.feed("RSET\r\n" + kEnvelope);
    }
    out = d.feed(stuffed(c) + ".\r\n");
    if (size == n) {
      EXPECT_EQ(out, "250 2.0.0 Ok\r\n");
      ASSERT_EQ(d.messages.size(), 1u);
      EXPECT_EQ(d.messages[0].size(), n - std::count(c.begin(), c.end(), '\n'));  // LF line ends
    } else {
      EXPECT_NE(out.find("552 5.3.4 Message size"), std::string::npos) << out;
      EXPECT_TRUE(d.messages.empty());
    }
  }
}

TEST(Protocol, EndOfDataSplitAcrossEveryByteBoundary) {
  const std::string body = "a\r\n..b\r\n.\r\n";
  for (size_t cut = 1; cut < body.size(); ++cut) {
    Driver d;
    d.feed(kEnvelope);
    d.feed(body.substr(0, cut));
    d.feed(body.substr(cut));
    ASSERT_EQ(d.messages.size(), 1u) << cut;
    EXPECT_EQ(d.messages[0], "a\n.b\n") << cut;
  }
}

TEST(Protocol, EmptyMessage) {
  Driver d;
  d.feed(kEnvelope + ".\r\n");
  ASSERT_EQ(d.messages.size(), 1u);
  EXPECT_EQ(d.messages[0], "");
}

TEST(Protocol, EightBitAndNulBytesInDataAreTransparent) {
  Driver d;
  d.feed(kEnvelope);
  std::string line = "caf\xc3\xa9 \xff";
  line += '\0';
  line += "x";
  d.feed(line + "\r\n.\r\n");
  ASSERT_EQ(d.messages.size(), 1u);
  EXPECT_EQ(d.messages[0], line + "\n");
}

TEST(Protocol, PipelinedQuitAfterDataIsProcessedAfterTheMessageReply) {
  Driver d;
  std::string out = d.feed(kEnvelope + "x\r\n.\r\nQUIT\r\n");
  EXPECT_LT(out.find("250 2.0.0 Ok"), out.find("221 2.0.0"));
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(d.messages.size(), 1u);
}

// CVE-2023-51764 family: every non-CRLF end-of-data and bare CR/LF closes the session.
class Smuggling : public ::testing::TestWithParam<std::pair<const char*, std::string>> {};
TEST_P(Smuggling, BareLineEndingClosesWithoutDelivering) {
  const std::string& payload = GetParam().second;
  std::string smuggled = "x\r\n" + payload + "MAIL FROM:<evil@x.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nevil\r\n.\r\n";
  // in one write
  Driver d1;
  std::string out = d1.feed(kEnvelope + smuggled);
  EXPECT_NE(out.find("554 5.5.2"), std::string::npos) << out;
  EXPECT_TRUE(d1.closed);
  EXPECT_TRUE(d1.messages.empty());
  // byte by byte
  Driver d2;
  d2.feed(kEnvelope);
  out.clear();
  for (char c : smuggled) {
    out += d2.feed(std::string_view(&c, 1));
    if (d2.closed) break;
  }
  EXPECT_NE(out.find("554 5.5.2"), std::string::npos) << out;
  EXPECT_TRUE(d2.closed);
  EXPECT_TRUE(d2.messages.empty());
}
INSTANTIATE_TEST_SUITE_P(
    Protocol, Smuggling,
    ::testing::Values(std::make_pair("LfDotLf", std::string("\n.\n")), std::make_pair("LfDotCrLf", std::string("\n.\r\n")),
                      std::make_pair("CrLfDotLf", std::string("\r\n.\n")), std::make_pair("CrDotCrLf", std::string("\r.\r\n")),
                      std::make_pair("CrLfDotCr", std::string("\r\n.\rX")), std::make_pair("CrDotCr", std::string("\r.\r")),
                      std::make_pair("LfDotCr", std::string("\n.\r")), std::make_pair("BareLf", std::string("a\nb\r\n")),
                      std::make_pair("BareCr", std::string("a\rb\r\n"))),
    [](const auto& info) { return std::string(info.param.first); });

TEST(Protocol, NulDotIsNotEndOfData) {
  // "\r\n\0.\r\n" must not end the message (it is data); the real end comes later.
  Driver d;
  d.feed(kEnvelope);
  d.feed(std::string("a\r\n\0.\r\nb\r\n.\r\n", 13));
  ASSERT_EQ(d.messages.size(), 1u);
  EXPECT_EQ(d.messages[0], std::string("a\n\0.\nb\n", 7));
}

TEST(Protocol, BareLfEndingACommandCloses) {
  Driver d;
  std::string out = d.feed("NOOP\nNOOP\r\n");
  EXPECT_EQ(out, core::replies::bare_line_ending().wire());
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(name(d.p.close_reason()), "violation");
}

TEST(Protocol, BareCrInsideACommandCloses) {
  Driver d;
  std::string out = d.feed("NOOP\rRSET\r\n");
  EXPECT_NE(out.find("554 5.5.2"), std::string::npos);
  EXPECT_TRUE(d.closed);
}

TEST(Protocol, TooManyErrorsCloses) {
  Settings s;
  s.error_limit = 3;
  Driver d(s);
  std::string out = d.feed("A\r\nB\r\nC\r\nNOOP\r\n");
  EXPECT_NE(out.find("421 4.7.0"), std::string::npos);
  EXPECT_TRUE(d.closed);
}

TEST(Protocol, DrainingAnswersIdleCommandsWith421) {
  Driver d;
  d.feed("EHLO a\r\n");
  d.p.set_draining();
  std::string out = d.feed("NOOP\r\n");
  EXPECT_EQ(out, core::replies::shutting_down().wire());
  EXPECT_TRUE(d.closed);
}

TEST(Protocol, DrainingLetsATransactionInProgressFinish) {
  Driver d;
  d.feed(kEnvelope);
  d.p.set_draining();
  std::string out = d.feed("x\r\n.\r\nNOOP\r\n");
  EXPECT_EQ(d.messages.size(), 1u);
  EXPECT_NE(out.find("250 2.0.0 Ok"), std::string::npos);
  EXPECT_NE(out.find("421 4.3.2"), std::string::npos);
}

TEST(Protocol, ShutDownClosesAnIdleSessionAtOnceWith421) {
  Driver d;
  d.feed("EHLO a\r\n");
  d.p.shut_down();
  EXPECT_EQ(d.p.next(), Event::Close);
  EXPECT_EQ(d.take(), core::replies::shutting_down().wire());
  EXPECT_EQ(d.p.close_reason(), smtp::CloseReason::Shutdown);
}

TEST(Protocol, ShutDownInsideATransactionLetsItFinishThen421) {
  Driver d;
  d.feed(kEnvelope);
  d.p.shut_down();
  EXPECT_FALSE(d.p.closing());
  std::string out = d.feed("x\r\n.\r\nNOOP\r\n");
  EXPECT_EQ(d.messages.size(), 1u);
  EXPECT_NE(out.find("250 2.0.0 Ok"), std::string::npos);
  EXPECT_NE(out.find("421 4.3.2"), std::string::npos);
}

TEST(Protocol, TimeoutSends421AndCloses) {
  Driver d;
  d.p.timeout();
  EXPECT_EQ(d.p.next(), Event::Close);
  EXPECT_EQ(d.take(), "421 4.4.2 Timeout exceeded, closing connection\r\n");
}

TEST(Protocol, AbortDataAnswersTheGivenReplyAtEndOfData) {
  Driver d;
  d.feed(kEnvelope);
  d.feed("part one\r\n");
  d.p.abort_data(core::replies::insufficient_storage());
  std::string out = d.feed("part two\r\n.\r\n");
  EXPECT_NE(out.find("452 4.3.1"), std::string::npos);
  EXPECT_TRUE(d.messages.empty());
}

TEST(Protocol, RefusalGreetingCloses) {
  Protocol p(Settings{});
  p.greet(core::replies::too_many_connections());
  EXPECT_EQ(p.next(), Event::Close);
  EXPECT_EQ(p.output(), "421 4.3.2 Too many connections, try again later\r\n");
}

TEST(Protocol, EveryReplyAfterGreetingCarriesAnEnhancedCodeExceptEhloAnd354) {
  Driver d;
  std::string out = d.feed(kEnvelope + "x\r\n.\r\nRSET\r\nNOOP\r\nVRFY a\r\nFOO\r\nQUIT\r\n");
  size_t pos = 0;
  while (pos < out.size()) {
    size_t e = out.find("\r\n", pos);
    std::string line = out.substr(pos, e - pos);
    pos = e + 2;
    if (line.rfind("250-", 0) == 0 || line.rfind("250 ENHANCED", 0) == 0 || line.rfind("354", 0) == 0) continue;
    ASSERT_GE(line.size(), 9u) << line;
    EXPECT_TRUE(isdigit(line[4]) && line[5] == '.') << line;
  }
}

using smtp::CloseReason;

// The disconnect line's reason= values: operators and the integration tests grep these.
TEST(CloseReason, NamesAreTheLoggedOnes) {
  const std::pair<CloseReason, std::string_view> names[] = {
      {CloseReason::None, ""},           {CloseReason::Quit, "quit"},           {CloseReason::Eof, "eof"},
      {CloseReason::Error, "error"},     {CloseReason::Timeout, "timeout"},     {CloseReason::Violation, "violation"},
      {CloseReason::Errors, "errors"},   {CloseReason::Auth, "auth"},           {CloseReason::Shutdown, "shutdown"},
      {CloseReason::Limit, "limit"},     {CloseReason::Rejected, "rejected"},   {CloseReason::Refused, "refused"},
      {CloseReason::Proxy, "proxy"},     {CloseReason::Tls, "tls"},
  };
  for (const auto& [r, n] : names) EXPECT_EQ(name(r), n);
}

TEST(CloseReason, TheEngineNamesWhyItClosed) {
  Driver quit;
  quit.feed("QUIT\r\n");
  EXPECT_EQ(quit.p.close_reason(), CloseReason::Quit);
  Driver open;
  open.feed("NOOP\r\n");
  EXPECT_EQ(open.p.close_reason(), CloseReason::None);
}

}  // namespace
