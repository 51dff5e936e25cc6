// QMQP client: one connection per message, servers tried in order, every step under a deadline
// (net/deadline.h: a Watchdog over the connection, a Race for the name lookup).
// Only a failed connect or send moves on to the next server; once the request is out, its answer
// (or the lack of one) is final. Servers whose circuit breaker is open are skipped (breaker.h).
#include "qmqp/client.h"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <memory>

#include <fmt/format.h>

#include "net/deadline.h"
#include "core/log.h"
#include "core/metrics.h"
#include "qmqp/breaker.h"
#include "qmqp/netstring.h"

namespace qmqp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

core::Reply to_reply(const Outcome& o) {
  switch (o.status) {
    case Status::Accepted: return core::replies::relayed(o.text);
    case Status::TempFail: return core::replies::relay_tempfail(o.text);
    case Status::PermFail: return core::replies::relay_permfail(o.text);
    case Status::Unavailable: return core::replies::relay_unavailable(o.text);
    case Status::ProtocolError: break;
  }
  return core::replies::relay_protocol_error(o.text);
}

namespace {

auto with(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// One connection attempt. While armed, the watchdog closes the socket at the deadline (and
// timed_out() turns true); its pending wait holds the Conn alive until close().
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(const asio::any_io_executor& ex) : sock(ex), watchdog(ex) {}
  tcp::socket sock;
  net::Watchdog watchdog;
  bool sent = false;      // the whole request was written
  bool answered = false;  // a whole answer arrived after a whole request: drain, then close

  void watch() {
    watchdog.start(shared_from_this(), [this] {
      error_code ignored;
      sock.close(ignored);
    });
  }
  void arm(Clock::time_point deadline) { watchdog.arm(deadline); }
  void disarm() { watchdog.disarm(); }
  bool timed_out() const { return watchdog.timed_out(); }
  void close() {
    watchdog.stop();
    error_code ignored;
    sock.close(ignored);
  }
};

struct Resolved {
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
};

// The lookup itself; its frame holds the resolver for as long as getaddrinfo() runs.
asio::awaitable<Resolved> lookup(std::shared_ptr<tcp::resolver> resolver, std::string host, std::string service) {
  Resolved r;
  auto results = co_await resolver->async_resolve(host, service, with(r.ec));
  for (const auto& e : results) r.endpoints.push_back(e.endpoint());
  co_return r;
}

// A name lookup. Asio cannot interrupt a getaddrinfo() in progress, so the lookup races the
// deadline and is abandoned when it loses.
asio::awaitable<error_code> resolve(const Server& s, Clock::time_point deadline,
                                    std::vector<tcp::endpoint>& out) {
  error_code ec;
  auto addr = asio::ip::make_address(s.host, ec);
  if (!ec) {
    out = {tcp::endpoint(addr, s.port)};
    co_return ec;
  }
  auto ex = co_await asio::this_coro::executor;
  auto resolver = std::make_shared<tcp::resolver>(ex);
  auto race = std::make_shared<net::Race<Resolved>>(ex);
  auto op = lookup(resolver, s.host, std::to_string(s.port));
  race->start(std::move(op), deadline);
  co_await race->wait();
  if (race->ending() != net::Ending::Done) {
    resolver->cancel();
    co_return asio::error::timed_out;
  }
  if (!race->value()) co_return asio::error::no_memory;  // the lookup threw: only std::bad_alloc can
  out = std::move(race->value()->endpoints);
  co_return race->value()->ec;
}

// Returns an empty string once connected, or what went wrong.
asio::awaitable<std::string> connect(Conn& c, const Server& s, Clock::time_point deadline) {
  std::vector<tcp::endpoint> endpoints;
  error_code ec = co_await resolve(s, deadline, endpoints);
  if (ec) co_return "cannot resolve " + s.host + ": " + ec.message();
  c.arm(deadline);
  co_await asio::async_connect(c.sock, endpoints, with(ec));
  c.disarm();
  if (c.timed_out()) co_return "connect to " + s.name() + ": timed out";
  if (ec) co_return "connect to " + s.name() + ": " + ec.message();
  c.sock.set_option(tcp::no_delay(true), ec);
  co_return "";
}

struct Answer {
  Outcome outcome;
  bool got_bytes = false;  // the server sent something
  bool complete = false;   // a whole answer netstring arrived (its final ',')
};

// Reads the answer netstring and returns at its final ',': the answer is acted on at once, the
// server's close is awaited afterwards (drain()). The caller's deadline bounds the read. A broken
// or missing answer is a ProtocolError.
asio::awaitable<Answer> read_answer(Conn& c, size_t max_answer) {
  NetstringDecoder decoder(max_answer);
  std::array<char, 512> buf;
  Answer a;
  error_code ec;
  while (decoder.state() == NetstringDecoder::State::NeedMore) {
    size_t n = co_await c.sock.async_read_some(asio::buffer(buf), with(ec));
    if (ec) {
      std::string why = c.timed_out()            ? "timed out waiting for the answer"
                        : ec == asio::error::eof ? "connection closed before the answer was complete"
                                                 : "reading the answer: " + ec.message();
      a.outcome = {Status::ProtocolError, why, ""};
      co_return a;
    }
    a.got_bytes = true;
    std::string_view in(buf.data(), n);
    decoder.feed(in);
  }
  if (decoder.state() == NetstringDecoder::State::Error) {
    a.outcome = {Status::ProtocolError, "malformed answer: " + decoder.error(), ""};
    co_return a;
  }
  a.outcome = parse_answer(decoder.payload());
  a.complete = true;
  co_return a;
}

// After a complete answer: discards whatever follows until the server closes (so the server, which
// closes first after answering, keeps the TIME_WAIT and no socket is left in CLOSE_WAIT), bounded by
// the deadline still armed (the answer timeout); runs detached, the client has its answer already.
asio::awaitable<void> drain(std::shared_ptr<Conn> c) {
  std::array<char, 512> buf;
  error_code ec;
  try {
    while (!ec) co_await c->sock.async_read_some(asio::buffer(buf), with(ec));  // until EOF, error or deadline
  } catch (const std::exception&) {
  }
  c->close();
}

asio::awaitable<Outcome> attempt(Conn& c, const ClientConfig& cfg, const Server& s, const Frame& f,
                                 std::string_view header, std::string_view body) {
  Outcome o{Status::Unavailable, "", s.name()};
  o.text = co_await connect(c, s, Clock::now() + cfg.connect_timeout);
  if (!o.text.empty()) co_return o;

  // The request is written under the answer timeout too; the answer then gets a fresh one.
  std::array<asio::const_buffer, 4> request{asio::buffer(f.head), asio::buffer(header),
                                            asio::buffer(body), asio::buffer(f.tail)};
  error_code ec;
  c.arm(Clock::now() + cfg.answer_timeout);
  size_t written = co_await asio::async_write(c.sock, request, with(ec));
  if (c.timed_out()) {
    o.text = "sending to " + s.name() + ": timed out";
    co_return o;
  }
  c.sent = !ec;
  if (c.sent) c.arm(Clock::now() + cfg.answer_timeout);
  // After a failed send, still read: a server refusing the message part-way (too big, not
  // authorised) answers Z or D before it closes, and that verdict is believed. Anything else after
  // a failed send (no answer, K, garbage) is this server's failure: the message was not fully
  // transferred, so it cannot have been delivered, and the next server is tried.
  Answer a = co_await read_answer(c, cfg.max_answer);
  if (a.complete && c.sent) {
    c.answered = true;  // the rest (the server's close) is drained in the background
  } else {
    c.disarm();
  }
  if (!c.sent) {
    size_t total = f.head.size() + header.size() + body.size() + f.tail.size();
    if (!a.got_bytes) {
      o.text = fmt::format("sending to {}: {} after {} of {} bytes", s.name(), ec.message(), written, total);
      co_return o;
    }
    if (a.outcome.status != Status::TempFail && a.outcome.status != Status::PermFail) {
      o.text = fmt::format("{} answered '{}' after an incomplete send ({} of {} bytes: {})", s.name(),
                           a.outcome.status == Status::Accepted ? "K" : a.outcome.text, written, total,
                           ec.message());
      co_return o;
    }
  }
  a.outcome.server = s.name();
  co_return a.outcome;
}

// The server's verdict (K, Z, D) is proof of life; anything else is this server failing.
bool server_failed(const Outcome& o) {
  return o.status == Status::Unavailable || o.status == Status::ProtocolError;
}

// A server that could not take the message (connect, send): counted per server and logged, since
// the outcome the session reports names only the server that answered last.
void note_failover(const std::string& server, const std::string& why) {
  static const bool described = [] {
    core::describe({"qmqp_failovers_total",
                    "Attempts on a mailbox server that failed before the message was delivered (connect, send), after "
                    "which the next server was tried, by server."});
    return true;
  }();
  (void)described;
  core::count(core::labeled_counter("qmqp_failovers_total", core::labels({{"server", server}})));
  core::log().warn("qmqp server={} failed: {}; trying the next server", server, why);
}

// A trial message let through a half-open breaker; if its relay ends without a result (abandoned),
// the next message may try.
struct TrialGuard {
  Breakers* breakers = nullptr;
  std::string server;
  ~TrialGuard() {
    if (breakers) breakers->abandon_trial(server);
  }
};

// The server loop. It runs on a strand, so the deadline handlers never race the coroutine.
asio::awaitable<Outcome> relay_serialized(const ClientConfig& cfg, const Envelope& env,
                                          std::string_view header, std::string_view body) {
  auto ex = co_await asio::this_coro::executor;
  Frame f = frame_request(env, header.size() + body.size());
  Outcome last{Status::Unavailable, "no QMQP server configured", ""};
  Breakers* breakers = cfg.breakers.get();

  // One attempt on server `s`, its result reported to the server's breaker.
  auto try_server = [&](const Server& s, bool trial) -> asio::awaitable<Outcome> {
    std::string name = s.name();
    TrialGuard guard{trial ? breakers : nullptr, name};
    auto c = std::make_shared<Conn>(ex);
    c->watch();
    Outcome o;
    try {
      o = co_await attempt(*c, cfg, s, f, header, body);
    } catch (const std::exception& e) {
      o = {c->sent ? Status::ProtocolError : Status::Unavailable, e.what(), name};
      c->answered = false;
    }
    if (c->answered)
      asio::co_spawn(ex, drain(c), asio::detached);
    else
      c->close();
    if (breakers) {
      guard.breakers = nullptr;  // reported: no longer abandoned
      if (server_failed(o))
        breakers->failed(name, o.text, cfg.breaker);
      else
        breakers->succeeded(name);
    }
    co_return o;
  };

  std::vector<std::string> skipped;  // names of servers skipped because their breaker is open
  std::vector<const Server*> skipped_servers;
  bool tried = false;
  for (const Server& s : cfg.servers) {
    Breakers::Admit admit = breakers ? breakers->admit(s.name(), cfg.breaker) : Breakers::Admit::Yes;
    if (admit == Breakers::Admit::Skip) {
      skipped.push_back(s.name());
      skipped_servers.push_back(&s);
      continue;
    }
    tried = true;
    last = co_await try_server(s, admit == Breakers::Admit::Trial);
    if (last.status != Status::Unavailable) break;
    note_failover(s.name(), last.text);
  }
  // Every server is judged down: mail is never refused without trying at all, so the one that
  // failed longest ago is tried anyway (outside the breaker's trial; a verdict still closes it).
  if (!tried && !skipped.empty())
    last = co_await try_server(*skipped_servers[breakers->least_recently_failed(skipped)], false);
  co_return last;
}

}  // namespace

asio::awaitable<Outcome> relay(const ClientConfig& cfg, const Envelope& env, std::string_view header,
                               std::string_view body) {
  try {
    auto strand = asio::make_strand(co_await asio::this_coro::executor);
    co_return co_await asio::co_spawn(strand, relay_serialized(cfg, env, header, body),
                                      asio::use_awaitable);
  } catch (const std::exception& e) {
    co_return Outcome{Status::Unavailable, e.what(), ""};
  }
}

}  // namespace qmqp
