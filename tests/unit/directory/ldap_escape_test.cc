// Unit tests for RFC 4515 filter escaping and %s substitution: the injection attempts an SMTP client
// could send as an address or AUTH login must become literal values, never filter syntax.
#include "directory/escape.h"

#include <gtest/gtest.h>

#include <cctype>

namespace ldap {
namespace {

using namespace std::string_literals;

struct Case {
  std::string in, out;
};

class FilterEscape : public ::testing::TestWithParam<Case> {};

TEST_P(FilterEscape, Escapes) { EXPECT_EQ(filter_escape(GetParam().in), GetParam().out); }

INSTANTIATE_TEST_SUITE_P(
    Values, FilterEscape,
    ::testing::Values(Case{"alice@example.org", "alice@example.org"},
                      Case{"first.last+tag@example.org", "first.last+tag@example.org"},
                      Case{"", ""},
                      Case{"*", "\\2a"},
                      Case{"*)(uid=*", "\\2a\\29\\28uid=\\2a"},
                      Case{")(|(mail=*", "\\29\\28|\\28mail=\\2a"},
                      Case{"*)(uid=*@example.org", "\\2a\\29\\28uid=\\2a@example.org"},
                      Case{"alice)(mail=*@example.org", "alice\\29\\28mail=\\2a@example.org"},
                      Case{"a\\b", "a\\5cb"},
                      Case{"\\2a", "\\5c2a"},  // an escape sequence sent by the client stays literal
                      Case{"a\0b"s, "a\\00b"},
                      Case{"\0"s, "\\00"},
                      Case{"line\r\nbreak", "line\\0d\\0abreak"},
                      Case{"del\x7f", "del\\7f"},
                      Case{"j\xc3\xa9r\xc3\xb4me@example.org", "j\\c3\\a9r\\c3\\b4me@example.org"},
                      Case{"\xff", "\\ff"}));

TEST(FilterEscape, NoByteSurvivesAsFilterSyntax) {
  for (int b = 0; b < 256; ++b) {
    std::string in(1, static_cast<char>(b));
    std::string out = filter_escape(in);
    if (out.size() == 1) {
      EXPECT_TRUE(b >= 0x20 && b < 0x7f && b != '*' && b != '(' && b != ')' && b != '\\') << b;
      continue;
    }
    ASSERT_EQ(out.size(), 3u) << b;
    EXPECT_EQ(out[0], '\\');
    EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(out[1])) && std::isxdigit(static_cast<unsigned char>(out[2])));
    EXPECT_EQ(std::stoi(out.substr(1), nullptr, 16), b);
  }
}

TEST(BuildFilter, SubstitutesEveryPercentS) {
  EXPECT_EQ(build_filter("(|(mail=%s)(mailAlternateAddress=%s))", "alice@example.org"),
            "(|(mail=alice@example.org)(mailAlternateAddress=alice@example.org))");
}

TEST(BuildFilter, InjectionStaysInsideTheAssertionValue) {
  EXPECT_EQ(build_filter("(|(mail=%s)(mailAlternateAddress=%s))", "*)(uid=*"),
            "(|(mail=\\2a\\29\\28uid=\\2a)(mailAlternateAddress=\\2a\\29\\28uid=\\2a))");
  EXPECT_EQ(build_filter("(uid=%s)", ")(|(mail=*"), "(uid=\\29\\28|\\28mail=\\2a)");
  EXPECT_EQ(build_filter("(uid=%s)", "*"), "(uid=\\2a)");
  EXPECT_EQ(build_filter("(uid=%s)", "a\0b"s), "(uid=a\\00b)");
  EXPECT_EQ(build_filter("(uid=%s)", "a\\"), "(uid=a\\5c)");
}

TEST(BuildFilter, OtherPercentSignsAreCopied) {
  EXPECT_EQ(build_filter("(&(uid=%s)(quota=100%))", "bob"), "(&(uid=bob)(quota=100%))");
  EXPECT_EQ(build_filter("(uid=%d)", "bob"), "(uid=%d)");
  EXPECT_EQ(build_filter("(uid=x)%", "bob"), "(uid=x)%");
  EXPECT_EQ(build_filter("(objectClass=*)", "bob"), "(objectClass=*)");  // no %s: the template as it is
}

TEST(BuildFilter, ValueContainingPercentSIsNotSubstitutedAgain) {
  EXPECT_EQ(build_filter("(uid=%s)", "%s"), "(uid=%s)");
  EXPECT_EQ(build_filter("(|(a=%s)(b=%s))", "%s*"), "(|(a=%s\\2a)(b=%s\\2a))");
}

}  // namespace
}  // namespace ldap
