// A Redis client on its own thread (owned_client.h).
#include "redis/owned_client.h"

#include <future>

#include <boost/asio/post.hpp>

#include "core/log.h"

namespace redis {

OwnedClient::OwnedClient(ClientConfig cfg, std::string who) : cfg_(std::move(cfg)), guard_(io_.get_executor()) {
  client_ = Client::create(io_.get_executor(), cfg_, [this, who](bool up, const std::string& why) {
    {
      std::lock_guard lk(why_mu_);
      why_ = up ? "" : why;
    }
    if (up) core::log().info("{}: redis {}:{} connected", who, cfg_.host, cfg_.port);
    else core::log().warn("{}: redis {}:{} down ({})", who, cfg_.host, cfg_.port, why);
  });
  boost::asio::post(io_, [c = client_] { c->start(); });
  thread_ = std::thread([this] { io_.run(); });
}

OwnedClient::~OwnedClient() {
  std::promise<void> stopped;
  boost::asio::post(io_, [this, &stopped] {
    client_->stop();
    client_.reset();
    stopped.set_value();
  });
  stopped.get_future().wait();
  guard_.reset();
  io_.stop();
  thread_.join();
}

boost::asio::awaitable<Reply> eval(std::shared_ptr<Client> client, const Script& s, std::vector<std::string> keys,
                                   std::vector<std::string> argv) {
  Reply r = co_await client->command(s.args(true, keys, argv));
  if (r.error() && r.str.rfind("NOSCRIPT", 0) == 0) r = co_await client->command(s.args(false, keys, argv));
  co_return r;
}

boost::asio::awaitable<Reply> OwnedClient::eval(const Script& s, std::vector<std::string> keys,
                                                std::vector<std::string> argv) {
  co_return co_await redis::eval(client_, s, std::move(keys), std::move(argv));
}

Reply OwnedClient::call(std::vector<std::string> args) {
  auto answer = std::make_shared<std::promise<Reply>>();
  std::future<Reply> f = answer->get_future();
  client_->submit(std::move(args), [answer](Reply r) { answer->set_value(std::move(r)); });
  // The client answers within its timeout; the margin only guards against a stalled client thread.
  if (f.wait_for(cfg_.timeout + std::chrono::milliseconds(50)) != std::future_status::ready)
    return Reply::make_error("timeout (no answer from the client)");
  return f.get();
}

void OwnedClient::send(std::vector<std::string> args, std::function<void(Reply)> done) {
  client_->submit(std::move(args), [done = std::move(done)](Reply r) {
    if (done) done(std::move(r));
  });
}

bool OwnedClient::up() const { return client_->up(); }

std::string OwnedClient::down_reason() const {
  if (client_->up()) return "";
  std::lock_guard lk(why_mu_);
  return why_.empty() ? "not connected" : why_;
}

const char* fallback_reason(const std::string& error) {
  if (error.find("timeout") != std::string::npos) return "timeout";
  if (error.find("not connected") != std::string::npos || error.find("connection lost") != std::string::npos) return "down";
  if (error.find("in flight") != std::string::npos) return "inflight";
  return "error";
}

}  // namespace redis
