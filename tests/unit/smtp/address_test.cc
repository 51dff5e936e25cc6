// RFC 5321 path parsing and relay-probe shapes.
#include "smtp/address.h"

#include <gtest/gtest.h>

using namespace smtp;

namespace {

TEST(Address, SimpleMailbox) {
  auto r = parse_path("<User.Name+tag@Example.ORG>", PathKind::Recipient);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.ok->address.local, "User.Name+tag");
  EXPECT_EQ(r.ok->address.domain, "Example.ORG");
  EXPECT_EQ(r.ok->address.str(), "User.Name+tag@Example.ORG");
}

TEST(Address, LeadingSpaceAndParams) {
  auto r = parse_path(" <a@b.c> SIZE=100 body=8bitmime", PathKind::Sender);
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.ok->params.size(), 2u);
  EXPECT_EQ(r.ok->params[0].key, "SIZE");
  EXPECT_EQ(r.ok->params[0].value, "100");
  EXPECT_EQ(r.ok->params[1].key, "BODY");
}

TEST(Address, NullSenderOnlyForMail) {
  EXPECT_TRUE(parse_path("<>", PathKind::Sender).ok);
  EXPECT_FALSE(parse_path("<>", PathKind::Recipient).ok);
}

TEST(Address, PostmasterWithoutDomainOnlyAsRecipient) {
  auto r = parse_path("<Postmaster>", PathKind::Recipient);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.ok->address.domain.empty());
  EXPECT_FALSE(parse_path("<postmaster>", PathKind::Sender).ok);
  EXPECT_FALSE(parse_path("<bob>", PathKind::Recipient).ok);
}

TEST(Address, SourceRouteIsStripped) {
  auto r = parse_path("<@example.org,@relay.test:u@other.net>", PathKind::Recipient);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.ok->address.had_route);
  EXPECT_EQ(r.ok->address.str(), "u@other.net");
}

TEST(Address, QuotedLocalPart) {
  auto r = parse_path("<\"u@other.net\"@example.org>", PathKind::Recipient);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.ok->address.quoted);
  EXPECT_TRUE(has_routing_syntax(r.ok->address));
}

TEST(Address, RoutingSyntaxDetected) {
  EXPECT_TRUE(has_routing_syntax(parse_path("<u%other.net@example.org>", PathKind::Recipient).ok->address));
  EXPECT_TRUE(has_routing_syntax(parse_path("<other.net!u@example.org>", PathKind::Recipient).ok->address));
  EXPECT_FALSE(has_routing_syntax(parse_path("<u@example.org>", PathKind::Recipient).ok->address));
}

TEST(Address, AddressLiteral) {
  EXPECT_TRUE(parse_path("<u@[192.0.2.1]>", PathKind::Recipient).ok);
  EXPECT_TRUE(parse_path("<u@[IPv6:2001:db8::1]>", PathKind::Recipient).ok);
}

class BadPath : public ::testing::TestWithParam<const char*> {};
TEST_P(BadPath, IsRejected) { EXPECT_FALSE(parse_path(GetParam(), PathKind::Recipient).ok) << GetParam(); }
INSTANTIATE_TEST_SUITE_P(Address, BadPath,
                         ::testing::Values("u@example.org", "<u@example.org", "<u@other.net@example.org>", "<u@@example.org>",
                                           "<.u@example.org>", "<u..v@example.org>", "<u@-bad.org>", "<u@exa_mple.org>",
                                           "<u@>", "<@example.org>", "<\"unterminated@example.org>", "<u@example.org>x",
                                           "<caf\xc3\xa9@example.org>", "<u@example.org> =x",
                                           "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org>"));

}  // namespace
