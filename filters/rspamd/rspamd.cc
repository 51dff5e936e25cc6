// The rspamd filter's I/O (rspamd.h): one Beast HTTP/1.1 exchange per message with the first
// server that accepts a connection, bounded by the filter's timeout; counted per result.
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
#include <atomic>
#include <map>
#include <mutex>

#include "config/parameters.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"
#include "filters/rspamd/protocol.h"

namespace filters {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace rspamd {
namespace {
auto with(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

void count(std::string_view result) {
  core::count(core::labeled_counter("rspamd_messages_total", core::labels({{"result", result}})));
}

// One request to `server` ("host:port"), bounded by `timeout` from connect to the last byte.
asio::awaitable<HttpResult> exchange(std::string server, http::request<http::string_body> req,
                                     std::chrono::milliseconds timeout) {
  HttpResult r;
  std::string host, err;
  uint16_t port = 0;
  if (!config::parse_host_port(server, host, port, false, err)) {
    r.error = err;
    co_return r;
  }
  auto ex = co_await asio::this_coro::executor;
  error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), with(ec));
  if (ec) {
    r.error = "resolve: " + ec.message();
    co_return r;
  }
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  co_await stream.async_connect(endpoints, with(ec));
  if (ec) {
    r.error = "connect: " + ec.message();
    co_return r;
  }
  r.connected = true;
  req.set(http::field::host, host);
  req.prepare_payload();
  co_await http::async_write(stream, req, with(ec));
  if (ec) {
    r.error = "write: " + ec.message();
    co_return r;
  }
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBody);
  co_await http::async_read(stream, buf, parser, with(ec));
  if (ec) {
    r.error = "read: " + ec.message();
    co_return r;
  }
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  r.status = parser.get().result_int();
  r.body = std::move(parser.get().body());
  co_return r;
}

// The exchanges in flight per server, for the whole process (a reload keeps counting): a server
// with max_connections of them gets no more until one ends.
class InFlight {
 public:
  // A held slot, released when destroyed; empty when the server is at `max`.
  struct Slot {
    std::shared_ptr<std::atomic<size_t>> n;
    Slot() = default;
    explicit Slot(std::shared_ptr<std::atomic<size_t>> c) : n(std::move(c)) {}
    Slot(Slot&&) = default;
    Slot& operator=(Slot&&) = default;
    ~Slot() {
      if (n) n->fetch_sub(1);
    }
    explicit operator bool() const { return n != nullptr; }
  };
  static Slot take(const std::string& server, size_t max) {
    static std::mutex mu;
    static std::map<std::string, std::shared_ptr<std::atomic<size_t>>> counts;
    std::shared_ptr<std::atomic<size_t>> c;
    {
      std::lock_guard lk(mu);
      auto& slot = counts[server];
      if (!slot) slot = std::make_shared<std::atomic<size_t>>(0);
      c = slot;
    }
    if (c->fetch_add(1) >= max) {
      c->fetch_sub(1);
      return {};
    }
    return Slot(std::move(c));
  }
};

http::request<http::string_body> check_request(const Context& ctx, const Settings& s, std::string_view hostname) {
  http::request<http::string_body> req{http::verb::post, "/checkv2", 11};
  for (const auto& [name, value] : request_headers(ctx, s, hostname)) req.insert(name, value);
  req.body() = *ctx.message;
  return req;
}
}  // namespace

std::string ping(const std::string& server, std::chrono::milliseconds timeout) {
  asio::io_context io;
  http::request<http::string_body> req{http::verb::get, "/ping", 11};
  HttpResult r;
  asio::co_spawn(io, exchange(server, std::move(req), timeout), [&r](std::exception_ptr e, HttpResult got) {
    r = e ? HttpResult{0, {}, "exception", false} : std::move(got);
  });
  io.run_for(timeout + std::chrono::seconds(1));  // the resolver is the only step the stream's timer does not bound
  if (!r.error.empty()) return r.error;
  if (r.status != 200) return r.status ? "HTTP status " + std::to_string(r.status) : "no answer";
  if (r.body.rfind("pong", 0) != 0) return "answer is not pong: " + core::safe_text(r.body, 40);
  return "";
}
}  // namespace rspamd

Rspamd::Rspamd(rspamd::Settings s, std::string hostname, std::chrono::milliseconds timeout)
    : s_(std::move(s)), hostname_(std::move(hostname)), timeout_(timeout) {}

asio::awaitable<Verdict> Rspamd::check(Phase, std::shared_ptr<const Context> ctx) {
  if (!ctx->message) co_return Verdict::failure("rspamd: no message");
  if (ctx->message->size() > s_.max_size) {
    rspamd::count("skipped_size");
    co_return Verdict{Action::Continue, std::nullopt, fmt::format("rspamd: not checked, {} octets > rspamd.max_size", ctx->message->size())};
  }
  auto req = rspamd::check_request(*ctx, s_, hostname_);
  std::string errors;
  for (const auto& server : s_.servers) {
    if (ctx->cancel->cancelled()) co_return Verdict::failure("rspamd: cancelled");
    auto slot = rspamd::InFlight::take(server, s_.max_connections);
    if (!slot) {
      core::count(core::labeled_counter("rspamd_server_failures_total", core::labels({{"server", server}})));
      errors += (errors.empty() ? "" : "; ") + server + fmt::format(": busy ({} exchanges in flight)", s_.max_connections);
      continue;
    }
    rspamd::HttpResult r = co_await rspamd::exchange(server, req, timeout_);
    if (r.error.empty() && r.status != 200) r.error = fmt::format("HTTP status {}", r.status);
    if (!r.error.empty()) {
      core::count(core::labeled_counter("rspamd_server_failures_total", core::labels({{"server", server}})));
      errors += (errors.empty() ? "" : "; ") + server + ": " + r.error;
      if (!r.connected) continue;  // connect failed: the next server
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
