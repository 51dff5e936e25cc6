// Unit tests for net::BlockingPool: where jobs run and where the awaiting coroutine resumes, load
// shedding at the queue limit, parallelism, thread names, and shutdown with jobs still queued.
#include "net/blocking_pool.h"
#include "tests/unit/net/io_thread.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

namespace net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing_support::IoThread;

// A gate a job can wait on, opened by the test.
struct Gate {
  std::promise<void> open_p;
  std::shared_future<void> opened = open_p.get_future().share();
  std::atomic<int> waiting{0};
  void wait() {
    ++waiting;
    opened.wait();
  }
  void open() { open_p.set_value(); }
  void until_waiting(int n) {
    auto deadline = Clock::now() + 5s;
    while (waiting.load() < n && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  }
};

struct Where {
  std::thread::id job_thread, resumed_thread;
  std::optional<size_t> index;
  int value = 0;
};

TEST(BlockingPool, RunsOnAPoolThreadAndResumesOnTheCallersThread) {
  BlockingPool pool("test", 2, 8);
  IoThread io;
  auto f = io.spawn<Where>([&]() -> asio::awaitable<Where> {
    Where w;
    auto job = [&pool, &w] {
      w.job_thread = std::this_thread::get_id();
      w.index = pool.thread_index();
      return 42;
    };
    auto r = co_await pool.run(std::move(job));
    w.resumed_thread = std::this_thread::get_id();
    w.value = r.value_or(-1);
    co_return w;
  });
  Where w = f.get();
  EXPECT_EQ(w.value, 42);
  EXPECT_NE(w.job_thread, io.id());
  EXPECT_EQ(w.resumed_thread, io.id());
  ASSERT_TRUE(w.index.has_value());
  EXPECT_LT(*w.index, 2u);
  EXPECT_FALSE(pool.thread_index().has_value());  // the test thread is not a pool thread
}

TEST(BlockingPool, EachAwaiterResumesOnItsOwnIoThread) {
  BlockingPool pool("test", 2, 8);
  IoThread a, b;
  auto on = [&](IoThread& t) {
    return t.spawn<std::thread::id>([&]() -> asio::awaitable<std::thread::id> {
      auto job = [] {
        std::this_thread::sleep_for(20ms);
        return 1;
      };
      co_await pool.run(std::move(job));
      co_return std::this_thread::get_id();
    });
  };
  auto fa = on(a);
  auto fb = on(b);
  EXPECT_EQ(fa.get(), a.id());
  EXPECT_EQ(fb.get(), b.id());
}

TEST(BlockingPool, ShedsAtOnceWhenTheQueueIsFull) {
  BlockingPool pool("test", 1, 2);
  IoThread io;
  Gate gate;
  auto blocked = [&] {
    return io.spawn<int>([&]() -> asio::awaitable<int> {
      auto job = [&gate] {
        gate.wait();
        return 1;
      };
      co_return (co_await pool.run(std::move(job))).value_or(-1);
    });
  };
  auto running = blocked();  // occupies the only thread
  gate.until_waiting(1);
  auto queued1 = blocked();
  auto queued2 = blocked();
  auto deadline = Clock::now() + 5s;
  while (pool.pending() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(pool.pending(), 2u);

  auto t0 = Clock::now();
  auto shed = blocked();
  EXPECT_EQ(shed.get(), -1);  // answered without waiting for the gate
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(pool.stats().shed, 1u);

  gate.open();
  EXPECT_EQ(running.get(), 1);
  EXPECT_EQ(queued1.get(), 1);
  EXPECT_EQ(queued2.get(), 1);
  EXPECT_EQ(pool.pending(), 0u);
  auto s = pool.stats();
  EXPECT_EQ(s.accepted, 3u);
  EXPECT_EQ(s.completed, 3u);
}

TEST(BlockingPool, ZeroQueueLimitShedsEverything) {
  BlockingPool pool("test", 1, 0);
  IoThread io;
  auto f = io.spawn<bool>([&]() -> asio::awaitable<bool> {
    auto job = [] { return 1; };
    co_return (co_await pool.run(std::move(job))).has_value();
  });
  EXPECT_FALSE(f.get());
}

TEST(BlockingPool, ThreadsRunJobsInParallel) {
  BlockingPool pool("test", 2, 8);
  IoThread io;
  auto sleeper = [&] {
    return io.spawn<int>([&]() -> asio::awaitable<int> {
      auto job = [] {
        std::this_thread::sleep_for(300ms);
        return 1;
      };
      co_return (co_await pool.run(std::move(job))).value_or(0);
    });
  };
  auto t0 = Clock::now();
  auto a = sleeper();
  auto b = sleeper();
  EXPECT_EQ(a.get() + b.get(), 2);
  EXPECT_LT(Clock::now() - t0, 550ms);  // 2 x 300 ms would be sequential
}

TEST(BlockingPool, ThreadsAreNamed) {
  BlockingPool pool("ldap", 2, 8);
  IoThread io;
  auto f = io.spawn<std::string>([&]() -> asio::awaitable<std::string> {
    auto job = [] {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      return std::string(name);
    };
    co_return (co_await pool.run(std::move(job))).value_or("");
  });
  std::string name = f.get();
  EXPECT_TRUE(name == "ldap-0" || name == "ldap-1") << name;
}

TEST(BlockingPool, MoveOnlyResults) {
  BlockingPool pool("test", 1, 8);
  IoThread io;
  auto f = io.spawn<int>([&]() -> asio::awaitable<int> {
    auto job = [] { return std::make_unique<int>(7); };
    auto r = co_await pool.run(std::move(job));
    co_return r && *r ? **r : -1;
  });
  EXPECT_EQ(f.get(), 7);
}

TEST(BlockingPool, DestructorAnswersQueuedJobsWithoutRunningThem) {
  auto pool = std::make_unique<BlockingPool>("test", 1, 8);
  BlockingPool* p = pool.get();  // the coroutines use this, not the unique_ptr the test resets
  IoThread io;
  Gate gate;
  std::atomic<int> ran{0};
  auto submit = [&] {
    return io.spawn<int>([&]() -> asio::awaitable<int> {
      auto job = [&] {
        ++ran;
        gate.wait();
        return 1;
      };
      co_return (co_await p->run(std::move(job))).value_or(-1);
    });
  };
  auto running = submit();
  gate.until_waiting(1);
  auto q1 = submit();
  auto q2 = submit();
  auto deadline = Clock::now() + 5s;
  while (p->pending() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);

  std::thread destroyer([&] { pool.reset(); });  // blocks until the running job ends
  std::this_thread::sleep_for(50ms);
  gate.open();
  destroyer.join();
  EXPECT_EQ(running.get(), 1);
  EXPECT_EQ(q1.get(), -1);
  EXPECT_EQ(q2.get(), -1);
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace
}  // namespace net
