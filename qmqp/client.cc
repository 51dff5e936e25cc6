// QMQP client: one connection per message, servers tried in order, every step under a deadline.
// Only a failed connect or send moves on to the next server; once the request is out, its answer
// (or the lack of one) is final.
#include "qmqp/client.h"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <memory>

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

// One connection attempt. While armed, the timer closes the socket at the deadline and sets
// timed_out. Its handler holds the Conn alive; a handler queued before disarm() sees a newer
// generation and does nothing.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(const asio::any_io_executor& ex) : sock(ex), timer(ex) {}
  tcp::socket sock;
  asio::steady_timer timer;
  unsigned generation = 0;
  bool timed_out = false;
  bool sent = false;  // the whole request was written

  void arm(Clock::time_point deadline) {
    timed_out = false;
    timer.expires_at(deadline);
    timer.async_wait([self = shared_from_this(), gen = ++generation](error_code ec) {
      if (ec || gen != self->generation) return;
      self->timed_out = true;
      self->sock.close(ec);
    });
  }
  void disarm() {
    ++generation;
    timer.cancel();
  }
  void close() {
    disarm();
    error_code ignored;
    sock.close(ignored);
  }
};

// A name lookup. Asio cannot interrupt a getaddrinfo() in progress, so the lookup runs detached
// and cancels `done` when it finishes; the caller waits on `done` until the deadline.
struct Lookup {
  explicit Lookup(const asio::any_io_executor& ex) : resolver(ex), done(ex) {}
  tcp::resolver resolver;
  asio::steady_timer done;
  bool finished = false;
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
};

asio::awaitable<error_code> resolve(const Server& s, Clock::time_point deadline,
                                    std::vector<tcp::endpoint>& out) {
  error_code ec;
  auto addr = asio::ip::make_address(s.host, ec);
  if (!ec) {
    out = {tcp::endpoint(addr, s.port)};
    co_return ec;
  }
  auto l = std::make_shared<Lookup>(co_await asio::this_coro::executor);
  l->done.expires_at(deadline);
  l->resolver.async_resolve(s.host, std::to_string(s.port),
                            [l](error_code err, const tcp::resolver::results_type& results) {
                              l->finished = true;
                              l->ec = err;
                              for (const auto& r : results) l->endpoints.push_back(r.endpoint());
                              l->done.cancel();
                            });
  co_await l->done.async_wait(with(ec));
  if (!l->finished) {
    l->resolver.cancel();
    co_return asio::error::timed_out;
  }
  out = std::move(l->endpoints);
  co_return l->ec;
}

// Returns an empty string once connected, or what went wrong.
asio::awaitable<std::string> connect(Conn& c, const Server& s, Clock::time_point deadline) {
  std::vector<tcp::endpoint> endpoints;
  error_code ec = co_await resolve(s, deadline, endpoints);
  if (ec) co_return "cannot resolve " + s.host + ": " + ec.message();
  c.arm(deadline);
  co_await asio::async_connect(c.sock, endpoints, with(ec));
  c.disarm();
  if (c.timed_out) co_return "connect to " + s.name() + ": timed out";
  if (ec) co_return "connect to " + s.name() + ": " + ec.message();
  c.sock.set_option(tcp::no_delay(true), ec);
  co_return "";
}

struct Answer {
  Outcome outcome;
  bool got_bytes = false;  // the server sent something
};

// Reads the answer netstring, then discards whatever follows until the server closes; the
// caller's deadline bounds both. A broken or missing answer is a ProtocolError.
asio::awaitable<Answer> read_answer(Conn& c, size_t max_answer) {
  NetstringDecoder decoder(max_answer);
  std::array<char, 512> buf;
  Answer a;
  error_code ec;
  while (decoder.state() == NetstringDecoder::State::NeedMore) {
    size_t n = co_await c.sock.async_read_some(asio::buffer(buf), with(ec));
    if (ec) {
      std::string why = c.timed_out              ? "timed out waiting for the answer"
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
  while (!ec) co_await c.sock.async_read_some(asio::buffer(buf), with(ec));  // until EOF or deadline
  co_return a;
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
  co_await asio::async_write(c.sock, request, with(ec));
  if (c.timed_out) {
    o.text = "sending to " + s.name() + ": timed out";
    co_return o;
  }
  c.sent = !ec;
  if (c.sent) c.arm(Clock::now() + cfg.answer_timeout);
  // After a failed send, still read: a server refusing the message part-way (too big, not
  // authorised) answers before it closes. Without any answer byte, the next server is tried.
  Answer a = co_await read_answer(c, cfg.max_answer);
  c.disarm();
  if (!c.sent && !a.got_bytes) {
    o.text = "sending to " + s.name() + ": " + ec.message();
    co_return o;
  }
  a.outcome.server = s.name();
  co_return a.outcome;
}

// The server loop. It runs on a strand, so the deadline handlers never race the coroutine.
asio::awaitable<Outcome> relay_serialized(const ClientConfig& cfg, const Envelope& env,
                                          std::string_view header, std::string_view body) {
  auto ex = co_await asio::this_coro::executor;
  Frame f = frame_request(env, header.size() + body.size());
  Outcome last{Status::Unavailable, "no QMQP server configured", ""};
  for (const Server& s : cfg.servers) {
    auto c = std::make_shared<Conn>(ex);
    try {
      last = co_await attempt(*c, cfg, s, f, header, body);
    } catch (const std::exception& e) {
      last = {c->sent ? Status::ProtocolError : Status::Unavailable, e.what(), s.name()};
    }
    c->close();
    if (last.status != Status::Unavailable) break;
  }
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
