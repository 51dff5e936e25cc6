// core/text.h: the sanitiser for text from outside (safe_text) and the quoted log field (quoted_for_log).
#include "core/text.h"

#include <string>

#include <gtest/gtest.h>

using core::quoted_for_log;
using core::safe_text;
using core::SafeChars;

namespace {

TEST(SafeText, PrintableAsciiPassesUnchanged) {
  std::string all;
  for (int c = 0x20; c < 0x7f; ++c) all += static_cast<char>(c);
  EXPECT_EQ(safe_text(all, all.size()), all);
}

TEST(SafeText, ControlDelAnd8BitBecomeQuestionMarks) {
  EXPECT_EQ(safe_text("a\r\nb"), "a??b");
  EXPECT_EQ(safe_text(std::string_view("x\0y\x7f\t", 5)), "x?y??");
  EXPECT_EQ(safe_text("caf\xc3\xa9"), "caf??");
}

TEST(SafeText, BoundedWithoutMark) {
  EXPECT_EQ(safe_text(std::string(500, 'a')).size(), core::kSafeTextMax);
  EXPECT_EQ(safe_text("abcdef", 3), "abc");
  EXPECT_EQ(safe_text("", 3), "");
}

TEST(SafeText, TokenKeepsOnlyNameAndAddressCharacters) {
  EXPECT_EQ(safe_text("mail-1.example_x", 255, SafeChars::Token), "mail-1.example_x");
  EXPECT_EQ(safe_text("[IPv6:2001:db8::1]", 255, SafeChars::Token), "[IPv6:2001:db8::1]");
  EXPECT_EQ(safe_text("evil)(\"x; by a b\r\n", 255, SafeChars::Token), "evil???x??by?a?b??");
}

TEST(QuotedForLog, EscapesQuoteBackslashAndNonPrintable) {
  EXPECT_EQ(quoted_for_log("plain text"), "\"plain text\"");
  EXPECT_EQ(quoted_for_log("a\"b\r"), "\"a\\\"b\\x0d\"");
  EXPECT_EQ(quoted_for_log("c:\\x"), "\"c:\\\\x\"");
  EXPECT_EQ(quoted_for_log(std::string_view("\0\n\x7f\xff", 4)), "\"\\x00\\x0a\\x7f\\xff\"");
  EXPECT_EQ(quoted_for_log(""), "\"\"");
}

TEST(QuotedForLog, BoundsTheInputNotTheEscapes) {
  EXPECT_EQ(quoted_for_log("abcdef", 3), "\"abc\"");
  EXPECT_EQ(quoted_for_log("\r\r\r\r", 2), "\"\\x0d\\x0d\"");
}

}  // namespace
