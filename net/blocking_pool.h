// net::BlockingPool — a fixed set of threads for blocking or CPU-heavy library calls (libldap,
// crypt(3); later libclamav and Tesseract), so that the I/O threads never block.
//
// Contract:
//  * `co_await pool.run(fn)` runs `fn()` on a pool thread and resumes the awaiting coroutine on
//    the awaiting coroutine's OWN executor (co_spawn dispatches the completion through it), with
//    the result in an optional.
//  * The queue is bounded: when `queue_limit` jobs are already waiting for a thread, run() returns
//    std::nullopt at once without running fn (shed load: the caller answers "try later").
//    pending() counts jobs accepted and not yet started; jobs being run are not counted. With
//    queue_limit 0 every run() sheds.
//  * fn must not throw (no exceptions on the data path); if it does, Asio rethrows the exception
//    in the awaiting coroutine. fn must return a value (not void).
//  * The destructor stops accepting work (run() sheds), answers std::nullopt to jobs still
//    queued without running them, waits for the jobs being run, and joins the threads. It must
//    not run on a pool thread (a job must not own the last reference to its own pool): that is a
//    bug and aborts.
//  * Pool threads are named "<name>-<i>" (pthread_setname_np, at most 15 characters) and block all
//    asynchronous signals (SIGPIPE from a library's write() on a closed socket becomes EPIPE).
//  * GCC 12 bug (reproduced with ASan): a closure or aggregate TEMPORARY holding a std::string,
//    passed by value to a coroutine inside a co_await expression, is relocated bitwise and its
//    string later freed from the wrong address. Name the closure first:
//        auto job = [key] { return lookup(key); };
//        auto r = co_await pool.run(std::move(job));      // not: co_await pool.run([key] {...})
//  * thread_index() tells a job which pool thread runs it (0..threads()-1), so that code keeping
//    per-thread state (one LDAP connection per thread) can use plain slots without locks.
#pragma once
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace net {

class BlockingPool {
 public:
  struct Stats {
    uint64_t accepted = 0;   // jobs queued
    uint64_t shed = 0;       // run() answered nullopt: queue full or pool stopping
    uint64_t completed = 0;  // fn() returned
    uint64_t dropped = 0;    // queued when the pool was destroyed: answered nullopt, fn not run
  };

  BlockingPool(std::string name, size_t threads, size_t queue_limit);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  template <class F>
  boost::asio::awaitable<std::optional<std::invoke_result_t<F&>>> run(F fn);

  size_t pending() const { return waiting_.load(std::memory_order_relaxed); }
  size_t threads() const { return threads_.size(); }
  size_t queue_limit() const { return queue_limit_; }
  const std::string& name() const { return name_; }
  Stats stats() const;
  // The index of the calling thread in THIS pool, or nullopt when called from any other thread.
  std::optional<size_t> thread_index() const;

 private:
  template <class R, class F>
  static boost::asio::awaitable<std::optional<R>> job(BlockingPool* pool, F fn);
  bool admit();            // reserve a queue place, or count a shed
  bool start_job();        // a queued job begins: false when the pool is stopping
  void thread_main(size_t index);

  std::string name_;
  size_t queue_limit_;
  boost::asio::io_context ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::atomic<size_t> waiting_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> accepted_{0}, shed_{0}, completed_{0}, dropped_{0};
  std::vector<std::thread> threads_;
};

template <class R, class F>
boost::asio::awaitable<std::optional<R>> BlockingPool::job(BlockingPool* pool, F fn) {
  if (!pool->start_job()) co_return std::nullopt;
  std::optional<R> r(fn());
  pool->completed_.fetch_add(1, std::memory_order_relaxed);
  co_return r;
}

template <class F>
boost::asio::awaitable<std::optional<std::invoke_result_t<F&>>> BlockingPool::run(F fn) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_void_v<R>, "BlockingPool::run needs a function returning a value");
  if (!admit()) co_return std::nullopt;
  co_return co_await boost::asio::co_spawn(
      ctx_.get_executor(), job<R, F>(this, std::move(fn)), boost::asio::use_awaitable);
}

}  // namespace net
