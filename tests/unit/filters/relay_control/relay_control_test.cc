// The no-open-relay decision for every classic relay probe shape.
#include "filters/relay_control/relay_control.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

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

// Issue 12 item 10: <postmaster> and postmaster@<local domain> both stand for relay.postmaster.
namespace {
struct KnowsOnly final : ldap::Directory {
  explicit KnowsOnly(std::vector<std::string> a) : known(std::move(a)) {}
  std::vector<std::string> known;
  std::vector<std::string> asked;
  boost::asio::awaitable<ldap::RecipientResult> find_recipient(std::string address) override {
    asked.push_back(address);
    bool found = std::find(known.begin(), known.end(), address) != known.end();
    co_return ldap::RecipientResult{found ? ldap::Lookup::Found : ldap::Lookup::NotFound, found ? address : "", ""};
  }
  boost::asio::awaitable<ldap::AuthResult> authenticate(std::string, std::string) override { co_return ldap::AuthResult{}; }
  std::string describe() const override { return "test"; }
};

Verdict check(RelayControl& rc, const char* path) {
  auto ctx = std::make_shared<Context>();
  ctx->recipient = parse_path(path, PathKind::Recipient).ok->address;
  ctx->cancel = std::make_shared<Cancel>();
  boost::asio::io_context io;
  Verdict out;
  boost::asio::co_spawn(io, rc.check(Phase::RcptTo, ctx), [&](std::exception_ptr, Verdict v) { out = std::move(v); });
  io.run();
  return out;
}
}  // namespace

TEST(RelayControl, BothPostmasterFormsAskTheDirectoryAboutTheConfiguredAddress) {
  auto dir = std::make_shared<KnowsOnly>(std::vector<std::string>{"alice@example.org"});
  RelayControl rc({"example.org", "example.net"}, dir, "alice@example.org");
  for (const char* p : {"<postmaster>", "<postmaster@example.org>", "<PostMaster@EXAMPLE.net>"}) {
    Verdict v = check(rc, p);
    EXPECT_EQ(v.action, Action::Accept) << p << ": " << v.reason;
  }
  EXPECT_EQ(dir->asked, std::vector<std::string>(3, "alice@example.org"));
  EXPECT_EQ(check(rc, "<postmaster@elsewhere.test>").action, Action::Reject);  // not ours: relay denied
}

TEST(RelayControl, AnUnknownConfiguredPostmasterRefusesBothFormsAlike) {
  auto dir = std::make_shared<KnowsOnly>(std::vector<std::string>{"alice@example.org"});
  RelayControl rc({"example.org"}, dir);  // default: postmaster@example.org, unknown here
  Verdict bare = check(rc, "<postmaster>");
  Verdict full = check(rc, "<postmaster@example.org>");
  EXPECT_EQ(bare.action, Action::Reject) << bare.reason;  // before: accepted without a lookup
  EXPECT_EQ(full.action, Action::Reject);
  EXPECT_EQ(bare.reply->enhanced, "5.1.1");
  EXPECT_NE(bare.reason.find("postmaster@example.org"), std::string::npos) << bare.reason;
}

TEST(RelayControl, IsPostmasterNeedsALocalDomainOrNone) {
  auto rcpt = [](const char* p) { return parse_path(p, PathKind::Recipient).ok->address; };
  std::vector<std::string> local{"example.org"};
  EXPECT_TRUE(smtp::is_postmaster(rcpt("<postmaster>"), local));
  EXPECT_TRUE(smtp::is_postmaster(rcpt("<POSTMASTER@Example.ORG>"), local));
  EXPECT_FALSE(smtp::is_postmaster(rcpt("<postmaster@other.test>"), local));
  EXPECT_FALSE(smtp::is_postmaster(rcpt("<postmaster2@example.org>"), local));
}
