// core::valid_domain: the label rules, the length bounds, and what DomainRules::Dns adds ('_').
#include "core/domain.h"

#include <string>

#include <gtest/gtest.h>

using core::DomainRules;
using core::valid_domain;

namespace {

constexpr DomainRules kBoth[] = {DomainRules::Hostname, DomainRules::Dns};

TEST(Domain, PlainHostNames) {
  for (auto r : kBoth) {
    EXPECT_TRUE(valid_domain("example.org", r));
    EXPECT_TRUE(valid_domain("Mail-1.Example.ORG", r));
    EXPECT_TRUE(valid_domain("localhost", r));
    EXPECT_TRUE(valid_domain("192.0.2.1", r));  // all-digit labels are labels
    EXPECT_TRUE(valid_domain("xn--caf-dma.example", r));
    EXPECT_TRUE(valid_domain("a", r));
  }
}

TEST(Domain, DotsAndEmptyLabels) {
  for (auto r : kBoth) {
    EXPECT_FALSE(valid_domain("", r));
    EXPECT_FALSE(valid_domain(".", r));
    EXPECT_FALSE(valid_domain(".example.org", r));
    EXPECT_FALSE(valid_domain("example.org.", r));  // absolute names are refused
    EXPECT_FALSE(valid_domain("a..b", r));
  }
}

TEST(Domain, HyphenNeitherFirstNorLastInALabel) {
  for (auto r : kBoth) {
    EXPECT_TRUE(valid_domain("a-b.example", r));
    EXPECT_TRUE(valid_domain("a--b.example", r));
    EXPECT_FALSE(valid_domain("-a.example", r));
    EXPECT_FALSE(valid_domain("a-.example", r));
    EXPECT_FALSE(valid_domain("a.-example", r));
    EXPECT_FALSE(valid_domain("a.example-", r));
  }
}

TEST(Domain, OtherCharactersAreRefused) {
  for (auto r : kBoth)
    for (const char* d : {"a b.example", "[127.0.0.1]", "a@b.example", "caf\xc3\xa9.example", "a:b", "a/b", "a\r\nb",
                          "a*b.example"})
      EXPECT_FALSE(valid_domain(d, r)) << d;
  EXPECT_FALSE(valid_domain(std::string_view("a\0b", 3), DomainRules::Dns));
}

TEST(Domain, UnderscoreOnlyUnderDnsRules) {
  for (const char* d : {"a-b.example_x", "_dmarc.example.org", "x_.example", "exa_mple.org"}) {
    EXPECT_FALSE(valid_domain(d, DomainRules::Hostname)) << d;
    EXPECT_TRUE(valid_domain(d, DomainRules::Dns)) << d;
  }
  EXPECT_FALSE(valid_domain("_-.example", DomainRules::Dns));  // '-' rules still apply
}

TEST(Domain, LabelLengthIs63) {
  std::string l63(63, 'a');
  for (auto r : kBoth) {
    EXPECT_TRUE(valid_domain(l63 + ".example", r));
    EXPECT_FALSE(valid_domain(l63 + "a.example", r));
  }
}

TEST(Domain, TotalLengthIs253) {
  std::string l63(63, 'a');
  std::string d = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');  // 63*3 + 61 + 3 dots = 253
  ASSERT_EQ(d.size(), 253u);
  for (auto r : kBoth) {
    EXPECT_TRUE(valid_domain(d, r));
    EXPECT_FALSE(valid_domain(d + "b", r));
  }
}

}  // namespace
