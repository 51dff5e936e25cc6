// Beast HTTP/1.1 server: accept loop + one short coroutine per connection, all on one thread.
#include "ops/admin_server.h"

#include <utility>  // before Boost 1.74 Asio

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <thread>

#include "core/log.h"

namespace ops {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {
constexpr size_t kMaxConnections = 64;
constexpr size_t kMaxPerPeer = 16;
constexpr auto kRequestDeadline = std::chrono::seconds(2);  // connect to the end of the request
constexpr auto kDeadline = std::chrono::seconds(5);         // connect to the end of the answer

struct Answer {
  http::status status;
  std::string type, body;
};

Answer route(const std::string& target, const Probe& p, const Thresholds& t) {
  auto judged = [](const Judgement& j) {
    return Answer{j.ok ? http::status::ok : http::status::service_unavailable, "text/plain", j.text + "\n"};
  };
  if (target == "/livez") return judged(livez(p, t));
  if (target == "/readyz") return judged(readyz(p, t));
  if (target == "/health") return {http::status::ok, "application/json", health_json(p, t)};
  if (target == "/metrics") return {http::status::ok, "text/plain; version=0.0.4", metrics_text(p, t)};
  return {http::status::not_found, "text/plain", "not found\n"};
}
}  // namespace

struct AdminServer::Impl {
  std::string host;
  uint16_t port;
  Thresholds thresholds;
  ProbeFn probe;
  ReloadFn reload;
  asio::io_context ctx{1};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;
  // Connections being served, oldest first (admin thread only).
  struct Conn {
    beast::tcp_stream stream;
    asio::ip::address peer;
    bool waiting = true;  // for its request: may be shed
  };
  std::list<Conn> conns;

  // Closes the oldest connection still waiting for its request (of `peer` only, if given).
  bool shed_oldest_waiting(const asio::ip::address* peer) {
    for (auto& c : conns) {
      if (!c.waiting || (peer && c.peer != *peer)) continue;
      c.waiting = false;
      c.stream.cancel();  // its read ends; serve() closes it
      core::log().info("admin: shed an idle connection from {} (connection limit)", c.peer.to_string());
      return true;
    }
    return false;
  }

  asio::awaitable<void> serve(std::list<Conn>::iterator it) {
    beast::tcp_stream& stream = it->stream;
    beast::flat_buffer buf(8192);
    http::request<http::string_body> req;
    http::request_parser<http::string_body> parser;
    parser.body_limit(4096);
    parser.header_limit(8192);
    boost::system::error_code ec;
    stream.expires_after(kRequestDeadline);
    co_await http::async_read(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
    it->waiting = false;
    stream.expires_after(kDeadline - kRequestDeadline);
    if (!ec) {
      req = parser.release();
      Answer a = req.method() == http::verb::get || req.method() == http::verb::head
                     ? route(std::string(req.target()), probe(), thresholds)
                     : Answer{http::status::method_not_allowed, "text/plain", "GET, or POST /reload\n"};
      if (req.method() == http::verb::post && req.target() == "/reload") a = do_reload(stream.socket());
      http::response<http::string_body> res{a.status, req.version()};
      res.set(http::field::server, "mxfront");
      res.set(http::field::content_type, a.type);
      res.set(http::field::cache_control, "no-store");
      res.keep_alive(false);
      if (req.method() != http::verb::head) res.body() = std::move(a.body);
      res.prepare_payload();
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.close();
    conns.erase(it);
  }

  // Runs the server's reload (which blocks this thread until the main thread has done it).
  Answer do_reload(tcp::socket& s) {
    boost::system::error_code ec;
    auto peer = s.remote_endpoint(ec);
    if (ec || !peer.address().is_loopback()) return {http::status::forbidden, "text/plain", "reload only from localhost\n"};
    if (!reload) return {http::status::not_found, "text/plain", "not found\n"};
    std::string err = reload();
    if (!err.empty()) return {http::status::conflict, "text/plain", "reload refused, old config kept: " + err + "\n"};
    return {http::status::ok, "text/plain", "reloaded\n"};
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket s = co_await acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      if (ec) continue;
      auto peer = s.remote_endpoint(ec).address();
      if (ec) continue;
      size_t from_peer = std::count_if(conns.begin(), conns.end(), [&](const Conn& c) { return c.peer == peer; });
      bool room = from_peer < kMaxPerPeer ? conns.size() < kMaxConnections || shed_oldest_waiting(nullptr)
                                          : shed_oldest_waiting(&peer);
      if (!room) {
        s.close(ec);
        continue;
      }
      conns.push_back(Conn{beast::tcp_stream(std::move(s)), peer});
      asio::co_spawn(ctx, serve(std::prev(conns.end())), asio::detached);
    }
  }
};

AdminServer::AdminServer(std::string host, uint16_t port, Thresholds t, ProbeFn probe, ReloadFn reload)
    : impl_(std::make_unique<Impl>()) {
  impl_->reload = std::move(reload);
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->thresholds = t;
  impl_->probe = std::move(probe);
}

AdminServer::~AdminServer() { stop(); }

bool AdminServer::start(std::string& error) {
  try {
    tcp::endpoint ep(asio::ip::make_address(impl_->host), impl_->port);
    impl_->acceptor = std::make_unique<tcp::acceptor>(impl_->ctx);
    impl_->acceptor->open(ep.protocol());
    impl_->acceptor->set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor->bind(ep);
    impl_->acceptor->listen();
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  asio::co_spawn(impl_->ctx, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "admin-http");
    impl_->ctx.run();
  });
  return true;
}

void AdminServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->ctx.stop();
  impl_->thread.join();
}

}  // namespace ops
