// core::new_session_id: fixed shape, unique and ordered within a process, and unique across
// processes that share a pid (every container of a farm runs mxfront as pid 1).
#include "core/ids.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

// The first id minted by a fresh process that is pid 1 of a new pid namespace when this test may
// make one (root), else by a plain child. Must run before this process mints an id itself.
std::string id_from_a_fresh_pid1() {
  int fds[2];
  if (pipe(fds) != 0) return "";
  pid_t middle = fork();  // unshares, so that the test process keeps its own pid namespace
  if (middle == 0) {
    bool own_ns = unshare(CLONE_NEWPID) == 0;  // the next child is pid 1 of a new namespace
    pid_t child = fork();
    if (child == 0) {
      std::string id = core::new_session_id();
      if (own_ns && getpid() != 1) id = "not-pid-1";
      ssize_t n = write(fds[1], id.data(), id.size());
      _exit(n == static_cast<ssize_t>(id.size()) ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    _exit(0);
  }
  close(fds[1]);
  char buf[64];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  int status = 0;
  waitpid(middle, &status, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(SessionId, TwoInstancesWithTheSamePidDoNotMintTheSameIds) {
  std::string a = id_from_a_fresh_pid1();
  std::string b = id_from_a_fresh_pid1();
  ASSERT_EQ(a.size(), 16u) << a;
  ASSERT_EQ(b.size(), 16u) << b;
  EXPECT_NE(a.substr(6, 6), b.substr(6, 6)) << a << " " << b;  // the instance parts
  EXPECT_NE(a, b);
}

TEST(SessionId, UniqueOrderedAndUpperCaseBase36) {
  std::set<std::string> seen;
  std::string prev;
  for (int i = 0; i < 10000; ++i) {
    std::string id = core::new_session_id();
    EXPECT_TRUE(seen.insert(id).second) << id;
    for (char ch : id) EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')) << id;
    if (!prev.empty() && id.size() == prev.size()) {
      EXPECT_LT(prev.substr(12), id.substr(12)) << prev << " " << id;
    }
    prev = id;
  }
}

}  // namespace
