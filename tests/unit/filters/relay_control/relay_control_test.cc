// The no-open-relay decision for every classic relay probe shape.
#include "filters/relay_control/relay_control.h"

#include <gtest/gtest.h>

using namespace filters;
using smtp::parse_path;
using smtp::PathKind;

namespace {
Action decide(const char* path) {
  RelayControl rc({"example.org"});
  auto p = parse_path(path, PathKind::Recipient);
  EXPECT_TRUE(p.ok) << path;
  return rc.decide(p.ok->address).action;
}

TEST(RelayControl, LocalDomainAcceptedCaseInsensitively) {
  EXPECT_EQ(decide("<bob@example.org>"), Action::Accept);
  EXPECT_EQ(decide("<Bob@EXAMPLE.Org>"), Action::Accept);
  EXPECT_EQ(decide("<postmaster>"), Action::Accept);
}

class Probe : public ::testing::TestWithParam<const char*> {};
TEST_P(Probe, IsRelayDenied) { EXPECT_EQ(decide(GetParam()), Action::Reject) << GetParam(); }
INSTANTIATE_TEST_SUITE_P(RelayControl, Probe,
                         ::testing::Values("<u@other.net>", "<u@sub.example.org>", "<u@example.org.evil.test>",
                                           "<u%other.net@example.org>", "<\"u@other.net\"@example.org>",
                                           "<\"u%other.net\"@example.org>", "<@example.org:u@other.net>",
                                           "<other.net!u@example.org>", "<u@[127.0.0.1]>"));

TEST(RelayControl, DoubleAtIsASyntaxErrorBeforeRelayControl) {
  EXPECT_FALSE(parse_path("<u@other.net@example.org>", PathKind::Recipient).ok);
}
}  // namespace

TEST(RelayControl, AuthenticatedClientsMayRelayButNotWithRoutingSyntax) {
  RelayControl rc({"example.org"});
  auto ext = parse_path("<friend@elsewhere.test>", PathKind::Recipient).ok->address;
  EXPECT_EQ(rc.decide(ext, false).action, Action::Reject);
  EXPECT_EQ(rc.decide(ext, true).action, Action::Accept);
  auto probe = parse_path("<u%other.net@example.org>", PathKind::Recipient).ok->address;
  EXPECT_EQ(rc.decide(probe, true).action, Action::Reject);
}

TEST(RelayControl, DirectoryAnswersMapToRepliesAndUnavailableIsTemporary) {
  EXPECT_EQ(RelayControl::from_lookup({ldap::Lookup::Found, "a@example.org", ""}).action, Action::Accept);
  Verdict unknown = RelayControl::from_lookup({ldap::Lookup::NotFound, "", ""});
  EXPECT_EQ(unknown.action, Action::Reject);
  EXPECT_EQ(unknown.reply->code, 550);
  EXPECT_EQ(unknown.reply->enhanced, "5.1.1");
  EXPECT_EQ(RelayControl::from_lookup({ldap::Lookup::Disabled, "", ""}).reply->enhanced, "5.2.1");
  Verdict down = RelayControl::from_lookup({ldap::Lookup::Unavailable, "", "ldap://x timed out"});
  EXPECT_EQ(down.action, Action::TempFail);
  EXPECT_EQ(down.reply->code, 451);
  EXPECT_EQ(down.reply->enhanced, "4.3.0");
}
