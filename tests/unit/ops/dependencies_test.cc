// Unit tests for ops::DependencyMonitor: rise/fall thresholds (no flapping), statuses kept across
// a reload of the list, and the TCP probe against a listening and a closed port.
#include "ops/dependencies.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace ops {
namespace {

TEST(Dependencies, DownOnlyAfterFallFailuresAndUpOnlyAfterRiseSuccesses) {
  DependencyMonitor m(std::chrono::milliseconds(10), /*rise=*/2, /*fall=*/3);
  std::string answer;
  m.set({{"qmqp", "a:628", [&] { return answer; }}});
  answer = "refused";
  m.run_once();
  m.run_once();
  EXPECT_TRUE(m.statuses()[0].up) << "two failures < fall 3";
  m.run_once();
  EXPECT_FALSE(m.statuses()[0].up);
  EXPECT_EQ(m.statuses()[0].last_error, "refused");
  answer = "";
  m.run_once();
  EXPECT_FALSE(m.statuses()[0].up) << "one success < rise 2";
  answer = "flap";
  m.run_once();
  answer = "";
  m.run_once();
  EXPECT_FALSE(m.statuses()[0].up) << "the failure in between reset the successes";
  m.run_once();
  EXPECT_TRUE(m.statuses()[0].up);
}

TEST(Dependencies, ReloadKeepsTheStatusOfDependenciesThatStay) {
  DependencyMonitor m(std::chrono::milliseconds(10), 1, 1);
  m.set({{"qmqp", "a", [] { return std::string("down"); }}, {"qmqp", "b", [] { return std::string(); }}});
  m.run_once();
  m.set({{"qmqp", "a", [] { return std::string("down"); }}, {"ldap", "c", [] { return std::string(); }}});
  auto s = m.statuses();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_FALSE(s[0].up);
  EXPECT_TRUE(s[0].checked);
  EXPECT_EQ(s[1].name, "c");
  EXPECT_FALSE(s[1].checked);
}

// A passive judgement (a mailbox server's open circuit breaker) turns the dependency down at once,
// with its reason, although the background check passes; when it clears, the check's view is back.
TEST(Dependencies, PassiveJudgementOverridesTheCheck) {
  DependencyMonitor m(std::chrono::milliseconds(10), 1, 1);
  std::string passive = "circuit breaker open";
  m.set({{"qmqp", "a:628", [] { return std::string(); }, [&] { return passive; }}});
  m.run_once();
  auto s = m.statuses();
  EXPECT_FALSE(s[0].up);
  EXPECT_EQ(s[0].passive_error, "circuit breaker open");
  EXPECT_EQ(s[0].last_error, "");
  passive.clear();
  s = m.statuses();
  EXPECT_TRUE(s[0].up);
  EXPECT_EQ(s[0].passive_error, "");
}

// A rare check (check_every) runs at once, then not again before its interval; a dependency
// without a check is never probed and is judged by its passive view alone.
TEST(Dependencies, CheckEveryMakesTheCheckRareAndNoCheckLeavesThePassiveViewAlone) {
  DependencyMonitor m(std::chrono::milliseconds(10), 1, 1);
  int calls = 0;
  std::string passive;
  m.set({{"qmqp", "rare", [&] { ++calls; return std::string("refused"); }, nullptr, std::chrono::milliseconds(200)},
         {"qmqp", "none", nullptr, [&] { return passive; }}});
  m.run_once();
  m.run_once();
  m.run_once();
  EXPECT_EQ(calls, 1) << "due once, then not before 200 ms";
  auto s = m.statuses();
  EXPECT_FALSE(s[0].up);
  EXPECT_TRUE(s[1].up);
  EXPECT_FALSE(s[1].checked) << "no active check ran";
  EXPECT_EQ(s[1].last_error, "");
  std::this_thread::sleep_for(std::chrono::milliseconds(220));
  m.run_once();
  EXPECT_EQ(calls, 2);
  passive = "circuit breaker open";
  s = m.statuses();
  EXPECT_FALSE(s[1].up);
  EXPECT_EQ(s[1].passive_error, "circuit breaker open");
}

TEST(Dependencies, TcpProbeTellsListeningFromClosed) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  EXPECT_EQ(tcp_connect_check("127.0.0.1", port, std::chrono::milliseconds(1000)), "");
  close(fd);
  EXPECT_NE(tcp_connect_check("127.0.0.1", port, std::chrono::milliseconds(1000)), "");
}

}  // namespace
}  // namespace ops
