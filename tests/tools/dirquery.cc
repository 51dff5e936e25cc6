// dirquery — asks the configured directory (the [directory] section of an mxfront config) the
// questions mxfront asks it, and prints one line per answer. For tests, debugging and benchmarks.
//
//   dirquery CONFIG.toml [OPTIONS] rcpt ADDRESS...
//   dirquery CONFIG.toml [OPTIONS] auth USER PASSWORD
//   dirquery CONFIG.toml [OPTIONS] shell
//
// Options:
//   --repeat N       ask each question N times; every answer line gets ms=<latency>, and a
//                    "latency ..." summary line (min/p50/p90/p99/max/mean, queries per second)
//                    follows each question
//   --parallel P     with --repeat: P concurrent askers, N questions each (default 1)
//   --interval S     sleep S seconds between repetitions (default 0)
//   --stats          print the directory's counters at the end ("stats ...")
//
// Answer lines (detail, when there is one, is always last and runs to the end of the line):
//   rcpt alice@example.org Found mailbox=alice@example.org detail=ldap://127.0.0.1:389
//   auth alice Ok addresses=alice@example.org,alias-alice@example.org
// `shell` keeps one process (and its connections and cache) alive: it reads lines from stdin —
// "rcpt ADDRESS", "auth USER PASSWORD" (the password is the rest of the line, maybe empty),
// "stats" — and answers each with one line, flushed. It ends at EOF.
// Exit status: 0 when every question was answered (whatever the answer), 2 on usage or config
// errors (on stderr). Logs go to stderr.
#include <signal.h>

#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "config/load.h"
#include "filters/registry/registry.h"
#include "core/log.h"
#include "directory/factory.h"
#include "directory/ldap_directory.h"
#include "directory/users_file.h"

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string config;
  std::string command;
  std::vector<std::string> operands;
  size_t repeat = 0;  // 0: once, no timing
  size_t parallel = 1;
  double interval = 0;
  bool stats = false;
};

int usage(const std::string& why) {
  std::fprintf(stderr,
               "dirquery: %s\nusage: dirquery CONFIG.toml [--repeat N] [--parallel P] [--interval S] [--stats] "
               "rcpt ADDRESS... | auth USER PASSWORD | shell\n",
               why.c_str());
  return 2;
}

bool parse_number(const std::string& s, double& out) {
  try {
    size_t used = 0;
    out = std::stod(s, &used);
    return used == s.size() && out >= 0;
  } catch (...) {
    return false;
  }
}

std::string parse_args(int argc, char** argv, Args& a) {
  if (argc < 3) return "missing arguments";
  a.config = argv[1];
  int i = 2;
  for (; i < argc && std::string(argv[i]).rfind("--", 0) == 0; ++i) {
    std::string opt = argv[i];
    if (opt == "--stats") {
      a.stats = true;
      continue;
    }
    double v = 0;
    if (i + 1 >= argc || !parse_number(argv[i + 1], v)) return opt + " needs a number";
    ++i;
    if (opt == "--repeat") a.repeat = static_cast<size_t>(v);
    else if (opt == "--parallel") a.parallel = std::max<size_t>(1, static_cast<size_t>(v));
    else if (opt == "--interval") a.interval = v;
    else return "unknown option " + opt;
  }
  if (i >= argc) return "missing command";
  a.command = argv[i++];
  for (; i < argc; ++i) a.operands.push_back(argv[i]);
  if (a.command == "rcpt" && a.operands.empty()) return "rcpt needs at least one address";
  if (a.command == "auth" && a.operands.size() != 2) return "auth needs USER and PASSWORD";
  if (a.command == "shell" && !a.operands.empty()) return "shell takes no operands";
  if (a.command != "rcpt" && a.command != "auth" && a.command != "shell") return "unknown command " + a.command;
  return {};
}

const char* name(ldap::Lookup l) {
  switch (l) {
    case ldap::Lookup::Found: return "Found";
    case ldap::Lookup::NotFound: return "NotFound";
    case ldap::Lookup::Disabled: return "Disabled";
    case ldap::Lookup::Unavailable: return "Unavailable";
  }
  return "?";
}

const char* name(ldap::AuthStatus s) {
  switch (s) {
    case ldap::AuthStatus::Ok: return "Ok";
    case ldap::AuthStatus::BadCredentials: return "BadCredentials";
    case ldap::AuthStatus::Disabled: return "Disabled";
    case ldap::AuthStatus::Unavailable: return "Unavailable";
  }
  return "?";
}

// One question: "rcpt ADDRESS" or "auth USER PASSWORD".
struct Question {
  std::string kind, subject, password;
};

// Asks and formats the answer line (without the ms= part, which is inserted before detail).
asio::awaitable<std::pair<std::string, std::string>> ask(ldap::Directory& dir, const Question& q) {
  if (q.kind == "rcpt") {
    auto r = co_await dir.find_recipient(q.subject);
    std::string line = fmt::format("rcpt {} {}", q.subject, name(r.status));
    if (!r.mailbox.empty()) line += " mailbox=" + r.mailbox;
    co_return std::pair{line, r.detail};
  }
  auto r = co_await dir.authenticate(q.subject, q.password);
  std::string line = fmt::format("auth {} {}", q.subject, name(r.status));
  if (!r.addresses.empty()) line += fmt::format(" addresses={}", fmt::join(r.addresses, ","));
  co_return std::pair{line, r.detail};
}

void print_answer(const std::string& line, const std::string& detail, std::optional<double> ms) {
  std::string out = line;
  if (ms) out += fmt::format(" ms={:.3f}", *ms);
  if (!detail.empty()) out += " detail=" + detail;
  std::printf("%s\n", out.c_str());
  std::fflush(stdout);
}

// One asker: `n` repetitions of `q`, latencies appended to `ms`.
asio::awaitable<void> asker(ldap::Directory& dir, Question q, size_t n, bool timed, double interval,
                            std::vector<double>& ms) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && interval > 0) {
      timer.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval)));
      co_await timer.async_wait(asio::use_awaitable);
    }
    auto t0 = Clock::now();
    auto [line, detail] = co_await ask(dir, q);
    double took = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    ms.push_back(took);
    print_answer(line, detail, timed ? std::optional<double>(took) : std::nullopt);
  }
}

void run(asio::io_context& io, asio::awaitable<void> a) {
  asio::co_spawn(io, std::move(a), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.restart();
  io.run();
}

double percentile(const std::vector<double>& sorted, double p) {
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

void print_summary(const Question& q, std::vector<double> ms, double wall_s) {
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  std::printf("latency %s %s n=%zu min_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f qps=%.0f\n",
              q.kind.c_str(), q.subject.c_str(), ms.size(), ms.front(), percentile(ms, 0.5), percentile(ms, 0.9),
              percentile(ms, 0.99), ms.back(), mean, wall_s > 0 ? static_cast<double>(ms.size()) / wall_s : 0.0);
  std::fflush(stdout);
}

void ask_repeated(asio::io_context& io, ldap::Directory& dir, const Question& q, const Args& a) {
  size_t n = a.repeat ? a.repeat : 1;
  size_t askers = a.repeat ? a.parallel : 1;
  std::vector<std::vector<double>> ms(askers);
  auto t0 = Clock::now();
  for (size_t i = 0; i < askers; ++i)
    asio::co_spawn(io, asker(dir, q, n, a.repeat > 0, a.interval, ms[i]), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  io.restart();
  io.run();
  if (!a.repeat) return;
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : ms) all.insert(all.end(), v.begin(), v.end());
  print_summary(q, std::move(all), wall);
}

void print_stats(ldap::Directory& dir) {
  if (auto* l = dynamic_cast<ldap::LdapDirectory*>(&dir)) {
    auto s = l->stats();
    std::printf("stats found=%lu not_found=%lu disabled=%lu unavailable=%lu catchall=%lu cache_hits=%lu "
                "cache_misses=%lu auth_ok=%lu auth_bad=%lu auth_disabled=%lu auth_unavailable=%lu "
                "uri_failures=%lu connects=%lu shed=%lu\n",
                s.found, s.not_found, s.disabled, s.unavailable, s.catchall, s.cache_hits, s.cache_misses, s.auth_ok,
                s.auth_bad, s.auth_disabled, s.auth_unavailable, s.uri_failures, s.connects, s.shed);
  } else if (auto* u = dynamic_cast<ldap::UsersFileDirectory*>(&dir)) {
    auto s = u->stats();
    std::printf("stats found=%lu not_found=%lu disabled=%lu catchall=%lu auth_ok=%lu auth_bad=%lu "
                "auth_disabled=%lu auth_unavailable=%lu\n",
                s.found, s.not_found, s.disabled, s.catchall, s.auth_ok, s.auth_bad, s.auth_disabled,
                s.auth_unavailable);
  }
  std::fflush(stdout);
}

// shell: one question per stdin line, one answer line each.
void shell(asio::io_context& io, ldap::Directory& dir) {
  for (std::string line; std::getline(std::cin, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line == "stats") {
      print_stats(dir);
      continue;
    }
    Question q;
    size_t sp = line.find(' ');
    q.kind = line.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (q.kind == "rcpt" && !rest.empty()) {
      q.subject = rest;
    } else if (q.kind == "auth" && !rest.empty()) {
      size_t sp2 = rest.find(' ');
      q.subject = rest.substr(0, sp2);
      q.password = sp2 == std::string::npos ? "" : rest.substr(sp2 + 1);
    } else {
      std::printf("error expected: rcpt ADDRESS | auth USER PASSWORD | stats\n");
      std::fflush(stdout);
      continue;
    }
    std::vector<double> ms;
    run(io, asker(dir, q, 1, true, 0, ms));
  }
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Args a;
  if (std::string err = parse_args(argc, argv, a); !err.empty()) return usage(err);
  auto loaded = config::load(a.config, filters::config_schema());
  if (!loaded.config) {
    std::fprintf(stderr, "dirquery: %s\n", loaded.error.c_str());
    return 2;
  }
  core::init_logging(loaded.config->log_level, false);
  auto made = ldap::make_directory(loaded.config->directory, nullptr);
  if (!made.dir) {
    std::fprintf(stderr, "dirquery: %s\n",
                 made.error.empty() ? "directory.type is \"none\": nothing to ask" : made.error.c_str());
    return 2;
  }
  asio::io_context io;
  if (a.command == "shell") {
    shell(io, *made.dir);
  } else if (a.command == "rcpt") {
    for (const auto& addr : a.operands) ask_repeated(io, *made.dir, Question{"rcpt", addr, {}}, a);
  } else {
    ask_repeated(io, *made.dir, Question{"auth", a.operands[0], a.operands[1]}, a);
  }
  if (a.stats) print_stats(*made.dir);
  return 0;
}
