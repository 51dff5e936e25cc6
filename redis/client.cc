// redis::Client: connect, handshake, commands with timeouts and a bound, drop and reconnect (client.h).
#include "redis/client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>

#include "redis/asio_adapter.h"

namespace redis {
namespace {

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

}  // namespace

// One command sent to hiredis: hiredis holds a shared_ptr to it until it calls back (always, with
// a null reply when the context goes); `done` is emptied by whoever answers first.
struct Client::Pending {
  Done done;
  asio::steady_timer timer;
  bool internal = false;
  bool subscription = false;  // called for every message, then once with a null reply
  explicit Pending(asio::any_io_executor ex) : timer(ex) {}
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
  if (ctx_) {
    auto* c = ctx_;
    ctx_ = nullptr;
    c->data = nullptr;  // no callbacks into a dying client
    redisAsyncFree(c);
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
  if (ctx_) drop("stopped");
}

std::string Client::server() const {
  std::lock_guard lk(server_mu_);
  return cfg_.host + ":" + std::to_string(cfg_.port);
}

void Client::set_up(bool up, const std::string& why) {
  if (up_.exchange(up) == up) return;
  if (on_state_) on_state_(up, why);
}

void Client::connect() {
  reconnect_pending_ = false;
  if (stopped_ || ctx_) return;
  if (sentinels_.empty()) return connect_to_server();
  discover(0);
}

// SENTINEL get-master-addr-by-name answers [host, port], or nil for a name it does not monitor.
void Client::discover(size_t i) {
  if (stopped_ || ctx_) return;
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

void Client::connect_to_server() {
  if (stopped_ || ctx_) return;
  redisAsyncContext* c = redisAsyncConnect(cfg_.host.c_str(), cfg_.port);
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisAsyncFree(c);
    set_up(false, "connect: " + why);
    schedule_reconnect();
    return;
  }
  ctx_ = c;
  c->data = this;
  watch_ = attach(c, ex_);
  redisAsyncSetConnectCallback(c, &Client::on_connect);
  redisAsyncSetDisconnectCallback(c, &Client::on_disconnect);
  handshaking_ = true;
  connect_timer_.expires_after(cfg_.timeout * kConnectTimeoutFactor);
  connect_timer_.async_wait([w = weak_from_this(), c](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self || self->ctx_ != c || !self->handshaking_) return;
    self->drop("connect timed out");
  });
  ++stats_.connects;
}

void Client::on_connect(const redisAsyncContext* c, int status) {
  auto* self = static_cast<Client*>(c->data);
  if (!self || self->ctx_ != c) return;
  if (status != REDIS_OK) {  // hiredis frees the context after this call
    std::string why = std::string("connect: ") + c->errstr;
    self->ctx_ = nullptr;
    self->handshaking_ = false;
    self->connect_timer_.cancel();
    self->set_up(false, why);
    self->schedule_reconnect();
    return;
  }
  self->handshake();
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
  auto* c = ctx_;
  send({"PING"}, [this, failed, c, w = weak_from_this()](Reply r) {
    auto self = w.lock();
    if (!self || ctx_ != c) return;
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

// hiredis keeps the callback for the channel's messages; not counted in flight, no timeout.
void Client::send_subscribe() {
  auto p = std::make_shared<Pending>(ex_);
  p->subscription = true;
  auto* hold = new std::shared_ptr<Pending>(p);
  const char* argv[] = {"SUBSCRIBE", channel_.c_str()};
  size_t lens[] = {9, channel_.size()};
  if (redisAsyncCommandArgv(ctx_, &Client::on_reply, hold, 2, argv, lens) != REDIS_OK) {
    delete hold;
    drop("SUBSCRIBE not sent");
  }
}

void Client::on_disconnect(const redisAsyncContext* c, int status) {
  auto* self = static_cast<Client*>(c->data);
  if (!self || self->ctx_ != c) return;  // dropped by us: already handled
  self->ctx_ = nullptr;
  self->handshaking_ = false;
  self->connect_timer_.cancel();
  ++self->stats_.drops;
  self->set_up(false, std::string("connection lost") + (c->errstr[0] ? std::string(": ") + c->errstr : ""));
  self->schedule_reconnect();
}

// Closes the connection now (all sent commands answer with an error) and plans the next one.
void Client::drop(const std::string& why) {
  auto* c = ctx_;
  ctx_ = nullptr;
  handshaking_ = false;
  connect_timer_.cancel();
  if (c) {
    ++stats_.drops;
    redisAsyncFree(c);  // calls every pending callback with a null reply (they post their answers)
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

// On the client's thread. Every answer is posted, never run inside hiredis.
void Client::send(std::vector<std::string> args, Done done, bool internal) {
  auto answer = [this](Done& d, Reply r) {
    if (r.error()) ++stats_.errors;
    asio::post(ex_, [d = std::move(d), r = std::move(r)]() mutable { d(std::move(r)); });
  };
  if (!internal) {
    ++stats_.commands;
    if (!ctx_ || handshaking_) return answer(done, Reply::make_error("redis not connected"));
    if (inflight_ >= cfg_.max_inflight) {
      ++stats_.rejected;
      return answer(done, Reply::make_error("redis: too many commands in flight"));
    }
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
  auto p = std::make_shared<Pending>(ex_);
  p->done = std::move(done);
  p->internal = internal;
  auto* hold = new std::shared_ptr<Pending>(p);
  if (redisAsyncCommandArgv(ctx_, &Client::on_reply, hold, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
      REDIS_OK) {
    delete hold;
    return answer(p->done, Reply::make_error("redis: command not sent"));
  }
  ++inflight_;
  if (internal) return;  // the handshake has its own timer
  p->timer.expires_after(cfg_.timeout);
  p->timer.async_wait([w = weak_from_this(), wp = std::weak_ptr<Pending>(p)](boost::system::error_code ec) {
    auto self = w.lock();
    auto pending = wp.lock();
    if (ec || !self || !pending || !pending->done) return;
    ++self->stats_.timeouts;
    ++self->stats_.errors;
    auto d = std::move(pending->done);
    pending->done = nullptr;
    asio::post(self->ex_, [d = std::move(d)] { d(Reply::make_error("redis: timeout")); });
    // A server that does not answer in time holds its connection's queue: start afresh.
    self->drop("command timed out");
  });
}

void Client::on_reply(redisAsyncContext* c, void* reply, void* privdata) {
  auto* self = static_cast<Client*>(c->data);
  if ((*static_cast<std::shared_ptr<Pending>*>(privdata))->subscription) {
    if (!reply) {
      delete static_cast<std::shared_ptr<Pending>*>(privdata);
      return;
    }
    auto* r = static_cast<redisReply*>(reply);
    if (self && self->on_message_ && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && std::string(r->element[0]->str, r->element[0]->len) == "message" &&
        r->element[2]->type == REDIS_REPLY_STRING)
      asio::post(self->ex_, [w = self->weak_from_this(), m = std::string(r->element[2]->str, r->element[2]->len)] {
        if (auto s = w.lock(); s && s->on_message_) s->on_message_(m);
      });
    return;
  }
  std::unique_ptr<std::shared_ptr<Pending>> hold(static_cast<std::shared_ptr<Pending>*>(privdata));
  auto& p = *hold;
  if (self && self->inflight_) --self->inflight_;
  p->timer.cancel();
  if (!p->done) return;
  Reply r = reply ? convert(static_cast<redisReply*>(reply)) : Reply::make_error("redis: connection lost");
  auto d = std::move(p->done);
  p->done = nullptr;
  if (r.error() && self) ++self->stats_.errors;
  if (self)
    asio::post(self->ex_, [d = std::move(d), r = std::move(r)]() mutable { d(std::move(r)); });
  else
    d(std::move(r));  // the client is being destroyed: answer at once
}

}  // namespace redis
