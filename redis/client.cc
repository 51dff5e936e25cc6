// redis::Client: connect (TCP, TLS), handshake, pipelined commands answered in order with a
// deadline and a bound, drop and reconnect (client.h). hiredis only formats and parses.
#include "redis/client.h"

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <deque>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

namespace redis {
namespace {
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::Integer, out.integer = r->integer; break;
    case REDIS_REPLY_STRING: out.type = Reply::Type::String, out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::Status, out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::Error, out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::Array;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default: out.type = Reply::Type::Nil;
  }
  return out;
}

// A message pushed to a subscribed connection: ["message", channel, payload], or the
// confirmation of a (P)SUBSCRIBE / UNSUBSCRIBE.
bool is_push(const Reply& r) {
  if (r.type != Reply::Type::Array || r.elements.size() < 3 || r.elements[0].type != Reply::Type::String) return false;
  const std::string& kind = r.elements[0].str;
  return kind == "message" || kind == "pmessage" || kind == "subscribe" || kind == "psubscribe" ||
         kind == "unsubscribe" || kind == "punsubscribe";
}

// The name checked in the server's certificate: an IP address as an IP address (no SNI: RFC 6066
// allows only names), else a DNS name, also sent as SNI.
bool verify_name(SSL* ssl, const std::string& name) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  boost::system::error_code ec;
  (void)asio::ip::make_address(name, ec);
  if (!ec) return X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 && X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0) == 1;
}

std::string lost(const boost::system::error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
    return "connection lost: server closed the connection";
  return "connection lost: " + ec.message();
}

}  // namespace

std::shared_ptr<asio::ssl::context> tls_context(const std::string& ca_file, const std::string& cert_file,
                                                const std::string& key_file, std::string& err) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(asio::ssl::verify_peer);
  boost::system::error_code ec;
  if (ca_file.empty()) ctx->set_default_verify_paths(ec);
  else ctx->load_verify_file(ca_file, ec);
  if (ec) {
    err = ca_file.empty() ? "tls_ca_file: cannot load the system's default CA paths: " + ec.message()
                          : "tls_ca_file: cannot load '" + ca_file + "': " + ec.message();
    return nullptr;
  }
  if (cert_file.empty() != key_file.empty()) {
    err = "tls_cert_file and tls_key_file go together (both or neither)";
    return nullptr;
  }
  if (cert_file.empty()) return ctx;
  if (ctx->use_certificate_chain_file(cert_file, ec), ec) {
    err = "tls_cert_file: cannot load '" + cert_file + "': " + ec.message();
    return nullptr;
  }
  if (ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec), ec) {
    err = "tls_key_file: cannot load '" + key_file + "': " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    err = "tls_key_file: '" + key_file + "' is not the key of '" + cert_file + "'";
    return nullptr;
  }
  return ctx;
}

// One command sent: answered by its reply (FIFO), by the deadline, or when the connection goes.
struct Client::Pending {
  Done done;  // empty once answered
  bool internal = false;
  Clock::time_point deadline = Clock::time_point::max();  // internal: the connect timer's
};

// One connection and everything it owns: the socket (plain or inside the TLS stream), the reader,
// the output not yet written and the commands not yet answered. Closed when dropped; its
// handlers hold it and end at once when it is no longer the client's conn_.
struct Client::Conn {
  Conn(asio::any_io_executor ex, asio::ssl::context* tls) : resolver(ex), deadline(ex) {
    if (tls) ssl.emplace(ex, *tls);
    else plain.emplace(ex);
  }
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  tcp::socket& socket() { return ssl ? ssl->next_layer() : *plain; }
  template <class F>
  void with_stream(F f) {
    if (ssl) f(*ssl);
    else f(*plain);
  }
  void close() {
    boost::system::error_code ec;
    resolver.cancel();
    deadline.cancel();
    socket().close(ec);
  }

  std::optional<tcp::socket> plain;
  std::optional<asio::ssl::stream<tcp::socket>> ssl;
  tcp::resolver resolver;
  asio::steady_timer deadline;  // armed for the oldest command's deadline
  bool deadline_armed = false, open = false, writing = false, flush_posted = false, subscribed = false;
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader{redisReaderCreate(), &redisReaderFree};
  std::string out, outgoing;  // formatted commands not yet written; being written
  std::array<char, 16384> in{};
  std::deque<Pending> pending;
};

std::shared_ptr<Client> Client::create(asio::any_io_executor ex, ClientConfig cfg,
                                       std::function<void(bool, const std::string&)> on_state) {
  return std::shared_ptr<Client>(new Client(ex, std::move(cfg), std::move(on_state)));
}

Client::Client(asio::any_io_executor ex, ClientConfig cfg, std::function<void(bool, const std::string&)> on_state)
    : ex_(ex), cfg_(std::move(cfg)), on_state_(std::move(on_state)), reconnect_timer_(ex), connect_timer_(ex),
      backoff_(cfg_.reconnect_min) {}

Client::~Client() {
  stopped_ = true;
  if (auto c = std::move(conn_)) {
    c->close();
    for (auto& p : c->pending)  // the client is being destroyed: answer at once
      if (p.done) std::exchange(p.done, nullptr)(Reply::make_error("redis: connection lost"));
  }
}

void Client::start() {
  stopped_ = false;
  if (!cfg_.sentinels.empty() && sentinels_.empty())
    for (const auto& [host, port] : cfg_.sentinels) {
      ClientConfig sc;
      sc.host = host;
      sc.port = port;
      sc.password = cfg_.sentinel_password;
      sc.timeout = cfg_.timeout;
      sc.max_inflight = 16;
      sc.reconnect_min = cfg_.reconnect_min;
      sc.reconnect_max = cfg_.reconnect_max;
      sc.tls = cfg_.tls;
      sc.tls_server_name = cfg_.tls_server_name;
      auto c = Client::create(ex_, sc);
      c->start();
      sentinels_.push_back(std::move(c));
    }
  connect();
}

void Client::stop() {
  stopped_ = true;
  reconnect_timer_.cancel();
  connect_timer_.cancel();
  for (auto& s : sentinels_) s->stop();
  if (conn_) drop("stopped");
}

std::string Client::server() const {
  std::lock_guard lk(server_mu_);
  return cfg_.host + ":" + std::to_string(cfg_.port);
}

// Reported at each change, and the first state too (a Redis down from the start says why).
void Client::set_up(bool up, const std::string& why) {
  if (up_.exchange(up) == up && state_known_) return;
  state_known_ = true;
  if (on_state_) on_state_(up, why);
}

void Client::connect() {
  reconnect_pending_ = false;
  if (stopped_ || conn_) return;
  if (sentinels_.empty()) return connect_to_server();
  discover(0);
}

// SENTINEL get-master-addr-by-name answers [host, port], or nil for a name it does not monitor.
void Client::discover(size_t i) {
  if (stopped_ || conn_) return;
  if (i >= sentinels_.size()) {
    set_up(false, "no sentinel answered with the address of master '" + cfg_.master_name + "'");
    return schedule_reconnect();
  }
  sentinels_[i]->submit({"SENTINEL", "get-master-addr-by-name", cfg_.master_name}, [w = weak_from_this(), i](Reply r) {
    auto self = w.lock();
    if (!self) return;
    asio::dispatch(self->ex_, [self, i, r = std::move(r)] {
      unsigned long port = 0;
      bool ok = r.type == Reply::Type::Array && r.elements.size() == 2 && r.elements[0].type == Reply::Type::String &&
                r.elements[1].type == Reply::Type::String && !r.elements[0].str.empty();
      if (ok) {
        try {
          port = std::stoul(r.elements[1].str);
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (!ok || port == 0 || port > 65535) return self->discover(i + 1);
      {
        std::lock_guard lk(self->server_mu_);
        self->cfg_.host = r.elements[0].str;
        self->cfg_.port = static_cast<uint16_t>(port);
      }
      self->connect_to_server();
    });
  });
}

// TCP connect (after resolving a name), TLS handshake, AUTH/SELECT/ROLE/PING: all within the
// connect timer.
void Client::connect_to_server() {
  if (stopped_ || conn_) return;
  auto c = std::make_shared<Conn>(ex_, cfg_.tls.get());
  conn_ = c;
  handshaking_ = true;
  connect_timer_.expires_after(cfg_.timeout * kConnectTimeoutFactor);
  connect_timer_.async_wait([w = weak_from_this(), c](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self || self->conn_ != c || !self->handshaking_) return;
    self->drop("connect timed out");
  });
  ++stats_.connects;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(cfg_.host, ec);
  if (!ec) return open(c, {tcp::endpoint(addr, cfg_.port)});
  c->resolver.async_resolve(cfg_.host, std::to_string(cfg_.port),
                            [w = weak_from_this(), c](boost::system::error_code ec, tcp::resolver::results_type rs) {
                              auto self = w.lock();
                              if (!self || self->conn_ != c) return;
                              if (ec) return self->drop("connect: " + self->cfg_.host + ": " + ec.message());
                              self->open(c, {rs.begin(), rs.end()});
                            });
}

void Client::open(const std::shared_ptr<Conn>& c, const std::vector<tcp::endpoint>& eps) {
  asio::async_connect(c->socket(), eps, [w = weak_from_this(), c](boost::system::error_code ec, const tcp::endpoint&) {
    auto self = w.lock();
    if (!self || self->conn_ != c) return;
    if (ec) return self->drop("connect: " + ec.message());
    c->socket().set_option(tcp::no_delay(true), ec);
    if (!c->ssl) return self->opened(c);
    const std::string& name = self->cfg_.tls_server_name.empty() ? self->cfg_.host : self->cfg_.tls_server_name;
    if (!verify_name(c->ssl->native_handle(), name)) return self->drop("TLS: cannot verify the name '" + name + "'");
    c->ssl->async_handshake(asio::ssl::stream_base::client, [w, c](boost::system::error_code ec) {
      auto self = w.lock();
      if (!self || self->conn_ != c) return;
      if (!ec) return self->opened(c);
      long v = SSL_get_verify_result(c->ssl->native_handle());
      if (v != X509_V_OK)
        return self->drop(std::string("TLS handshake: certificate verification failed: ") +
                          X509_verify_cert_error_string(v));
      self->drop("TLS handshake: " + ec.message());
    });
  });
}

void Client::opened(const std::shared_ptr<Conn>& c) {
  c->open = true;
  read(c);
  handshake();
}

// AUTH and SELECT, then PING: up once the PING answers with no error before it.
void Client::handshake() {
  auto failed = std::make_shared<std::string>();
  auto expect_ok = [this, failed](const char* what) {
    return [failed, what](Reply r) {
      if (r.error() && failed->empty()) *failed = std::string(what) + ": " + r.str;
    };
  };
  if (!cfg_.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!cfg_.username.empty()) auth.push_back(cfg_.username);
    auth.push_back(cfg_.password);
    send(std::move(auth), expect_ok("AUTH"), true);
  }
  if (cfg_.db) send({"SELECT", std::to_string(cfg_.db)}, expect_ok("SELECT"), true);
  if (!sentinels_.empty())  // a sentinel's answer may be stale (a failover under way)
    send({"ROLE"}, [failed](Reply r) {
      bool master = r.type == Reply::Type::Array && !r.elements.empty() && r.elements[0].str == "master";
      if (!master && failed->empty())
        *failed = "ROLE: not a master (" + (r.error() ? r.str : r.elements.empty() ? std::string("?") : r.elements[0].str) + ")";
    }, true);
  send({"PING"}, [this, failed, c = conn_, w = weak_from_this()](Reply r) {
    auto self = w.lock();
    if (!self || conn_ != c) return;
    if (r.error() && failed->empty()) *failed = "PING: " + r.str;
    handshaking_ = false;
    connect_timer_.cancel();
    if (!failed->empty()) return drop(*failed);
    backoff_ = cfg_.reconnect_min;
    if (!channel_.empty()) send_subscribe();
    set_up(true, "connected to " + cfg_.host + ":" + std::to_string(cfg_.port));
  }, true);
}

void Client::subscribe(std::string channel, std::function<void(const std::string&)> on_message) {
  channel_ = std::move(channel);
  on_message_ = std::move(on_message);
}

// The channel's messages are pushed (on_reply): not a pending command, no timeout.
void Client::send_subscribe() {
  if (!write({"SUBSCRIBE", channel_})) return drop("SUBSCRIBE not sent");
  conn_->subscribed = true;
}

// Closes the connection now (every command sent answers with an error) and plans the next one.
void Client::drop(const std::string& why) {
  auto c = std::move(conn_);
  conn_ = nullptr;
  handshaking_ = false;
  connect_timer_.cancel();
  if (c) {
    if (c->open) ++stats_.drops;
    c->close();
    inflight_ = 0;
    for (auto& p : c->pending)
      if (p.done) {
        ++stats_.errors;
        asio::post(ex_, [d = std::move(p.done)] { d(Reply::make_error("redis: connection lost")); });
      }
    c->pending.clear();
  }
  set_up(false, why);
  schedule_reconnect();
}

void Client::schedule_reconnect() {
  if (stopped_ || reconnect_pending_) return;
  reconnect_pending_ = true;
  reconnect_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, cfg_.reconnect_max);
  reconnect_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (!self) return;
    self->reconnect_pending_ = false;
    if (!ec) self->connect();
  });
}

void Client::submit(std::vector<std::string> args, Done done) {
  asio::dispatch(ex_, [self = shared_from_this(), args = std::move(args), done = std::move(done)]() mutable {
    self->send(std::move(args), std::move(done), false);
  });
}

// On the client's thread. Every answer is posted, never run inside the client.
void Client::send(std::vector<std::string> args, Done done, bool internal) {
  auto answer = [this](Done& d, Reply r) {
    if (r.error()) ++stats_.errors;
    asio::post(ex_, [d = std::move(d), r = std::move(r)]() mutable { d(std::move(r)); });
  };
  if (!internal) {
    ++stats_.commands;
    if (!conn_ || handshaking_) return answer(done, Reply::make_error("redis not connected"));
    if (inflight_ >= cfg_.max_inflight) {
      ++stats_.rejected;
      return answer(done, Reply::make_error("redis: too many commands in flight"));
    }
  }
  if (!conn_ || !write(args)) return answer(done, Reply::make_error("redis: command not sent"));
  ++inflight_;
  conn_->pending.push_back({std::move(done), internal, internal ? Clock::time_point::max() : Clock::now() + cfg_.timeout});
  if (!internal) watch_deadlines(conn_);
}

// Appends the command to the output; written with whatever else is sent before the flush runs.
bool Client::write(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
  char* formatted = nullptr;
  int n = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (n < 0 || !formatted) return false;
  conn_->out.append(formatted, static_cast<size_t>(n));
  redisFreeCommand(formatted);
  if (!conn_->writing && !conn_->flush_posted) {
    conn_->flush_posted = true;
    asio::post(ex_, [w = weak_from_this(), c = conn_] {
      c->flush_posted = false;
      if (auto self = w.lock(); self && self->conn_ == c) self->flush(c);
    });
  }
  return true;
}

void Client::flush(const std::shared_ptr<Conn>& c) {
  if (c->writing || c->out.empty()) return;
  c->writing = true;
  c->outgoing.swap(c->out);
  c->out.clear();
  c->with_stream([&](auto& stream) {
    asio::async_write(stream, asio::buffer(c->outgoing), [w = weak_from_this(), c](boost::system::error_code ec, size_t) {
      c->writing = false;
      c->outgoing.clear();
      auto self = w.lock();
      if (!self || self->conn_ != c) return;
      if (ec) return self->drop(lost(ec));
      self->flush(c);
    });
  });
}

// Reads while the connection is the client's: every complete reply answers the oldest command.
void Client::read(const std::shared_ptr<Conn>& c) {
  c->with_stream([&](auto& stream) {
    stream.async_read_some(asio::buffer(c->in), [w = weak_from_this(), c](boost::system::error_code ec, size_t n) {
      auto self = w.lock();
      if (!self || self->conn_ != c) return;
      if (ec) return self->drop(lost(ec));
      redisReader* reader = c->reader.get();
      if (redisReaderFeed(reader, c->in.data(), n) != REDIS_OK) return self->drop(std::string("protocol error: ") + reader->errstr);
      for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader, &raw) != REDIS_OK)
          return self->drop(std::string("protocol error: ") + reader->errstr);
        if (!raw) break;
        Reply r = convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        if (!self->on_reply(std::move(r))) return self->drop("protocol error: a reply to no command");
      }
      self->read(c);
    });
  });
}

bool Client::on_reply(Reply r) {
  if (conn_->subscribed && is_push(r)) {
    if (r.elements[0].str == "message" && r.elements[2].type == Reply::Type::String && on_message_)
      asio::post(ex_, [w = weak_from_this(), m = std::move(r.elements[2].str)] {
        if (auto s = w.lock(); s && s->on_message_) s->on_message_(m);
      });
    return true;
  }
  if (conn_->pending.empty()) return false;
  Pending p = std::move(conn_->pending.front());
  conn_->pending.pop_front();
  if (inflight_) --inflight_;
  if (r.error()) ++stats_.errors;
  if (p.done) asio::post(ex_, [d = std::move(p.done), r = std::move(r)]() mutable { d(std::move(r)); });
  return true;
}

// One timer per connection, for the oldest command's deadline (the commands are answered in
// order, so it is the first to expire). A command past it answers "redis: timeout" and the
// connection is dropped: a server that does not answer in time holds its queue; its late reply
// is never taken for another command's.
void Client::watch_deadlines(const std::shared_ptr<Conn>& c) {
  if (c->deadline_armed) return;
  auto oldest = std::find_if(c->pending.begin(), c->pending.end(), [](const Pending& p) { return !p.internal; });
  if (oldest == c->pending.end()) return;
  c->deadline_armed = true;
  c->deadline.expires_at(oldest->deadline);
  c->deadline.async_wait([w = weak_from_this(), c](boost::system::error_code ec) {
    c->deadline_armed = false;
    auto self = w.lock();
    if (ec || !self || self->conn_ != c) return;
    auto oldest = std::find_if(c->pending.begin(), c->pending.end(), [](const Pending& p) { return !p.internal; });
    if (oldest == c->pending.end()) return;
    if (oldest->deadline > Clock::now()) return self->watch_deadlines(c);
    ++self->stats_.timeouts;
    ++self->stats_.errors;
    asio::post(self->ex_, [d = std::exchange(oldest->done, nullptr)] { d(Reply::make_error("redis: timeout")); });
    self->drop("command timed out");
  });
}

}  // namespace redis
