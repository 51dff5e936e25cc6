// The no-open-relay decision for every classic relay probe shape.
#include "filters/relay_control.h"

#include <gtest/gtest.h>

using namespace filters;
using smtpd::parse_path;
using smtpd::PathKind;

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
