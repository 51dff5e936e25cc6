// One Redis client per awaiting io_context, kept in a service of that context (thread_clients.h).
#include "redis/thread_clients.h"

#include <atomic>
#include <map>

#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/this_coro.hpp>

namespace redis {
namespace asio = boost::asio;
namespace {

// The clients of one io_context, by owner id. Touched only on the context's thread (eval, a posted
// removal) or when the context is destroyed (shutdown: nothing runs then).
class ContextClients : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;
  explicit ContextClients(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  std::shared_ptr<Client> find(uint64_t owner) const {
    auto it = clients_.find(owner);
    return it == clients_.end() ? nullptr : it->second;
  }
  void add(uint64_t owner, std::shared_ptr<Client> c) { clients_[owner] = std::move(c); }
  void remove(uint64_t owner) {
    auto it = clients_.find(owner);
    if (it == clients_.end()) return;
    it->second->stop();
    clients_.erase(it);
  }
  std::weak_ptr<void> alive() const { return alive_; }

 private:
  // The context is going: its handlers (which may hold a client) are destroyed after this, and so
  // are the clients; stop() is not called, as the context's other services are shut down already.
  void shutdown() override {
    alive_.reset();
    clients_.clear();
  }
  std::map<uint64_t, std::shared_ptr<Client>> clients_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

asio::execution_context::id ContextClients::id;

ContextClients& service_of(const asio::any_io_executor& ex) {
  return asio::use_service<ContextClients>(asio::query(ex, asio::execution::context));
}

uint64_t next_id() {
  static std::atomic<uint64_t> n{0};
  return ++n;
}

}  // namespace

ThreadClients::ThreadClients(ClientConfig cfg, std::string who) : id_(next_id()), shared_(std::move(cfg), std::move(who)) {}

ThreadClients::~ThreadClients() {
  std::lock_guard lock(mu_);
  for (const auto& p : placed_)
    if (auto alive = p.context_alive.lock())  // the context still runs (or will): its thread removes the client
      asio::post(p.ex, [ex = p.ex, owner = id_] { service_of(ex).remove(owner); });
}

std::shared_ptr<Client> ThreadClients::here(const asio::any_io_executor& ex) {
  ContextClients& svc = service_of(ex);
  if (auto c = svc.find(id_)) return c;
  auto c = Client::create(ex, shared_.config());
  c->start();
  svc.add(id_, c);
  std::lock_guard lock(mu_);
  placed_.push_back({ex, svc.alive()});
  return c;
}

asio::awaitable<Reply> ThreadClients::eval(const Script& s, std::vector<std::string> keys,
                                           std::vector<std::string> argv) {
  auto c = here(co_await asio::this_coro::executor);
  if (c->up()) co_return co_await redis::eval(std::move(c), s, std::move(keys), std::move(argv));
  co_return co_await shared_.eval(s, std::move(keys), std::move(argv));
}

}  // namespace redis
