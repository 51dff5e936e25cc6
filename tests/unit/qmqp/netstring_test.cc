// Unit tests for qmqp/netstring.h: encoding, QMQP request framing, the incremental decoder's
// acceptance policy (canonical netstrings only) and answer parsing.
#include "qmqp/netstring.h"

#include <gtest/gtest.h>

namespace qmqp {
namespace {

using State = NetstringDecoder::State;

// Feeds `input` in one piece; returns the state and leaves unconsumed bytes in `rest`.
State decode(NetstringDecoder& d, std::string_view input, std::string_view* rest = nullptr) {
  State s = d.feed(input);
  if (rest) *rest = input;
  return s;
}

TEST(Netstring, Encode) {
  EXPECT_EQ(netstring("hello"), "5:hello,");
  EXPECT_EQ(netstring(""), "0:,");
  EXPECT_EQ(netstring(std::string_view("a\0b", 3)), std::string("3:a\0b,", 6));
  EXPECT_EQ(netstring(std::string(12, 'x')), "12:" + std::string(12, 'x') + ",");
}

TEST(FrameRequest, MatchesSpecFraming) {
  Envelope env{"a@b.c", {"x@y.z", "w@v.u"}};
  std::string message = "Subject: t\n\nhi\n";
  Frame f = frame_request(env, message.size());
  std::string inner =
      netstring(message) + netstring("a@b.c") + netstring("x@y.z") + netstring("w@v.u");
  EXPECT_EQ(f.head + message + f.tail, netstring(inner));
  EXPECT_EQ(f.head, std::to_string(inner.size()) + ":15:");
}

TEST(FrameRequest, EmptySenderAndEmptyMessage) {
  Envelope env{"", {"r@x"}};
  Frame f = frame_request(env, 0);
  EXPECT_EQ(f.head + f.tail, "12:0:,0:,3:r@x,,");
}

TEST(FrameRequest, DecodesBackAsOneNetstring) {
  Envelope env{"s", {"r"}};
  std::string message(1000, 'm');
  Frame f = frame_request(env, message.size());
  NetstringDecoder d(1 << 20);
  std::string wire = f.head + message + f.tail;
  std::string_view rest;
  ASSERT_EQ(decode(d, wire, &rest), State::Done);
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(d.payload(), netstring(message) + "1:s,1:r,");
}

TEST(NetstringDecoder, Valid) {
  NetstringDecoder d(100);
  EXPECT_EQ(decode(d, "5:hello,"), State::Done);
  EXPECT_EQ(d.state(), State::Done);
  EXPECT_EQ(d.payload(), "hello");
}

TEST(NetstringDecoder, EmptyNetstring) {
  NetstringDecoder d(100);
  EXPECT_EQ(decode(d, "0:,"), State::Done);
  EXPECT_EQ(d.payload(), "");
}

TEST(NetstringDecoder, ByteByByte) {
  std::string wire = "12:hello, world,";
  NetstringDecoder d(100);
  for (size_t i = 0; i < wire.size(); ++i) {
    std::string_view one(&wire[i], 1);
    State s = d.feed(one);
    EXPECT_TRUE(one.empty()) << i;
    EXPECT_EQ(s, i + 1 == wire.size() ? State::Done : State::NeedMore) << i;
  }
  EXPECT_EQ(d.payload(), "hello, world");
}

TEST(NetstringDecoder, EmptyFeedNeedsMore) {
  NetstringDecoder d(100);
  std::string_view none;
  EXPECT_EQ(d.feed(none), State::NeedMore);
  EXPECT_EQ(decode(d, "3"), State::NeedMore);
  EXPECT_EQ(decode(d, ":ab"), State::NeedMore);
  EXPECT_EQ(decode(d, "c"), State::NeedMore);
  EXPECT_EQ(decode(d, ","), State::Done);
  EXPECT_EQ(d.payload(), "abc");
}

TEST(NetstringDecoder, TrailingBytesLeftInInput) {
  NetstringDecoder d(100);
  std::string_view rest;
  EXPECT_EQ(decode(d, "2:ok,3:abc,", &rest), State::Done);
  EXPECT_EQ(d.payload(), "ok");
  EXPECT_EQ(rest, "3:abc,");
  std::string_view more = "xyz";
  EXPECT_EQ(d.feed(more), State::Done);  // a finished decoder consumes nothing
  EXPECT_EQ(more, "xyz");
}

TEST(NetstringDecoder, LeadingZeroRejected) {
  NetstringDecoder d(100);
  EXPECT_EQ(decode(d, "05:hello,"), State::Error);
  EXPECT_NE(d.error().find("leading zero"), std::string::npos);
  NetstringDecoder d2(100);
  EXPECT_EQ(decode(d2, "00:,"), State::Error);
}

TEST(NetstringDecoder, MissingComma) {
  NetstringDecoder d(100);
  EXPECT_EQ(decode(d, "5:hello;"), State::Error);
  EXPECT_NE(d.error().find("','"), std::string::npos);
  EXPECT_EQ(d.state(), State::Error);
}

TEST(NetstringDecoder, NonDigitInLength) {
  for (std::string_view bad : {"a:", "1a:x,", " 1:x,", "-1:x,", "+1:x,"}) {
    NetstringDecoder d(100);
    EXPECT_EQ(decode(d, bad), State::Error) << bad;
  }
}

TEST(NetstringDecoder, MissingLength) {
  NetstringDecoder d(100);
  EXPECT_EQ(decode(d, ":,"), State::Error);
}

TEST(NetstringDecoder, LengthOverMax) {
  NetstringDecoder at(5);
  EXPECT_EQ(decode(at, "5:hello,"), State::Done);
  NetstringDecoder over(5);
  EXPECT_EQ(decode(over, "6:"), State::Error);  // rejected before any payload arrives
  NetstringDecoder huge(4096);
  EXPECT_EQ(decode(huge, "99999999999999999999999999:"), State::Error);  // no overflow
  EXPECT_NE(huge.error().find("too long"), std::string::npos);
}

TEST(NetstringDecoder, ErrorIsFinal) {
  NetstringDecoder d(100);
  std::string_view rest;
  EXPECT_EQ(decode(d, "x5:hello,", &rest), State::Error);
  EXPECT_EQ(rest, "5:hello,");
  EXPECT_EQ(decode(d, "5:hello,"), State::Error);
}

TEST(ParseAnswer, Codes) {
  Outcome k = parse_answer("KOk: queued as 1234");
  EXPECT_EQ(k.status, Status::Accepted);
  EXPECT_EQ(k.text, "Ok: queued as 1234");
  Outcome z = parse_answer("Zdisk full");
  EXPECT_EQ(z.status, Status::TempFail);
  EXPECT_EQ(z.text, "disk full");
  Outcome d = parse_answer("DError: no recipients specified");
  EXPECT_EQ(d.status, Status::PermFail);
  EXPECT_EQ(d.text, "Error: no recipients specified");
  EXPECT_EQ(parse_answer("K").status, Status::Accepted);
  EXPECT_EQ(parse_answer("K").text, "");
}

TEST(ParseAnswer, EmptyAndUnknown) {
  EXPECT_EQ(parse_answer("").status, Status::ProtocolError);
  EXPECT_EQ(parse_answer("Xwhat").status, Status::ProtocolError);
  EXPECT_EQ(parse_answer("kOk").status, Status::ProtocolError);  // codes are case-sensitive
}

}  // namespace
}  // namespace qmqp
