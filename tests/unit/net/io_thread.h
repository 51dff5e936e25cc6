// Test helper: an I/O thread (an io_context run by its own thread) for unit tests that drive
// coroutines and the worker pool the way mxfront's I/O threads do.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <memory>
#include <thread>

namespace testing_support {

namespace asio = boost::asio;

// An I/O thread: an io_context run by its own thread until the object is destroyed.
class IoThread {
 public:
  IoThread() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    thread_.join();
  }
  asio::io_context& io() { return io_; }
  std::thread::id id() const { return thread_.get_id(); }

  // Runs the coroutine lambda `make` on this I/O thread; the future holds its result. The lambda
  // itself goes to co_spawn, which keeps it (and so its captures) alive while the coroutine runs.
  template <class T, class Make>
  std::future<T> spawn(Make make) {
    auto p = std::make_shared<std::promise<T>>();
    auto f = p->get_future();
    asio::co_spawn(io_, std::move(make), [p](std::exception_ptr e, T v) {
      if (e) p->set_exception(e);
      else p->set_value(std::move(v));
    });
    return f;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace testing_support
