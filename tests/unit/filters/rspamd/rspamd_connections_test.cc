// The rspamd filter's connection handling on real loopback sockets: the idle pool (reuse of the
// freshest, closed at once when the peer closes it, after its idle timeout, bounded per server),
// the bound on exchanges in flight (a waiter gets the next released slot, or none at its deadline)
// the order servers are tried in after a connect failure, and the filter against a scripted
// loopback HTTP server: a kept connection reused, one closed by "Connection: close" not kept, a
// kept one found closed before any byte of the answer replaced once, one that broke mid-answer not.
#include "filters/rspamd/connections.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "core/metrics.h"
#include "filters/rspamd/rspamd.h"

namespace filters::rspamd {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A connected pair of loopback sockets on `io`: first ours, second the peer's.
std::pair<tcp::socket, tcp::socket> connected_pair(asio::io_context& io) {
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket ours(io), theirs(io);
  ours.connect(acc.local_endpoint());
  acc.accept(theirs);
  return {std::move(ours), std::move(theirs)};
}

void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  io.restart();
  io.run_for(d);
}

TEST(RspamdIdlePool, GivesBackTheFreshestConnection) {
  asio::io_context io;
  auto& pool = IdlePool::of(io.get_executor());
  auto [a, pa] = connected_pair(io);
  auto [b, pb] = connected_pair(io);
  auto b_port = b.local_endpoint().port();
  pool.put("s:1", std::move(a), 5s, 4);
  pool.put("s:1", std::move(b), 5s, 4);
  EXPECT_EQ(pool.idle("s:1"), 2u);
  EXPECT_FALSE(pool.take("other:1"));
  auto got = pool.take("s:1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->local_endpoint().port(), b_port);
  EXPECT_EQ(pool.idle("s:1"), 1u);
  run_for(io, 50ms);  // the taken one's cancelled wait finds no entry
  EXPECT_TRUE(got->is_open());
  EXPECT_EQ(pool.idle("s:1"), 1u);
}

TEST(RspamdIdlePool, ClosesAConnectionThePeerClosedAtOnce) {
  asio::io_context io;
  auto& pool = IdlePool::of(io.get_executor());
  auto [a, peer] = connected_pair(io);
  pool.put("s:1", std::move(a), 60s, 4);
  peer.close();  // FIN: readable while idle
  run_for(io, 200ms);
  EXPECT_EQ(pool.idle("s:1"), 0u);
}

TEST(RspamdIdlePool, ClosesAConnectionThatSendsWhileIdle) {
  asio::io_context io;
  auto& pool = IdlePool::of(io.get_executor());
  auto [a, peer] = connected_pair(io);
  pool.put("s:1", std::move(a), 60s, 4);
  asio::write(peer, asio::buffer(std::string("HTTP/1.1 408 Request Timeout\r\n\r\n")));
  run_for(io, 200ms);
  EXPECT_EQ(pool.idle("s:1"), 0u);
}

TEST(RspamdIdlePool, ClosesAfterTheIdleTimeout) {
  asio::io_context io;
  auto& pool = IdlePool::of(io.get_executor());
  auto [a, peer] = connected_pair(io);
  pool.put("s:1", std::move(a), 50ms, 4);
  run_for(io, 20ms);
  EXPECT_EQ(pool.idle("s:1"), 1u);
  run_for(io, 200ms);
  EXPECT_EQ(pool.idle("s:1"), 0u);
  boost::system::error_code ec;
  char c;
  peer.read_some(asio::buffer(&c, 1), ec);  // our side closed: the peer reads EOF
  EXPECT_EQ(ec, asio::error::eof);
}

TEST(RspamdIdlePool, KeepsAtMostMaxIdlePerServerClosingTheOldest) {
  asio::io_context io;
  auto& pool = IdlePool::of(io.get_executor());
  std::vector<tcp::socket> peers;
  for (int i = 0; i < 3; ++i) {
    auto [s, p] = connected_pair(io);
    pool.put("s:1", std::move(s), 60s, 2);
    peers.push_back(std::move(p));
  }
  EXPECT_EQ(pool.idle("s:1"), 2u);
  boost::system::error_code ec;
  char c;
  peers[0].read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  pool.put("s:2", connected_pair(io).first, 60s, 0);  // 0: nothing kept
  EXPECT_EQ(pool.idle("s:2"), 0u);
}

TEST(RspamdInFlight, BoundsAndHandsTheReleasedSlotToTheWaiter) {
  asio::io_context io;
  auto limit = std::make_shared<InFlight>();
  auto first = InFlight::try_take(limit, 1);
  ASSERT_TRUE(first);
  EXPECT_FALSE(InFlight::try_take(limit, 1));
  bool granted = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto s = co_await InFlight::wait(limit, 1, std::chrono::steady_clock::now() + 5s);
    granted = static_cast<bool>(s);
  }, asio::detached);
  run_for(io, 20ms);
  EXPECT_FALSE(granted);
  first = InFlight::Slot();  // released: passes to the waiter
  auto t0 = std::chrono::steady_clock::now();
  run_for(io, 1s);
  EXPECT_TRUE(granted);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);  // woken, not timed out
  EXPECT_EQ(limit->in_flight(), 0u);
}

TEST(RspamdInFlight, AWaiterGetsNothingAtItsDeadline) {
  asio::io_context io;
  auto limit = std::make_shared<InFlight>();
  auto held = InFlight::try_take(limit, 1);
  int outcome = -1;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto s = co_await InFlight::wait(limit, 1, std::chrono::steady_clock::now() + 50ms);
    outcome = s ? 1 : 0;
  }, asio::detached);
  run_for(io, 1s);
  EXPECT_EQ(outcome, 0);
  EXPECT_EQ(limit->in_flight(), 1u);
  held = InFlight::Slot();
  EXPECT_EQ(limit->in_flight(), 0u);  // no waiter left: the count goes down
}

TEST(RspamdInFlight, AWaiterGoneWithItsContextLeavesTheQueue) {
  auto limit = std::make_shared<InFlight>();
  auto held = InFlight::try_take(limit, 1);
  {
    asio::io_context io;
    asio::co_spawn(io, [limit]() -> asio::awaitable<void> {
      co_await InFlight::wait(limit, 1, std::chrono::steady_clock::now() + 60s);
    }, asio::detached);
    run_for(io, 20ms);
  }  // the context and the waiting coroutine go
  held = InFlight::Slot();  // no waiter to hand it to (nothing posted to the dead context)
  EXPECT_EQ(limit->in_flight(), 0u);
  EXPECT_TRUE(InFlight::try_take(limit, 1));
}

TEST(RspamdServers, AFailedServerIsTriedAfterTheOthersForAWhile) {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> servers{"a:1", "b:1", "c:1"};
  auto failed = [now](const std::string& s) -> std::optional<std::chrono::steady_clock::time_point> {
    if (s == "a:1") return now - 1s;
    if (s == "c:1") return now - kDownFor - 1s;  // long ago: back in its place
    return std::nullopt;
  };
  EXPECT_EQ(try_order(servers, failed, now), (std::vector<std::string>{"b:1", "c:1", "a:1"}));
  EXPECT_EQ(try_order(servers, [](const std::string&) { return std::nullopt; }, now), servers);
}

// What the scripted server does with each request, in arrival order over all its connections.
enum class Reply { KeepAlive, Close, DropSilently, DropMidAnswer };

class ScriptedServer {
 public:
  ScriptedServer(asio::io_context& io, std::vector<Reply> script)
      : acc_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), script_(std::move(script)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(acc_.local_endpoint().port()); }
  int accepted = 0;
  size_t served = 0;

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      tcp::socket s = co_await acc_.async_accept(asio::use_awaitable);
      ++accepted;
      asio::co_spawn(acc_.get_executor(), serve(std::move(s)), asio::detached);
    }
  }
  asio::awaitable<void> serve(tcp::socket s) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      co_await http::async_read(s, buf, req, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || served >= script_.size()) co_return;
      Reply r = script_[served++];
      if (r == Reply::DropSilently) co_return;
      if (r == Reply::DropMidAnswer) {
        co_await asio::async_write(s, asio::buffer(std::string("HTTP/1.1 200 OK\r\n")), asio::use_awaitable);
        co_return;
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.body() = R"({"action":"no action","score":0.5,"symbols":{}})";
      res.keep_alive(r == Reply::KeepAlive);
      res.prepare_payload();
      co_await http::async_write(s, res, asio::use_awaitable);
      if (r == Reply::Close) co_return;
    }
  }
  tcp::acceptor acc_;
  std::vector<Reply> script_;
};

uint64_t connections(std::string_view event) {
  for (const auto& [labels, v] : core::labeled_counters_snapshot("rspamd_connections_total"))
    if (labels.find(std::string("\"") + std::string(event) + "\"") != std::string::npos) return v;
  return 0;
}

// One check of a small message by a filter pointed at `server`: the verdict.
Verdict check_once(asio::io_context& io, const std::string& server) {
  Settings s;
  s.servers = {server};
  auto filter = std::make_shared<Rspamd>(s, "mx.test", 5000ms);
  auto ctx = std::make_shared<Context>();
  ctx->message = std::make_shared<const std::string>("Subject: hi\n\nhello\n");
  ctx->cancel = std::make_shared<Cancel>();
  std::optional<Verdict> v;
  asio::co_spawn(io, filter->check(Phase::Data, ctx), [&v](std::exception_ptr, Verdict got) { v = std::move(got); });
  io.restart();
  while (!v && io.run_one_for(5s)) {
  }
  EXPECT_TRUE(v);
  return v ? *v : Verdict::failure("no verdict");
}

TEST(RspamdFilterConnections, AKeptAliveConnectionIsReusedAndAClosedOneIsNot) {
  asio::io_context io;
  ScriptedServer srv(io, {Reply::KeepAlive, Reply::Close, Reply::KeepAlive});
  EXPECT_FALSE(check_once(io, srv.address()).failed);
  EXPECT_EQ(IdlePool::of(io.get_executor()).idle(srv.address()), 1u);
  EXPECT_FALSE(check_once(io, srv.address()).failed);  // on the kept one, answered "Connection: close"
  EXPECT_EQ(srv.accepted, 1);
  EXPECT_EQ(IdlePool::of(io.get_executor()).idle(srv.address()), 0u);
  EXPECT_FALSE(check_once(io, srv.address()).failed);
  EXPECT_EQ(srv.accepted, 2);
}

TEST(RspamdFilterConnections, AKeptConnectionClosedBeforeAnyByteOfTheAnswerIsReplacedOnce) {
  asio::io_context io;
  ScriptedServer srv(io, {Reply::KeepAlive, Reply::DropSilently, Reply::KeepAlive});
  EXPECT_FALSE(check_once(io, srv.address()).failed);
  uint64_t stale = connections("stale");
  Verdict v = check_once(io, srv.address());
  EXPECT_FALSE(v.failed) << v.reason;
  EXPECT_EQ(srv.accepted, 2);
  EXPECT_EQ(srv.served, 3u);
  EXPECT_EQ(connections("stale"), stale + 1);
}

TEST(RspamdFilterConnections, AKeptConnectionThatBreaksMidAnswerIsNotRetried) {
  asio::io_context io;
  ScriptedServer srv(io, {Reply::KeepAlive, Reply::DropMidAnswer, Reply::KeepAlive});
  EXPECT_FALSE(check_once(io, srv.address()).failed);
  Verdict v = check_once(io, srv.address());
  EXPECT_TRUE(v.failed);
  EXPECT_NE(v.reason.find("read: "), std::string::npos) << v.reason;
  EXPECT_EQ(srv.accepted, 1);
  EXPECT_EQ(srv.served, 2u);
}

}  // namespace
}  // namespace filters::rspamd
