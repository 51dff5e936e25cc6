// Unit tests for net/deadline.h on a one-thread io_context. Watchdog: a wait that ends in time, one
// that times out (on_expiry cancels it), the horizon, stop(), a wait that completes without
// suspending, and that a later deadline leaves the timer alone. Race: done in time, timed out
// (the operation runs on), cancelled, completes without suspending, over before wait(), cancelled
// before start(), throws.
#include "net/deadline.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>

namespace net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = SteadyClock;
using boost::system::error_code;

// The I/O a watchdog guards: a timer standing for a socket read that completes after `after`.
struct Guarded : std::enable_shared_from_this<Guarded> {
  explicit Guarded(asio::io_context& ioc) : io(ioc), watchdog(ioc.get_executor()) {}
  asio::steady_timer io;
  Watchdog watchdog;
  int expiries = 0;

  void start(Clock::time_point horizon = Clock::time_point::max()) {
    watchdog.start(shared_from_this(), [this] { ++expiries; io.cancel(); }, horizon);
  }
  // Waits for the "read" under the watchdog; true when it completed (not cancelled).
  asio::awaitable<bool> read(Clock::duration after, Clock::duration timeout) {
    io.expires_after(after);
    watchdog.arm_after(timeout);
    error_code ec;
    co_await io.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    watchdog.disarm();
    co_return !ec;
  }
};

template <class F>
void run_coro(asio::io_context& ioc, F make) {
  asio::co_spawn(ioc, make(), asio::detached);
  ioc.run();
}

TEST(Watchdog, AWaitThatEndsInTimeIsNotTimedOut) {
  asio::io_context ioc;
  auto g = std::make_shared<Guarded>(ioc);
  g->start();
  bool ok = false;
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    ok = co_await g->read(10ms, 2s);
    g->watchdog.stop();
  });
  EXPECT_TRUE(ok);
  EXPECT_FALSE(g->watchdog.timed_out());
  EXPECT_EQ(g->expiries, 0);
}

TEST(Watchdog, AWaitThatOutlivesItsDeadlineIsEndedByOnExpiry) {
  asio::io_context ioc;
  auto g = std::make_shared<Guarded>(ioc);
  g->start();
  bool ok = true;
  auto t0 = Clock::now();
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    ok = co_await g->read(10s, 50ms);
    g->watchdog.stop();
  });
  EXPECT_FALSE(ok);
  EXPECT_TRUE(g->watchdog.timed_out());
  EXPECT_EQ(g->expiries, 1);
  EXPECT_LT(Clock::now() - t0, 5s);
  g->watchdog.clear();
  EXPECT_FALSE(g->watchdog.timed_out());
}

TEST(Watchdog, DeadlinesAreCutToTheHorizon) {
  asio::io_context ioc;
  auto g = std::make_shared<Guarded>(ioc);
  g->start(Clock::now() + 50ms);
  bool ok = true;
  auto t0 = Clock::now();
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    ok = co_await g->read(10s, 10s);
    g->watchdog.stop();
  });
  EXPECT_FALSE(ok);
  EXPECT_TRUE(g->watchdog.timed_out());
  EXPECT_LT(Clock::now() - t0, 5s);
}

TEST(Watchdog, StopEndsTheWatchAndLetsGoOfTheOwner) {
  asio::io_context ioc;
  auto g = std::make_shared<Guarded>(ioc);
  g->start();
  EXPECT_GT(g.use_count(), 1);  // the pending wait holds it
  g->watchdog.arm_after(20ms);
  g->watchdog.stop();
  ioc.run();  // returns: nothing pending any more
  EXPECT_EQ(g.use_count(), 1);
  EXPECT_EQ(g->expiries, 0);
  EXPECT_FALSE(g->watchdog.timed_out());
}

TEST(Watchdog, AWaitThatCompletesWithoutSuspendingNeverExpires) {
  asio::io_context ioc;
  auto g = std::make_shared<Guarded>(ioc);
  g->start();
  // Armed and disarmed with nothing awaited in between (the data was already there).
  g->watchdog.arm_after(10ms);
  g->watchdog.disarm();
  asio::steady_timer later(ioc, 60ms);
  later.async_wait([&](error_code) { g->watchdog.stop(); });
  ioc.run();
  EXPECT_EQ(g->expiries, 0);
  EXPECT_FALSE(g->watchdog.timed_out());
}

TEST(Watchdog, OnlyAnEarlierDeadlineTouchesTheTimer) {
  asio::io_context ioc;
  auto g = std::make_shared<Guarded>(ioc);
  auto horizon = Clock::now() + 1h;
  g->start(horizon);
  EXPECT_EQ(g->watchdog.expiry(), horizon);
  auto t1 = Clock::now() + 10min;
  g->watchdog.arm(t1);
  EXPECT_EQ(g->watchdog.expiry(), t1);
  g->watchdog.disarm();
  g->watchdog.arm(t1 + 1min);  // later: the timer keeps its expiry; the wake-up re-checks the clock
  EXPECT_EQ(g->watchdog.expiry(), t1);
  g->watchdog.arm(horizon + 1h);  // cut to the horizon, still later than the expiry
  EXPECT_EQ(g->watchdog.expiry(), t1);
  auto t2 = Clock::now() + 5min;
  g->watchdog.arm(t2);
  EXPECT_EQ(g->watchdog.expiry(), t2);
  g->watchdog.stop();
  ioc.run();
}

// --- Race ---

asio::awaitable<int> sleep_then(std::chrono::milliseconds d, int value, int* finished = nullptr) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (finished) ++*finished;
  co_return value;
}

asio::awaitable<int> at_once(int value) { co_return value; }

// start() then wait(): the race's whole use.
asio::awaitable<Ending> race_of(std::shared_ptr<Race<int>> race, asio::awaitable<int> op, Clock::time_point deadline,
                                std::shared_ptr<const void> keep = nullptr) {
  race->start(std::move(op), deadline, std::move(keep));
  co_await race->wait();
  co_return race->ending();
}

asio::awaitable<int> throws() {
  throw std::runtime_error("check failed");
  co_return 0;
}

TEST(Race, AnOperationThatCompletesInTimeIsDone) {
  asio::io_context ioc;
  auto race = std::make_shared<Race<int>>(ioc.get_executor());
  Ending end = Ending::Cancelled;
  run_coro(ioc, [&]() -> asio::awaitable<void> { end = co_await race_of(race, sleep_then(10ms, 42), Clock::now() + 5s); });
  EXPECT_EQ(end, Ending::Done);
  ASSERT_TRUE(race->value());
  EXPECT_EQ(*race->value(), 42);
  EXPECT_FALSE(race->error());
}

TEST(Race, AnOperationThatOutlivesTheDeadlineTimesOutAndRunsOn) {
  asio::io_context ioc;
  auto race = std::make_shared<Race<int>>(ioc.get_executor());
  Ending end = Ending::Done;
  int finished = 0;
  auto keep = std::make_shared<int>(0);
  Clock::duration waited{};
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    auto t0 = Clock::now();
    end = co_await race_of(race, sleep_then(300ms, 1, &finished), t0 + 20ms, keep);
    waited = Clock::now() - t0;
    EXPECT_EQ(finished, 0);
    EXPECT_GT(keep.use_count(), 1);  // held by the operation still running
  });
  EXPECT_EQ(end, Ending::TimedOut);
  EXPECT_LT(waited, 250ms);
  EXPECT_EQ(finished, 1);             // ioc.run() returned only once the abandoned operation ended
  EXPECT_TRUE(race->done());          // its result came in afterwards
  EXPECT_EQ(keep.use_count(), 1);
  EXPECT_EQ(race.use_count(), 1);
}

TEST(Race, CancelEndsTheWaitAtOnce) {
  asio::io_context ioc;
  auto race = std::make_shared<Race<int>>(ioc.get_executor());
  Ending end = Ending::Done;
  asio::steady_timer canceller(ioc, 20ms);
  canceller.async_wait([&](error_code) { race->cancel(); });
  Clock::duration waited{};
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    auto t0 = Clock::now();
    end = co_await race_of(race, sleep_then(300ms, 1), t0 + 10s);
    waited = Clock::now() - t0;
  });
  EXPECT_EQ(end, Ending::Cancelled);
  EXPECT_LT(waited, 250ms);
}

TEST(Race, AnOperationThatCompletesWithoutSuspendingIsDoneWithoutWaitingForTheDeadline) {
  asio::io_context ioc;
  auto race = std::make_shared<Race<int>>(ioc.get_executor());
  Ending end = Ending::Cancelled;
  Clock::duration waited{};
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    auto t0 = Clock::now();
    end = co_await race_of(race, at_once(7), t0 + 10s);
    waited = Clock::now() - t0;
  });
  EXPECT_EQ(end, Ending::Done);
  EXPECT_EQ(*race->value(), 7);
  EXPECT_LT(waited, 5s);
}

TEST(Race, AWaitAfterTheOperationCompletedReturnsAtOnce) {
  asio::io_context ioc;
  auto race = std::make_shared<Race<int>>(ioc.get_executor());
  Clock::duration waited{};
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    race->start(at_once(5), Clock::now() + 10s);
    asio::steady_timer pause(co_await asio::this_coro::executor, 20ms);
    error_code ec;
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    EXPECT_TRUE(race->done());
    auto t0 = Clock::now();
    co_await race->wait();
    waited = Clock::now() - t0;
  });
  EXPECT_EQ(race->ending(), Ending::Done);
  EXPECT_EQ(*race->value(), 5);
  EXPECT_LT(waited, 5s);
}

TEST(Race, CancelledBeforeStartStillStartsTheOperationAndReturnsAtOnce) {
  asio::io_context ioc;
  auto race = std::make_shared<Race<int>>(ioc.get_executor());
  race->cancel();
  Ending end = Ending::Done;
  int finished = 0;
  run_coro(ioc, [&]() -> asio::awaitable<void> {
    end = co_await race_of(race, sleep_then(10ms, 3, &finished), Clock::now() + 10s);
    EXPECT_EQ(finished, 0);
  });
  EXPECT_EQ(end, Ending::Cancelled);
  EXPECT_EQ(finished, 1);
}

TEST(Race, AnOperationThatThrowsIsDoneWithTheException) {
  asio::io_context ioc;
  auto race = std::make_shared<Race<int>>(ioc.get_executor());
  Ending end = Ending::Cancelled;
  run_coro(ioc, [&]() -> asio::awaitable<void> { end = co_await race_of(race, throws(), Clock::now() + 5s); });
  EXPECT_EQ(end, Ending::Done);
  EXPECT_FALSE(race->value());
  ASSERT_TRUE(race->error());
  EXPECT_THROW(std::rethrow_exception(race->error()), std::runtime_error);
}

}  // namespace
}  // namespace net
