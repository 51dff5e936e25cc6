// The rspamd filter's I/O (rspamd.h): one Beast HTTP/1.1 exchange per message with the first
// server that takes it, on a kept connection when there is one, bounded by the filter's timeout;
// counted per result.
#include "filters/rspamd/rspamd.h"

#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "config/parameters.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"
#include "filters/rspamd/connections.h"
#include "filters/rspamd/protocol.h"

namespace filters {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace rspamd {
namespace {
using Clock = std::chrono::steady_clock;
auto with(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

void count(std::string_view result) {
  core::count(core::labeled_counter("rspamd_messages_total", core::labels({{"result", result}})));
}
void count_connection(std::string_view event) {
  core::count(core::labeled_counter("rspamd_connections_total", core::labels({{"event", event}})));
}

// When each server's connect last failed, for the whole process (kDownFor).
class ConnectFailures {
 public:
  static void mark(const std::string& server, Clock::time_point when) {
    std::lock_guard lock(mu());
    map()[server] = when;
  }
  static void clear(const std::string& server) {
    std::lock_guard lock(mu());
    map().erase(server);
  }
  static std::optional<Clock::time_point> last(const std::string& server) {
    std::lock_guard lock(mu());
    auto it = map().find(server);
    if (it == map().end()) return std::nullopt;
    return it->second;
  }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::map<std::string, Clock::time_point>& map() {
    static std::map<std::string, Clock::time_point> m;
    return m;
  }
};

// A fresh connection to `server` within `until`: "" or what failed.
asio::awaitable<std::string> connect(beast::tcp_stream& stream, const std::string& host, uint16_t port,
                                     Clock::time_point until) {
  error_code ec;
  tcp::resolver resolver(stream.get_executor());
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), with(ec));
  if (ec) co_return "resolve: " + ec.message();
  stream.expires_at(until);
  co_await stream.async_connect(endpoints, with(ec));
  if (ec == beast::error::timeout) co_return "connect: no connection within rspamd.connect_timeout";
  if (ec) co_return "connect: " + ec.message();
  co_return "";
}

// One request and its answer on a connected stream, bounded by `deadline`.
struct Transfer {
  unsigned status = 0;
  std::string body;
  std::string error;        // empty: status and body are the answer
  bool answered = false;    // a byte of the answer came (no resending then)
  bool timed_out = false;
  bool keep_alive = false;  // the answer allows another request on this connection
};

asio::awaitable<Transfer> transfer(beast::tcp_stream& stream, const http::request<http::string_body>& req,
                                   Clock::time_point deadline) {
  Transfer t;
  error_code ec;
  stream.expires_at(deadline);
  co_await http::async_write(stream, req, with(ec));
  if (ec) {
    t.error = "write: " + ec.message();
    t.timed_out = ec == beast::error::timeout;
    co_return t;
  }
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBody);
  co_await http::async_read(stream, buf, parser, with(ec));
  t.answered = parser.got_some() || buf.size() > 0;
  if (ec) {
    t.error = "read: " + ec.message();
    t.timed_out = ec == beast::error::timeout;
    co_return t;
  }
  t.status = parser.get().result_int();
  t.body = std::move(parser.get().body());
  t.keep_alive = parser.keep_alive() && buf.size() == 0;  // bytes past the answer: not a clean connection
  co_return t;
}

// One HTTP exchange with one server: status 0 and `error` set when it did not complete.
struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::string error;
  bool connected = false;  // false: the next server may be tried
};

struct Limits {
  std::chrono::milliseconds connect_timeout;
  std::chrono::milliseconds idle_timeout;  // 0: no keep-alive
  size_t max_idle;
};

// `req` (Host set here) to `server` on an idle connection of this thread, or a fresh one; a
// reused connection that fails before any byte of the answer is replaced by a fresh one, once.
asio::awaitable<HttpResult> exchange(const std::string& server, http::request<http::string_body>& req,
                                     const Limits& lim, Clock::time_point deadline) {
  HttpResult r;
  std::string host, err;
  uint16_t port = 0;
  if (!config::parse_host_port(server, host, port, false, err)) {
    r.error = err;
    co_return r;
  }
  req.set(http::field::host, host);
  auto ex = co_await asio::this_coro::executor;
  IdlePool* pool = lim.idle_timeout.count() > 0 ? &IdlePool::of(ex) : nullptr;
  for (int attempt = 0;; ++attempt) {
    std::optional<tcp::socket> idle = pool && attempt == 0 ? pool->take(server) : std::nullopt;
    const bool reused = idle.has_value();
    r.connected = false;
    beast::tcp_stream stream(ex);
    if (reused) {
      stream.socket() = std::move(*idle);
      count_connection("reused");
    } else {
      std::string failed = co_await connect(stream, host, port, std::min(Clock::now() + lim.connect_timeout, deadline));
      if (!failed.empty()) {
        ConnectFailures::mark(server, Clock::now());
        r.error = failed;
        co_return r;
      }
      ConnectFailures::clear(server);
      count_connection("opened");
    }
    r.connected = true;
    Transfer t = co_await transfer(stream, req, deadline);
    if (!t.error.empty()) {
      if (reused && !t.answered && !t.timed_out && Clock::now() < deadline) {
        count_connection("stale");  // closed by the peer while we took it: a fresh one
        continue;
      }
      r.error = t.error;
      co_return r;
    }
    r.status = t.status;
    r.body = std::move(t.body);
    if (pool && t.keep_alive) {
      pool->put(server, stream.release_socket(), lim.idle_timeout, lim.max_idle);
    } else {
      error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    }
    co_return r;
  }
}

http::request<http::string_body> check_request(const Context& ctx, const Settings& s, std::string_view hostname) {
  http::request<http::string_body> req{http::verb::post, "/checkv2", 11};
  for (const auto& [name, value] : request_headers(ctx, s, hostname)) req.insert(name, value);
  req.body() = *ctx.message;
  req.prepare_payload();
  return req;
}
}  // namespace

std::vector<std::string> try_order(const std::vector<std::string>& servers,
                                   const std::function<std::optional<Clock::time_point>(const std::string&)>& failed_at,
                                   Clock::time_point now) {
  std::vector<std::string> up, down;
  for (const auto& s : servers) {
    auto f = failed_at(s);
    (f && now - *f < kDownFor ? down : up).push_back(s);
  }
  up.insert(up.end(), down.begin(), down.end());
  return up;
}

std::string ping(const std::string& server, std::chrono::milliseconds timeout) {
  asio::io_context io;
  std::string result = "no answer";
  auto once = [&]() -> asio::awaitable<std::string> {
    std::string host, err;
    uint16_t port = 0;
    if (!config::parse_host_port(server, host, port, false, err)) co_return err;
    auto deadline = Clock::now() + timeout;
    beast::tcp_stream stream(io.get_executor());
    if (auto failed = co_await connect(stream, host, port, deadline); !failed.empty()) co_return failed;
    http::request<http::string_body> req{http::verb::get, "/ping", 11};
    req.set(http::field::host, host);
    req.set(http::field::connection, "close");
    Transfer t = co_await transfer(stream, req, deadline);
    if (!t.error.empty()) co_return t.error;
    if (t.status != 200) co_return "HTTP status " + std::to_string(t.status);
    if (t.body.rfind("pong", 0) != 0) co_return "answer is not pong: " + core::safe_text(t.body, 40);
    co_return "";
  };
  asio::co_spawn(io, once(), [&result](std::exception_ptr e, std::string got) { result = e ? "exception" : std::move(got); });
  io.run_for(timeout + std::chrono::seconds(1));  // the resolver is the only step the stream's timer does not bound
  return result;
}
}  // namespace rspamd

Rspamd::Rspamd(rspamd::Settings s, std::string hostname, std::chrono::milliseconds timeout)
    : s_(std::move(s)), hostname_(std::move(hostname)), timeout_(timeout) {}

asio::awaitable<Verdict> Rspamd::check(Phase, std::shared_ptr<const Context> ctx) {
  using rspamd::Clock;
  if (!ctx->message) co_return Verdict::failure("rspamd: no message");
  if (ctx->message->size() > s_.max_size) {
    rspamd::count("skipped_size");
    co_return Verdict{Action::Continue, std::nullopt, fmt::format("rspamd: not checked, {} octets > rspamd.max_size", ctx->message->size())};
  }
  const auto deadline = Clock::now() + timeout_;
  const rspamd::Limits lim{s_.connect_timeout, s_.idle_timeout, s_.max_connections};
  auto req = rspamd::check_request(*ctx, s_, hostname_);
  std::string errors;
  auto failed = [&errors](const std::string& server, const std::string& why) {
    core::count(core::labeled_counter("rspamd_server_failures_total", core::labels({{"server", server}})));
    errors += (errors.empty() ? "" : "; ") + server + ": " + why;
  };
  // The servers in order, each taken if it has a free slot; then the first busy one, waited for.
  auto order = rspamd::try_order(s_.servers, rspamd::ConnectFailures::last, Clock::now());
  std::string busy;
  for (size_t i = 0; i <= order.size(); ++i) {
    if (ctx->cancel->cancelled()) co_return Verdict::failure("rspamd: cancelled");
    std::string server;
    rspamd::InFlight::Slot slot;
    if (i < order.size()) {
      server = order[i];
      slot = rspamd::InFlight::try_take(rspamd::InFlight::of(server), s_.max_connections);
      if (!slot) {
        if (busy.empty()) busy = server;
        continue;
      }
    } else {
      if (busy.empty()) break;
      server = busy;
      slot = co_await rspamd::InFlight::wait(rspamd::InFlight::of(server), s_.max_connections, deadline);
      if (!slot) {
        failed(server, fmt::format("busy ({} exchanges in flight until the timeout)", s_.max_connections));
        break;
      }
    }
    rspamd::HttpResult r = co_await rspamd::exchange(server, req, lim, deadline);
    if (r.error.empty() && r.status != 200) r.error = fmt::format("HTTP status {}", r.status);
    if (!r.error.empty()) {
      failed(server, r.error);
      if (!r.connected && Clock::now() < deadline) continue;  // connect failed: the next server
      break;
    }
    rspamd::Answer a = rspamd::parse_answer(r.body, s_.score);
    rspamd::count(a.action.empty() ? "error" : a.action);
    if (!a.action.empty()) a.verdict.reason += " server=" + server;
    co_return std::move(a.verdict);
  }
  rspamd::count("error");
  co_return Verdict::failure("rspamd: " + (errors.empty() ? std::string("no server") : errors));
}

}  // namespace filters
