// core::log line shapes: on a plain stderr each line starts with an ISO 8601 timestamp with its zone;
// when stderr is the journal stream (JOURNAL_STREAM names it), with an sd-daemon priority prefix.
#include "core/log.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <string>

namespace {

// Runs `body` in a child whose stderr is a pipe (named in JOURNAL_STREAM when `journal`), returns
// what it wrote. The logger is made on first use, so each case needs a fresh process.
std::string stderr_of_child(bool journal, void (*body)()) {
  int fds[2];
  if (pipe(fds) != 0) return "";
  pid_t child = fork();
  if (child == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    struct stat st {};
    fstat(STDERR_FILENO, &st);
    if (journal) setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(), 1);
    else unsetenv("JOURNAL_STREAM");
    body();
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return out;
}

void log_two_lines() {
  core::init_logging("info", false);
  core::log().info("hello id=1");
  core::log().error("broken id=2");
}

TEST(Log, PlainStderrLinesCarryATimestampWithItsZone) {
  std::string out = stderr_of_child(false, log_two_lines);
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d info hello id=1\n)"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\n\d{4}-\d\d-\d\dT[0-9:.]+[+-]\d\d:\d\d error broken id=2\n$)"))) << out;
}

TEST(Log, JournalLinesCarryTheirSyslogPriority) {
  std::string out = stderr_of_child(true, log_two_lines);
  EXPECT_EQ(out, "<6>info hello id=1\n<3>error broken id=2\n");
}

}  // namespace
