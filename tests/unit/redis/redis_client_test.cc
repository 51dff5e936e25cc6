// redis::Client against a real redis-server started by the test on a free loopback port (a missing
// redis-server fails the test, never skips it): replies, pipelining, the per-command timeout
// (server stopped with SIGSTOP), reconnect after a kill and restart, the in-flight bound, AUTH
// (password and ACL user) and SELECT, subscriber mode; TLS (redis-server --tls-port, client
// certificates required): commands pipelined over TLS, and each failed verification (unknown CA,
// wrong name, no client certificate) is a connection down with its reason; no fd left behind.
#include "redis/client.h"
#include "tests/unit/redis/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {
namespace asio = boost::asio;
using test_redis::Pki;
using test_redis::RedisServer;
using namespace std::chrono_literals;
using redis::Reply;

// Outside any coroutine: GCC 12 cannot keep a braced list of string literals in a coroutine frame.
template <class... A>
std::vector<std::string> cmd(A... a) {
  return {std::string(a)...};
}

redis::ClientConfig config_for(const RedisServer& s) {
  redis::ClientConfig c;
  c.host = "127.0.0.1";
  c.port = s.port();
  c.timeout = 200ms;
  c.reconnect_min = 20ms;
  c.reconnect_max = 200ms;
  return c;
}

// Runs `body` on `io` to its end (at most 60 s); rethrows what it threw.
template <class F>
void run(asio::io_context& io, F body) {
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
  });
  io.run_for(60s);
  ASSERT_TRUE(done) << "the test coroutine did not finish";
  if (failure) std::rethrow_exception(failure);
}

asio::awaitable<void> sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<bool> wait_up(redis::Client& c, std::chrono::milliseconds limit = 5000ms) {
  for (auto waited = 0ms; waited < limit; waited += 10ms) {
    if (c.up()) co_return true;
    co_await sleep(10ms);
  }
  co_return c.up();
}

TEST(RedisClient, RepliesOfEveryType) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  asio::io_context io;
  auto client = redis::Client::create(io.get_executor(), config_for(server));
  client->start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await wait_up(*client));
    Reply r = co_await client->command(cmd("SET", "k", "v\r\n with bytes"));
    EXPECT_EQ(r.type, Reply::Type::Status);
    EXPECT_EQ(r.str, "OK");
    r = co_await client->command(cmd("GET", "k"));
    EXPECT_EQ(r.type, Reply::Type::String);
    EXPECT_EQ(r.str, "v\r\n with bytes");
    r = co_await client->command(cmd("INCR", "n"));
    EXPECT_EQ(r.type, Reply::Type::Integer);
    EXPECT_EQ(r.integer, 1);
    r = co_await client->command(cmd("GET", "missing"));
    EXPECT_EQ(r.type, Reply::Type::Nil);
    co_await client->command(cmd("RPUSH", "l", "a", "b"));
    r = co_await client->command(cmd("LRANGE", "l", "0", "-1"));
    EXPECT_EQ(r.type, Reply::Type::Array);
    EXPECT_EQ(r.elements.size(), 2u);
    if (r.elements.size() == 2) {
      EXPECT_EQ(r.elements[1].str, "b");
    }
    r = co_await client->command(cmd("NOSUCHCOMMAND"));
    EXPECT_TRUE(r.error());
    r = co_await client->command(cmd("INCR", "k"));  // not an integer
    EXPECT_TRUE(r.error());
    client->stop();
  });
}

TEST(RedisClient, PipelinedConcurrentCommands) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  asio::io_context io;
  auto client = redis::Client::create(io.get_executor(), config_for(server));
  client->start();
  int answered = 0, errors = 0;
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await wait_up(*client));
    constexpr int kCommands = 500;
    for (int i = 0; i < kCommands; ++i)
      client->submit(cmd("INCR", "counter"), [&](Reply r) {
        ++answered;
        if (r.type != Reply::Type::Integer) ++errors;
      });
    for (int i = 0; i < 500 && answered < kCommands; ++i) co_await sleep(10ms);
    EXPECT_EQ(answered, kCommands);
    EXPECT_EQ(errors, 0);
    Reply r = co_await client->command(cmd("GET", "counter"));
    EXPECT_EQ(r.str, std::to_string(kCommands));
    client->stop();
  });
}

TEST(RedisClient, CommandTimesOutWhileServerPausedThenRecovers) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  asio::io_context io;
  auto client = redis::Client::create(io.get_executor(), config_for(server));
  client->start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await wait_up(*client));
    server.pause();
    auto t0 = std::chrono::steady_clock::now();
    Reply r = co_await client->command(cmd("PING"));
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(r.error());
    EXPECT_EQ(r.str, "redis: timeout");
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 600ms);
    EXPECT_GE(client->stats().timeouts.load(), 1u);
    EXPECT_FALSE(client->up());
    server.resume();
    EXPECT_TRUE(co_await wait_up(*client));
    r = co_await client->command(cmd("PING"));
    EXPECT_EQ(r.str, "PONG");
    client->stop();
  });
}

TEST(RedisClient, ReconnectsAfterServerKilledAndRestarted) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  asio::io_context io;
  std::vector<bool> states;
  auto client = redis::Client::create(io.get_executor(), config_for(server),
                                      [&](bool up, const std::string&) { states.push_back(up); });
  client->start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await wait_up(*client));
    server.kill_now();
    for (int i = 0; i < 100 && client->up(); ++i) co_await sleep(10ms);
    EXPECT_FALSE(client->up());
    auto t0 = std::chrono::steady_clock::now();
    Reply r = co_await client->command(cmd("PING"));
    EXPECT_TRUE(r.error());  // down: answered at once, not queued
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms);
    server.start();
    EXPECT_TRUE(server.ready());
    EXPECT_TRUE(co_await wait_up(*client));
    r = co_await client->command(cmd("PING"));
    EXPECT_EQ(r.str, "PONG");
    EXPECT_GE(client->stats().drops.load(), 1u);
    client->stop();
  });
  EXPECT_EQ(states, (std::vector<bool>{true, false, true, false}));  // the last: stopped
}

TEST(RedisClient, InflightBoundRefusesAtOnce) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  asio::io_context io;
  auto cfg = config_for(server);
  cfg.max_inflight = 5;
  auto client = redis::Client::create(io.get_executor(), cfg);
  client->start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await wait_up(*client));
    server.pause();
    std::vector<std::string> answers;
    for (int i = 0; i < 12; ++i) client->submit(cmd("PING"), [&](Reply r) { answers.push_back(r.str); });
    co_await sleep(50ms);  // well before the timeout: only the refusals are in
    EXPECT_EQ(answers.size(), 7u);
    for (auto& a : answers) EXPECT_EQ(a, "redis: too many commands in flight");
    EXPECT_EQ(client->stats().rejected.load(), 7u);
    for (int i = 0; i < 100 && answers.size() < 12; ++i) co_await sleep(10ms);
    EXPECT_EQ(answers.size(), 12u);  // the 5 sent ones: timed out or dropped with the connection
    server.resume();
    EXPECT_TRUE(co_await wait_up(*client));
    Reply r = co_await client->command(cmd("PING"));
    EXPECT_EQ(r.str, "PONG");
    client->stop();
  });
}

TEST(RedisClient, AuthWithPasswordAndAclUserAndSelect) {
  RedisServer server({"--requirepass", "s3cret"});
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  asio::io_context io;
  auto cfg = config_for(server);
  auto no_auth = redis::Client::create(io.get_executor(), cfg);
  cfg.password = "s3cret";
  auto admin = redis::Client::create(io.get_executor(), cfg);
  cfg.db = 3;
  auto db3 = redis::Client::create(io.get_executor(), cfg);
  cfg.db = 0;
  cfg.username = "alice";
  cfg.password = "alicepw";
  auto alice = redis::Client::create(io.get_executor(), cfg);
  admin->start();
  no_auth->start();
  db3->start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await wait_up(*admin));
    EXPECT_TRUE(co_await wait_up(*db3));
    EXPECT_FALSE(co_await wait_up(*no_auth, 300ms));  // PING refused: NOAUTH
    Reply r = co_await admin->command(cmd("ACL", "SETUSER", "alice", "on", ">alicepw", "~*", "+@all"));
    EXPECT_EQ(r.str, "OK");
    alice->start();
    EXPECT_TRUE(co_await wait_up(*alice));
    r = co_await alice->command(cmd("ACL", "WHOAMI"));
    EXPECT_EQ(r.str, "alice");
    co_await db3->command(cmd("SET", "where", "three"));
    r = co_await admin->command(cmd("GET", "where"));
    EXPECT_EQ(r.type, Reply::Type::Nil);
    r = co_await db3->command(cmd("GET", "where"));
    EXPECT_EQ(r.str, "three");
    for (auto* c : {&admin, &no_auth, &db3, &alice}) (*c)->stop();
  });
}

TEST(RedisClient, SubscriberGetsMessagesAndSubscribesAgainAfterRestart) {
  RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server could not be started (is it installed?)";
  asio::io_context io;
  auto pub = redis::Client::create(io.get_executor(), config_for(server));
  auto sub = redis::Client::create(io.get_executor(), config_for(server));
  std::vector<std::string> got;
  sub->subscribe("chan", [&](const std::string& m) { got.push_back(m); });
  pub->start();
  sub->start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await wait_up(*pub));
    EXPECT_TRUE(co_await wait_up(*sub));
    co_await sleep(50ms);  // the SUBSCRIBE is answered
    Reply r = co_await pub->command(cmd("PUBLISH", "chan", "one"));
    EXPECT_EQ(r.integer, 1);  // one subscriber
    for (int i = 0; i < 100 && got.size() < 1; ++i) co_await sleep(10ms);
    server.kill_now();
    for (int i = 0; i < 100 && (sub->up() || pub->up()); ++i) co_await sleep(10ms);
    server.start();
    EXPECT_TRUE(co_await wait_up(*pub));
    EXPECT_TRUE(co_await wait_up(*sub));
    co_await sleep(50ms);
    r = co_await pub->command(cmd("PUBLISH", "chan", "two"));
    EXPECT_EQ(r.integer, 1);  // subscribed again
    for (int i = 0; i < 100 && got.size() < 2; ++i) co_await sleep(10ms);
    EXPECT_EQ(got, (std::vector<std::string>{"one", "two"}));
    pub->stop();
    sub->stop();
  });
}

redis::ClientConfig tls_config_for(const RedisServer& s, const Pki& pki, const std::string& ca = "ca.pem",
                                   bool client_cert = true) {
  auto c = config_for(s);
  c.timeout = 500ms;  // TLS handshakes under sanitizers
  std::string err;
  c.tls = redis::tls_context(pki.path(ca), client_cert ? pki.path("client.pem") : "",
                             client_cert ? pki.path("client.key") : "", err);
  EXPECT_TRUE(c.tls) << err;
  return c;
}

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST(RedisClientTls, PipelinedCommandsOverTlsWithClientCertificate) {
  Pki pki;
  ASSERT_TRUE(pki.ok()) << "openssl could not make the test certificates";
  RedisServer server({}, &pki);
  ASSERT_TRUE(server.ready()) << "redis-server --tls-port could not be started";
  size_t fds = open_fds();
  {
    asio::io_context io;
    auto cfg = tls_config_for(server, pki);
    cfg.tls_server_name = "redis.test";  // a DNS name (SNI); the default, 127.0.0.1, is checked as an IP
    auto by_name = redis::Client::create(io.get_executor(), cfg);
    auto by_ip = redis::Client::create(io.get_executor(), tls_config_for(server, pki));
    by_name->start();
    by_ip->start();
    int answered = 0, errors = 0;
    run(io, [&]() -> asio::awaitable<void> {
      EXPECT_TRUE(co_await wait_up(*by_name));
      EXPECT_TRUE(co_await wait_up(*by_ip));
      constexpr int kCommands = 300;
      for (int i = 0; i < kCommands; ++i)
        (i % 2 ? by_ip : by_name)->submit(cmd("INCR", "counter"), [&](Reply r) {
          ++answered;
          if (r.type != Reply::Type::Integer) ++errors;
        });
      for (int i = 0; i < 500 && answered < kCommands; ++i) co_await sleep(10ms);
      EXPECT_EQ(answered, kCommands);
      EXPECT_EQ(errors, 0);
      Reply r = co_await by_ip->command(cmd("GET", "counter"));
      EXPECT_EQ(r.str, std::to_string(kCommands));
      r = co_await by_name->command(cmd("SET", "big", std::string(100000, 'x')));
      EXPECT_EQ(r.str, "OK");
      r = co_await by_ip->command(cmd("GET", "big"));
      EXPECT_EQ(r.str.size(), 100000u);
      by_name->stop();
      by_ip->stop();
    });
  }
  EXPECT_EQ(open_fds(), fds) << "a socket was left open";
}

// Each refused TLS connection: down, with the reason in on_state, and never up.
void expect_refused(redis::ClientConfig cfg, const std::string& reason) {
  asio::io_context io;
  std::vector<std::string> whys;
  auto client = redis::Client::create(io.get_executor(), cfg, [&](bool up, const std::string& why) {
    whys.push_back((up ? "up: " : "down: ") + why);
  });
  client->start();
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await wait_up(*client, 1500ms));
    Reply r = co_await client->command(cmd("PING"));
    EXPECT_TRUE(r.error());
    client->stop();
  });
  ASSERT_FALSE(whys.empty());
  EXPECT_NE(whys.front().find(reason), std::string::npos) << whys.front();
}

TEST(RedisClientTls, UnknownCaWrongNameOrNoClientCertificateIsDown) {
  Pki pki;
  ASSERT_TRUE(pki.ok()) << "openssl could not make the test certificates";
  RedisServer server({}, &pki);
  ASSERT_TRUE(server.ready()) << "redis-server --tls-port could not be started";
  size_t fds = open_fds();
  expect_refused(tls_config_for(server, pki, "other_ca.pem"), "certificate verification failed");
  auto wrong_name = tls_config_for(server, pki);
  wrong_name.tls_server_name = "other.test";
  expect_refused(wrong_name, "certificate verification failed: hostname mismatch");
  auto wrong_ip = tls_config_for(server, pki);
  wrong_ip.tls_server_name = "127.0.0.2";
  expect_refused(wrong_ip, "certificate verification failed: IP address mismatch");
  expect_refused(tls_config_for(server, pki, "ca.pem", false), "connection lost");
  auto plain = config_for(server);  // a plain client on the TLS port
  expect_refused(plain, "down: ");
  EXPECT_EQ(open_fds(), fds) << "a socket was left open";
}

TEST(RedisClientTls, ContextErrorsNameTheFile) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  std::string err;
  EXPECT_FALSE(redis::tls_context(pki.path("missing.pem"), "", "", err));
  EXPECT_NE(err.find("tls_ca_file: cannot load '" + pki.path("missing.pem") + "'"), std::string::npos) << err;
  err.clear();
  EXPECT_FALSE(redis::tls_context(pki.path("ca.pem"), pki.path("client.pem"), pki.path("server.key"), err));
  EXPECT_NE(err.find("tls_key_file: cannot load"), std::string::npos) << err;
  err.clear();
  EXPECT_FALSE(redis::tls_context(pki.path("ca.pem"), pki.path("client.pem"), "", err));
  EXPECT_NE(err.find("both or neither"), std::string::npos) << err;
  err.clear();
  EXPECT_TRUE(redis::tls_context("", "", "", err)) << err;  // the system's CA paths
}

}  // namespace
