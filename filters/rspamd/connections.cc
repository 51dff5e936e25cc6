// Idle keep-alive connections per io_context and the bound on exchanges in flight per server
// (connections.h).
#include "filters/rspamd/connections.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace filters::rspamd {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

asio::execution_context::id IdlePool::id;

IdlePool::IdlePool(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

IdlePool& IdlePool::of(const asio::any_io_executor& ex) {
  return asio::use_service<IdlePool>(asio::query(ex, asio::execution::context));
}

std::optional<tcp::socket> IdlePool::take(const std::string& server) {
  auto it = idle_.find(server);
  if (it == idle_.end() || it->second.empty()) return std::nullopt;
  Entry e = std::move(it->second.back());  // the freshest: the least likely to be closed by the peer
  it->second.pop_back();
  e.timer->cancel();
  error_code ec;
  e.sock->cancel(ec);  // its wait completes with operation_aborted and finds no entry
  return std::move(*e.sock);
}

void IdlePool::put(const std::string& server, tcp::socket sock, std::chrono::milliseconds idle_timeout,
                   size_t max_idle) {
  auto& list = idle_[server];
  while (!list.empty() && list.size() >= max_idle) list.pop_front();  // closed as it goes
  if (max_idle == 0) return;
  Entry e{++next_, std::make_unique<tcp::socket>(std::move(sock)), nullptr};
  e.timer = std::make_unique<asio::steady_timer>(e.sock->get_executor(), idle_timeout);
  // The handlers name the entry, never own it: one that runs after the entry was taken or dropped
  // finds nothing; one destroyed unrun (the context going) touches nothing.
  e.timer->async_wait([this, server, id = e.id](error_code ec) {
    if (!ec) drop(server, id);
  });
  e.sock->async_wait(tcp::socket::wait_read, [this, server, id = e.id](error_code ec) {
    if (ec != asio::error::operation_aborted) drop(server, id);  // EOF, a reset or stray bytes
  });
  list.push_back(std::move(e));
}

void IdlePool::drop(const std::string& server, uint64_t entry) {
  auto it = idle_.find(server);
  if (it == idle_.end()) return;
  auto& list = it->second;
  auto e = std::find_if(list.begin(), list.end(), [entry](const Entry& x) { return x.id == entry; });
  if (e != list.end()) list.erase(e);  // the socket closes, the timer's wait is cancelled
}

size_t IdlePool::idle(const std::string& server) const {
  auto it = idle_.find(server);
  return it == idle_.end() ? 0 : it->second.size();
}

// A coroutine waiting for a slot: granted (under the mutex) by release(), which then wakes it on
// its own executor.
struct InFlight::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool granted = false;
};

std::shared_ptr<InFlight> InFlight::of(const std::string& server) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<InFlight>> servers;
  std::lock_guard lock(mu);
  auto& s = servers[server];
  if (!s) s = std::make_shared<InFlight>();
  return s;
}

InFlight::Slot InFlight::try_take(const std::shared_ptr<InFlight>& self, size_t max) {
  std::lock_guard lock(self->mu_);
  if (self->n_ >= max || !self->waiters_.empty()) return {};
  ++self->n_;
  return Slot(self);
}

asio::awaitable<InFlight::Slot> InFlight::wait(std::shared_ptr<InFlight> self, size_t max,
                                               std::chrono::steady_clock::time_point deadline) {
  auto w = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  {
    std::lock_guard lock(self->mu_);
    if (self->n_ < max && self->waiters_.empty()) {
      ++self->n_;
      co_return Slot(self);
    }
    self->waiters_.push_back(w);
  }
  // Leaves the queue however the wait ends: resumed, or destroyed unresumed with its context (a
  // slot granted meanwhile passes on), so that release() never posts to a context that is gone.
  struct Leave {
    std::shared_ptr<InFlight> self;
    std::shared_ptr<Waiter> w;
    bool granted() {
      std::unique_lock lock(self->mu_);
      if (w->granted) return true;
      self->waiters_.erase(std::find(self->waiters_.begin(), self->waiters_.end(), w));
      return false;
    }
    ~Leave() {
      if (w && granted()) self->release();
    }
  } leave{self, w};
  w->timer.expires_at(deadline);
  error_code ec;
  co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  bool got = leave.granted();
  leave.w.reset();
  co_return got ? Slot(self) : Slot();
}

void InFlight::release() {
  std::lock_guard lock(mu_);
  if (waiters_.empty()) {
    --n_;
    return;
  }
  auto w = std::move(waiters_.front());  // the slot passes to it: n_ stays
  waiters_.pop_front();
  w->granted = true;
  asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
}

size_t InFlight::in_flight() const {
  std::lock_guard lock(mu_);
  return n_;
}

}  // namespace filters::rspamd
