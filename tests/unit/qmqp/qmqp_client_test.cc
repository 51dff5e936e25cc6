// Unit tests for qmqp::relay against scripted in-process QMQP servers on 127.0.0.1 (port 0):
// answers, failover rules, timeouts, broken answers, the exact request bytes, and socket cleanup.
#include "qmqp/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <optional>
#include <thread>

#include "core/metrics.h"
#include "qmqp/breaker.h"
#include "qmqp/netstring.h"

namespace qmqp {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

auto with(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// What a fake server saw on one connection.
struct Peer {
  std::string request;
  bool client_closed = false;  // read EOF from the client after its own part was done
};

// --- building blocks for server scripts (free coroutines: their arguments live in the frame) ---

asio::awaitable<void> read_request(tcp::socket& s, Peer& p) {
  NetstringDecoder d(64 << 20);
  std::array<char, 65536> buf;
  error_code ec;
  while (d.state() == NetstringDecoder::State::NeedMore) {
    size_t n = co_await s.async_read_some(asio::buffer(buf), with(ec));
    if (ec) co_return;
    p.request.append(buf.data(), n);
    std::string_view in(buf.data(), n);
    d.feed(in);
  }
}

asio::awaitable<void> send(tcp::socket& s, std::string data) {
  error_code ec;
  co_await asio::async_write(s, asio::buffer(data), with(ec));
}

asio::awaitable<void> wait_for_close(tcp::socket& s, Peer& p) {
  std::array<char, 4096> buf;
  error_code ec;
  while (!ec) co_await s.async_read_some(asio::buffer(buf), with(ec));
  p.client_closed = ec == asio::error::eof;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  error_code ec;
  co_await t.async_wait(with(ec));
}

void reset(tcp::socket& s) {  // close with RST
  error_code ec;
  s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
}

using Script = std::function<asio::awaitable<void>(tcp::socket&, Peer&)>;

asio::awaitable<void> answer_then_close(tcp::socket& s, Peer& p, std::string answer) {
  co_await read_request(s, p);
  co_await send(s, answer);
}

asio::awaitable<void> answer_then_linger(tcp::socket& s, Peer& p, std::string answer) {
  co_await read_request(s, p);
  if (!answer.empty()) co_await send(s, answer);
  co_await wait_for_close(s, p);
}

using Script = std::function<asio::awaitable<void>(tcp::socket&, Peer&)>;

// Reads the request, writes `answer` and closes: what qmqpd and qmqp-sink do.
Script answers(std::string answer) {
  return [answer](tcp::socket& s, Peer& p) { return answer_then_close(s, p, answer); };
}

// Reads the request, writes `answer` (if any), then keeps the connection until the client closes.
Script answers_and_lingers(std::string answer) {
  return [answer](tcp::socket& s, Peer& p) { return answer_then_linger(s, p, answer); };
}

// Accepts connections on 127.0.0.1 (or ::1) and runs a script on each, all on one strand.
class FakeServer {
 public:
  FakeServer(asio::io_context& ioc, Script script, const char* addr = "127.0.0.1")
      : strand_(asio::make_strand(ioc)), acceptor_(strand_), script_(std::move(script)) {
    tcp::endpoint ep(asio::ip::make_address(addr), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    asio::co_spawn(strand_, accept_loop(), asio::detached);
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  Server server() const { return {acceptor_.local_endpoint().address().to_string(), port()}; }
  bool idle() const { return accepted == finished; }
  void small_receive_buffer() {
    acceptor_.set_option(asio::socket_base::receive_buffer_size(65536));
  }
  void stop() {
    asio::post(strand_, [this] { acceptor_.close(); });
  }

  int accepted = 0;
  int finished = 0;
  std::deque<Peer> peers;

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      tcp::socket s = co_await acceptor_.async_accept(with(ec));
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(strand_, serve(std::move(s)), asio::detached);
    }
  }
  asio::awaitable<void> serve(tcp::socket s) {
    Peer& p = peers.emplace_back();
    co_await script_(s, p);
    ++finished;
  }

  asio::strand<asio::io_context::executor_type> strand_;
  tcp::acceptor acceptor_;
  Script script_;
};

// Linux drops SYNs to a listener whose accept queue is full: with backlog 0 and one connection
// never accepted, the next connect hangs in SYN_SENT until the client gives up.
struct FullListener {
  explicit FullListener(asio::io_context& ioc) : acceptor(ioc), filler(ioc) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(ep.protocol());
    acceptor.bind(ep);
    acceptor.listen(0);
    filler.connect(acceptor.local_endpoint());
  }
  uint16_t port() const { return acceptor.local_endpoint().port(); }
  bool connects_hang(asio::io_context& ioc) {
    tcp::socket probe(ioc);
    bool connected = false;
    probe.async_connect(acceptor.local_endpoint(), [&](error_code ec) { connected = !ec; });
    ioc.run_for(300ms);
    probe.close();
    ioc.restart();
    ioc.poll();
    return !connected;
  }
  tcp::acceptor acceptor;
  tcp::socket filler;
};

// A port nobody listens on: connects are refused.
uint16_t closed_port(asio::io_context& ioc) {
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// The request as the QMQP spec frames it, built independently of frame_request().
std::string spec_request(const Envelope& env, const std::string& message) {
  std::string inner = netstring(message) + netstring(env.sender);
  for (const auto& r : env.recipients) inner += netstring(r);
  return netstring(inner);
}

class QmqpClient : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg.connect_timeout = 2s;
    cfg.answer_timeout = 2s;
  }
  void TearDown() override {
    for (auto& s : servers) s->stop();
    ioc.restart();
    ioc.run_for(2s);
  }

  FakeServer& serve(Script script, const char* addr = "127.0.0.1") {
    servers.push_back(std::make_unique<FakeServer>(ioc, std::move(script), addr));
    cfg.servers.push_back(servers.back()->server());
    return *servers.back();
  }

  // Relays the message and runs until it is done and every server script has finished.
  Outcome relay_message() {
    std::optional<Outcome> out;
    ioc.restart();
    auto start = Clock::now();
    asio::co_spawn(ioc, relay(cfg, env, header, body), [&](std::exception_ptr e, Outcome o) {
      EXPECT_FALSE(e) << "relay() must not throw";
      elapsed = Clock::now() - start;
      out = std::move(o);
    });
    auto idle = [&] {
      for (auto& s : servers)
        if (!s->idle()) return false;
      return true;
    };
    while ((!out || !idle()) && Clock::now() - start < 20s) ioc.run_one_for(20ms);
    EXPECT_TRUE(out) << "relay() did not finish";
    EXPECT_TRUE(idle()) << "a server script did not finish";
    return out.value_or(Outcome{});
  }

  asio::io_context ioc;
  std::vector<std::unique_ptr<FakeServer>> servers;
  ClientConfig cfg;
  Envelope env{"sender@example.net", {"alice@example.org", "bob@example.org"}};
  std::string header = "From: sender@example.net\nSubject: test\n";
  std::string body = "\nhello\n";
  Clock::duration elapsed{};
};

TEST_F(QmqpClient, AcceptedWithText) {
  FakeServer& s = serve(answers(netstring("KOk: queued as 4711AB")));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted);
  EXPECT_EQ(o.text, "Ok: queued as 4711AB");
  EXPECT_EQ(o.server, "127.0.0.1:" + std::to_string(s.port()));
}

TEST_F(QmqpClient, ServerReceivesExactSpecFraming) {
  FakeServer& s = serve(answers("3:KOk,"));
  relay_message();
  ASSERT_EQ(s.peers.size(), 1u);
  EXPECT_EQ(s.peers[0].request, spec_request(env, header + body));
}

TEST_F(QmqpClient, NullSenderAndLargeMessageFraming) {
  FakeServer& s = serve(answers("3:KOk,"));
  env = {"", {"r@x"}};
  header.assign(300'000, 'h');
  body.assign(3'000'000, 'b');
  EXPECT_EQ(relay_message().status, Status::Accepted);
  ASSERT_EQ(s.peers.size(), 1u);
  EXPECT_TRUE(s.peers[0].request == spec_request(env, header + body));
}

TEST_F(QmqpClient, TempFail) {
  serve(answers("10:Zdisk full,"));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::TempFail);
  EXPECT_EQ(o.text, "disk full");
}

TEST_F(QmqpClient, PermFailIsFinal) {
  serve(answers("31:DError: no recipients specified,"));
  FakeServer& second = serve(answers("3:KOk,"));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::PermFail);
  EXPECT_EQ(o.text, "Error: no recipients specified");
  EXPECT_EQ(second.accepted, 0);
}

// The failed first server is counted under its own name (the outcome names only the second).
uint64_t failovers(const std::string& server) {
  for (const auto& [labels, n] : core::labeled_counters_snapshot("qmqp_failovers_total"))
    if (labels == core::labels({{"server", server}}).text()) return n;
  return 0;
}

TEST_F(QmqpClient, RefusedThenNextServer) {
  uint16_t refused = closed_port(ioc);
  std::string refused_name = "127.0.0.1:" + std::to_string(refused);
  uint64_t before = failovers(refused_name);
  cfg.servers.push_back({"127.0.0.1", refused});
  FakeServer& s = serve(answers("3:KOk,"));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted);
  EXPECT_EQ(o.server, s.server().name());
  EXPECT_EQ(failovers(refused_name), before + 1);
  EXPECT_EQ(failovers(s.server().name()), 0u);
}

TEST_F(QmqpClient, AllRefusedIsUnavailable) {
  uint16_t a = closed_port(ioc), b = closed_port(ioc);
  cfg.servers = {{"127.0.0.1", a}, {"127.0.0.1", b}};
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Unavailable);
  EXPECT_EQ(o.server, "127.0.0.1:" + std::to_string(b));
  EXPECT_NE(o.text.find("refused"), std::string::npos) << o.text;
}

TEST_F(QmqpClient, NoServersIsUnavailable) {
  EXPECT_EQ(relay_message().status, Status::Unavailable);
}

TEST_F(QmqpClient, UnresolvableNameThenNextServer) {
  cfg.servers.push_back({"qmqp.nonexistent.invalid", 628});
  FakeServer& s = serve(answers("3:KOk,"));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted);
  EXPECT_EQ(o.server, s.server().name());
}

TEST_F(QmqpClient, ResolvesLocalhost) {
  FakeServer& s = serve(answers("3:KOk,"));
  cfg.servers = {{"localhost", s.port()}};
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, "localhost:" + std::to_string(s.port()));
}

TEST_F(QmqpClient, NumericIPv6) {
  try {
    serve(answers("3:KOk,"), "::1");
  } catch (const boost::system::system_error&) {
    GTEST_SKIP() << "no IPv6 loopback";
  }
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, "[::1]:" + std::to_string(servers[0]->port()));
}

TEST_F(QmqpClient, ConnectTimeoutThenNextServer) {
  FullListener full(ioc);
  if (!full.connects_hang(ioc)) GTEST_SKIP() << "this kernel completes connects to a full listener";
  cfg.connect_timeout = 300ms;
  cfg.servers.push_back({"127.0.0.1", full.port()});
  FakeServer& s = serve(answers("3:KOk,"));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted);
  EXPECT_EQ(o.server, s.server().name());
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 1500ms);
}

TEST_F(QmqpClient, ConnectTimeoutOnlyServerIsUnavailable) {
  FullListener full(ioc);
  if (!full.connects_hang(ioc)) GTEST_SKIP() << "this kernel completes connects to a full listener";
  cfg.connect_timeout = 200ms;
  cfg.servers = {{"127.0.0.1", full.port()}};
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Unavailable);
  EXPECT_NE(o.text.find("timed out"), std::string::npos) << o.text;
}

// Once the request is sent, silence is a ProtocolError and no other server is tried (that could
// deliver twice). The client must close its socket at the timeout: the server sees EOF.
TEST_F(QmqpClient, NoAnswerTimesOutWithoutFailover) {
  FakeServer& silent = serve(answers_and_lingers(""));
  FakeServer& second = serve(answers("3:KOk,"));
  cfg.answer_timeout = 300ms;
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::ProtocolError);
  EXPECT_NE(o.text.find("timed out"), std::string::npos) << o.text;
  EXPECT_EQ(o.server, silent.server().name());
  EXPECT_GE(elapsed, 300ms);
  EXPECT_EQ(second.accepted, 0);
  ASSERT_EQ(silent.peers.size(), 1u);
  EXPECT_TRUE(silent.peers[0].client_closed);
}

TEST_F(QmqpClient, ServerClosesMidAnswer) {
  serve(answers("3:K"));
  FakeServer& second = serve(answers("3:KOk,"));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::ProtocolError);
  EXPECT_NE(o.text.find("closed"), std::string::npos) << o.text;
  EXPECT_EQ(second.accepted, 0);
}

TEST_F(QmqpClient, ServerClosesWithoutAnswer) {
  serve(answers(""));
  EXPECT_EQ(relay_message().status, Status::ProtocolError);
}

TEST_F(QmqpClient, AnswerLongerThanMax) {
  cfg.max_answer = 16;
  serve(answers(netstring("K" + std::string(100, 'x'))));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::ProtocolError);
  EXPECT_NE(o.text.find("too long"), std::string::npos) << o.text;
}

TEST_F(QmqpClient, AnswerOfExactlyMaxIsAccepted) {
  cfg.max_answer = 16;
  serve(answers(netstring("K" + std::string(15, 'x'))));
  EXPECT_EQ(relay_message().status, Status::Accepted);
}

TEST_F(QmqpClient, MalformedAnswer) {
  serve(answers("hello\n"));
  EXPECT_EQ(relay_message().status, Status::ProtocolError);
}

TEST_F(QmqpClient, UnknownAnswerCode) {
  serve(answers("3:XOk,"));
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::ProtocolError);
  EXPECT_FALSE(o.server.empty());
}

// The answer is complete at its final ',': it is acted on at once. The client still reads on until
// the server closes (in the background, bounded by the answer timeout), so neither side keeps a
// half-closed socket.
TEST_F(QmqpClient, AnswerActedOnAtOnceThenReadsUntilServerCloses) {
  bool closed_after_trailing = false;
  serve([&](tcp::socket& s, Peer& p) -> asio::awaitable<void> {
    co_await read_request(s, p);
    co_await send(s, "3:KOk,");
    co_await pause(300ms);
    co_await send(s, "trailing bytes are ignored");
    error_code ec;
    s.shutdown(tcp::socket::shutdown_send, ec);
    co_await wait_for_close(s, p);  // the client closes once it has read to EOF
    closed_after_trailing = p.client_closed;
  });
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted);
  EXPECT_LT(elapsed, 200ms);
  EXPECT_TRUE(closed_after_trailing);
}

// Issue 12, item 9: a server that answers K and keeps the socket open used to delay the 250 until
// the answer timeout. The client closes its side at the answer timeout (the server sees EOF).
TEST_F(QmqpClient, ServerNeverClosesAfterAnswer) {
  FakeServer& s = serve(answers_and_lingers("3:KOk,"));
  cfg.answer_timeout = 600ms;
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted);
  EXPECT_LT(elapsed, 300ms);
  ASSERT_EQ(s.peers.size(), 1u);
  EXPECT_TRUE(s.peers[0].client_closed);
}

// Issue 12, item 8: a server that reads the first 1,000 bytes of an 8 MB request, answers K and
// closes did not get the message: the K is not believed, the next server is tried.
asio::awaitable<void> partial_read_then(tcp::socket& s, std::string answer) {
  std::array<char, 1000> buf;
  error_code ec;
  co_await asio::async_read(s, asio::buffer(buf), with(ec));
  co_await send(s, answer);
  co_await pause(50ms);
  s.close();  // unread data: the kernel sends a reset
}

TEST_F(QmqpClient, KAfterIncompleteSendIsNotBelievedAndNextServerTried) {
  serve([](tcp::socket& s, Peer&) { return partial_read_then(s, "3:KOk,"); });
  FakeServer& second = serve(answers("3:KOk,"));
  cfg.answer_timeout = 30s;  // the whole 8 MB to the second server, under sanitizers and load
  body.assign(8 << 20, 'b');
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, second.server().name());
  ASSERT_EQ(second.peers.size(), 1u);
  EXPECT_TRUE(second.peers[0].request == spec_request(env, header + body));
}

TEST_F(QmqpClient, KAfterIncompleteSendOnlyServerIsUnavailable) {
  FakeServer& liar = serve([](tcp::socket& s, Peer&) { return partial_read_then(s, "3:KOk,"); });
  body.assign(8 << 20, 'b');
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Unavailable) << o.text;
  EXPECT_EQ(to_reply(o).code, 451);
  EXPECT_NE(o.text.find("incomplete send"), std::string::npos) << o.text;
  EXPECT_EQ(o.server, liar.server().name());
}

TEST_F(QmqpClient, GarbageAfterIncompleteSendNextServerTried) {
  serve([](tcp::socket& s, Peer&) { return partial_read_then(s, "3:XOk,"); });
  FakeServer& second = serve(answers("3:KOk,"));
  cfg.answer_timeout = 30s;  // the whole 8 MB to the second server, under sanitizers and load
  body.assign(8 << 20, 'b');
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, second.server().name());
}

TEST_F(QmqpClient, ZAfterIncompleteSendIsBelieved) {
  serve([](tcp::socket& s, Peer&) { return partial_read_then(s, "10:Zdisk full,"); });
  FakeServer& second = serve(answers("3:KOk,"));
  body.assign(8 << 20, 'b');
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::TempFail) << o.text;
  EXPECT_EQ(second.accepted, 0);
}

// A server that resets the connection while the request is still being written got no message:
// the next server is tried.
TEST_F(QmqpClient, SendFailsThenNextServer) {
  serve([](tcp::socket& s, Peer&) -> asio::awaitable<void> {
    reset(s);
    co_return;
  });
  FakeServer& second = serve(answers("3:KOk,"));
  cfg.answer_timeout = 30s;    // the 32 MB to the second server take seconds under sanitizers and load
  body.assign(32 << 20, 'b');  // larger than the socket buffers: the write is still going on
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, second.server().name());
}

// qmqpd refuses an oversized message part-way: it answers D, then resets. That answer counts.
TEST_F(QmqpClient, EarlyAnswerWhileSending) {
  serve([](tcp::socket& s, Peer&) -> asio::awaitable<void> {
    std::array<char, 1024> buf;
    error_code ec;
    co_await asio::async_read(s, asio::buffer(buf), with(ec));
    co_await send(s, "15:Dtoo big, sorry,");
    co_await pause(50ms);
    reset(s);
  });
  FakeServer& second = serve(answers("3:KOk,"));
  body.assign(32 << 20, 'b');
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::PermFail) << o.text;
  EXPECT_EQ(o.text, "too big, sorry");
  EXPECT_EQ(second.accepted, 0);
}

TEST_F(QmqpClient, SendTimeoutThenNextServer) {
  FakeServer& stuck = serve([](tcp::socket& s, Peer& p) -> asio::awaitable<void> {
    co_await pause(6s);  // reads nothing while the client is sending (past the client's timeout)
    co_await wait_for_close(s, p);
  });
  stuck.small_receive_buffer();
  FakeServer& second = serve(answers("3:KOk,"));
  cfg.answer_timeout = 3s;  // also the whole send to the second server: room for sanitizer builds
  body.assign(8 << 20, 'b');  // more than the client's send buffer plus the server's receive buffer
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, second.server().name());
  ASSERT_EQ(stuck.peers.size(), 1u);
  EXPECT_TRUE(stuck.peers[0].client_closed);
}

// relay() serialises its own timers and socket, so it is safe on a multi-threaded io_context.
TEST_F(QmqpClient, ConcurrentRelaysOnTwoThreads) {
  FakeServer& s = serve(answers("3:KOk,"));
  constexpr int kRelays = 50;
  std::atomic<int> done{0}, accepted{0};
  for (int i = 0; i < kRelays; ++i) {
    asio::co_spawn(ioc, relay(cfg, env, header, body), [&](std::exception_ptr e, Outcome o) {
      if (!e && o.status == Status::Accepted) ++accepted;
      if (++done == kRelays) s.stop();
    });
  }
  std::thread t([&] { ioc.run_for(20s); });
  ioc.run_for(20s);
  t.join();
  EXPECT_EQ(accepted.load(), kRelays);
  EXPECT_EQ(s.finished, kRelays);
}

// --- passive health: circuit breakers shared by the relays ---

// A server that hangs (reads the request, never answers) while `*hung`, else answers K.
Script hangs_while(const bool* hung) {
  return [hung](tcp::socket& s, Peer& p) -> asio::awaitable<void> {
    if (*hung) return answer_then_linger(s, p, "");
    return answer_then_close(s, p, "3:KOk,");
  };
}

class QmqpBreaker : public QmqpClient {
 protected:
  void SetUp() override {
    QmqpClient::SetUp();
    cfg.breakers = breakers;
    cfg.breaker = {2, 400ms};
    cfg.answer_timeout = 300ms;
  }
  std::shared_ptr<Breakers> breakers = std::make_shared<Breakers>();
};

TEST_F(QmqpBreaker, HungServerOpensAfterThresholdThenIsSkippedThenTrialClosesIt) {
  bool hung = true;
  FakeServer& first = serve(hangs_while(&hung));
  FakeServer& second = serve(answers("3:KOk,"));
  std::string name = first.server().name();
  for (int i = 0; i < 2; ++i) {
    Outcome o = relay_message();
    EXPECT_EQ(o.status, Status::ProtocolError) << o.text;  // sent: no failover (no duplicates)
    EXPECT_GE(elapsed, 300ms);
  }
  EXPECT_EQ(breakers->view(name).state, BreakerState::Open);
  EXPECT_NE(breakers->down_reason(name, cfg.breaker).find("timed out"), std::string::npos)
      << breakers->down_reason(name, cfg.breaker);
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, second.server().name());
  EXPECT_LT(elapsed, 200ms);
  EXPECT_EQ(first.accepted, 2);

  hung = false;
  std::this_thread::sleep_for(400ms);  // open_time
  o = relay_message();                 // the trial
  EXPECT_EQ(o.status, Status::Accepted) << o.text;
  EXPECT_EQ(o.server, name);
  EXPECT_EQ(breakers->view(name).state, BreakerState::Closed);
  EXPECT_EQ(breakers->down_reason(name, cfg.breaker), "");
}

TEST_F(QmqpBreaker, FailedTrialOpensAgain) {
  bool hung = true;
  FakeServer& first = serve(hangs_while(&hung));
  FakeServer& second = serve(answers("3:KOk,"));
  relay_message();
  relay_message();
  std::string name = first.server().name();
  ASSERT_EQ(breakers->view(name).state, BreakerState::Open);
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(relay_message().status, Status::ProtocolError);  // the trial, still hung
  EXPECT_EQ(breakers->view(name).state, BreakerState::Open);
  Outcome o = relay_message();
  EXPECT_EQ(o.server, second.server().name());
  EXPECT_EQ(first.accepted, 3);
}

TEST_F(QmqpBreaker, ZAndDAreVerdictsNotFailures) {
  cfg.breaker.failure_threshold = 1;
  FakeServer& z = serve(answers("5:Zbusy,"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(relay_message().status, Status::TempFail);
  EXPECT_EQ(breakers->view(z.server().name()).state, BreakerState::Closed);
  EXPECT_EQ(z.accepted, 3);
}

TEST_F(QmqpBreaker, RefusedConnectionsOpenToo) {
  cfg.breaker.failure_threshold = 1;
  Server dead{"127.0.0.1", closed_port(ioc)};
  cfg.servers.push_back(dead);
  FakeServer& s = serve(answers("3:KOk,"));
  EXPECT_EQ(relay_message().status, Status::Accepted);
  EXPECT_EQ(breakers->view(dead.name()).state, BreakerState::Open);
  EXPECT_EQ(breakers->view(s.server().name()).state, BreakerState::Closed);
}

// Never refuse mail without trying: when every breaker is open, the server that failed longest
// ago is tried anyway.
TEST_F(QmqpBreaker, AllOpenTriesTheLeastRecentlyFailed) {
  cfg.breaker = {1, std::chrono::milliseconds(60'000)};
  Server a{"127.0.0.1", closed_port(ioc)}, b{"127.0.0.1", closed_port(ioc)};
  cfg.servers = {a, b};
  relay_message();  // a fails, then b fails: both open
  ASSERT_EQ(breakers->view(a.name()).state, BreakerState::Open);
  ASSERT_EQ(breakers->view(b.name()).state, BreakerState::Open);
  Outcome o = relay_message();
  EXPECT_EQ(o.status, Status::Unavailable);
  EXPECT_EQ(o.server, a.name()) << "a failed first";
  o = relay_message();
  EXPECT_EQ(o.server, b.name()) << "now b failed longest ago";
}

TEST(QmqpBreakers, TransitionsWithAClock) {
  Breakers b;
  BreakerPolicy p{3, std::chrono::milliseconds(1000)};
  auto t = Breakers::Clock::now();
  const std::string s = "10.9.9.9:628";
  EXPECT_EQ(b.admit(s, p, t), Breakers::Admit::Yes);
  b.failed(s, "x", p, t);
  b.failed(s, "x", p, t);
  b.succeeded(s, t);  // consecutive failures only
  b.failed(s, "x", p, t);
  b.failed(s, "x", p, t);
  EXPECT_EQ(b.view(s).state, BreakerState::Closed);
  b.failed(s, "answer timed out", p, t);
  EXPECT_EQ(b.view(s).state, BreakerState::Open);
  EXPECT_EQ(b.admit(s, p, t + std::chrono::milliseconds(999)), Breakers::Admit::Skip);
  auto later = t + std::chrono::milliseconds(1000);
  EXPECT_EQ(b.admit(s, p, later), Breakers::Admit::Trial);
  EXPECT_EQ(b.view(s).state, BreakerState::HalfOpen);
  EXPECT_EQ(b.admit(s, p, later), Breakers::Admit::Skip) << "one trial at a time";
  b.abandon_trial(s);
  EXPECT_EQ(b.admit(s, p, later), Breakers::Admit::Trial) << "an abandoned trial frees the slot";
  b.failed(s, "still hung", p, later);
  EXPECT_EQ(b.view(s).state, BreakerState::Open);
  EXPECT_EQ(b.admit(s, p, later + std::chrono::milliseconds(500)), Breakers::Admit::Skip) << "open_time restarts";
  EXPECT_EQ(b.admit(s, p, later + std::chrono::milliseconds(1000)), Breakers::Admit::Trial);
  b.succeeded(s, later);
  EXPECT_EQ(b.view(s).state, BreakerState::Closed);
  EXPECT_EQ(b.admit(s, p, later), Breakers::Admit::Yes);
}

TEST(QmqpBreakers, ThresholdZeroNeverOpens) {
  Breakers b;
  BreakerPolicy p{0, std::chrono::milliseconds(1000)};
  for (int i = 0; i < 100; ++i) b.failed("10.9.9.8:628", "x", p);
  EXPECT_EQ(b.view("10.9.9.8:628").state, BreakerState::Closed);
  EXPECT_EQ(b.admit("10.9.9.8:628", p), Breakers::Admit::Yes);
}

TEST(QmqpBreakers, MetricsCountTransitions) {
  Breakers b;
  BreakerPolicy p{1, std::chrono::milliseconds(0)};
  const std::string s = "10.9.9.7:628";
  b.failed(s, "x", p);
  auto gauge = [&] {
    for (auto& [labels, v] : core::labeled_gauges_snapshot("qmqp_breaker_state"))
      if (labels == "server=\"" + s + "\"") return v;
    return -1.0;
  };
  EXPECT_EQ(gauge(), 1);
  EXPECT_EQ(b.admit(s, p), Breakers::Admit::Trial);
  EXPECT_EQ(gauge(), 2);
  b.succeeded(s);
  EXPECT_EQ(gauge(), 0);
  uint64_t to_open = 0;
  for (auto& [labels, n] : core::labeled_counters_snapshot("qmqp_breaker_transitions_total"))
    if (labels == "server=\"" + s + "\",to=\"open\"") to_open = n;
  EXPECT_EQ(to_open, 1u);
}

TEST(QmqpServer, Name) {
  EXPECT_EQ((Server{"10.0.0.1", 628}).name(), "10.0.0.1:628");
  EXPECT_EQ((Server{"::1", 6280}).name(), "[::1]:6280");
  EXPECT_EQ((Server{"mx.example.org", 628}).name(), "mx.example.org:628");
}

TEST(QmqpToReply, Mapping) {
  core::Reply k = to_reply({Status::Accepted, "Ok: queued as 1", "s"});
  EXPECT_EQ(k.code, 250);
  EXPECT_EQ(k.enhanced, "2.0.0");
  EXPECT_NE(k.text.find("queued as 1"), std::string::npos);
  core::Reply z = to_reply({Status::TempFail, "busy", "s"});
  EXPECT_EQ(z.code, 451);
  EXPECT_EQ(z.enhanced, "4.3.0");
  core::Reply d = to_reply({Status::PermFail, "no such user", "s"});
  EXPECT_EQ(d.code, 554);
  EXPECT_EQ(d.enhanced, "5.6.0");
  core::Reply u = to_reply({Status::Unavailable, "refused", "s"});
  EXPECT_EQ(u.code, 451);
  EXPECT_EQ(u.enhanced, "4.4.1");
  core::Reply p = to_reply({Status::ProtocolError, "garbage", "s"});
  EXPECT_EQ(p.code, 451);
  EXPECT_EQ(p.enhanced, "4.4.2");
}

}  // namespace
}  // namespace qmqp
