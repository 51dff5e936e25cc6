// BlockingPool: one io_context run by N named threads; admission control in run() (header).
#include "net/blocking_pool.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "core/log.h"

namespace net {
namespace {

// Which pool (if any) the current thread belongs to, and its index there.
thread_local const BlockingPool* t_pool = nullptr;
thread_local size_t t_index = 0;

void block_async_signals() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

void set_thread_name(const std::string& pool, size_t index) {
  std::string n = pool.substr(0, 11) + "-" + std::to_string(index);
  pthread_setname_np(pthread_self(), n.substr(0, 15).c_str());
}

}  // namespace

BlockingPool::BlockingPool(std::string name, size_t threads, size_t queue_limit)
    : name_(std::move(name)), queue_limit_(queue_limit), work_(ctx_.get_executor()) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { thread_main(i); });
}

BlockingPool::~BlockingPool() {
  if (t_pool == this) {
    std::fprintf(stderr, "BlockingPool %s destroyed on its own thread\n", name_.c_str());
    std::abort();
  }
  stopping_.store(true);
  work_.reset();  // run() returns once the queued jobs have answered and the running ones ended
  for (auto& t : threads_) t.join();
  auto d = dropped_.load();
  if (d) core::log().info("pool {}: {} queued jobs dropped at shutdown", name_, d);
}

void BlockingPool::thread_main(size_t index) {
  t_pool = this;
  t_index = index;
  block_async_signals();
  set_thread_name(name_, index);
  ctx_.run();
}

bool BlockingPool::admit() {
  if (stopping_.load(std::memory_order_relaxed)) {
    shed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  size_t before = waiting_.fetch_add(1, std::memory_order_relaxed);
  if (before >= queue_limit_) {
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    shed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  accepted_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool BlockingPool::start_job() {
  waiting_.fetch_sub(1, std::memory_order_relaxed);
  if (!stopping_.load(std::memory_order_relaxed)) return true;
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

BlockingPool::Stats BlockingPool::stats() const {
  return Stats{accepted_.load(), shed_.load(), completed_.load(), dropped_.load()};
}

std::optional<size_t> BlockingPool::thread_index() const {
  if (t_pool != this) return std::nullopt;
  return t_index;
}

}  // namespace net
