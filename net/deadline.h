// Deadlines for waits on an Asio executor: the one mechanism the session, the filter chain and the
// QMQP client bound their waits with. Boost 1.74 has no per-operation cancellation, so a deadline
// either acts on the I/O object the caller waits on (Watchdog) or abandons an operation that cannot
// be interrupted (Race). Both are single-threaded: use them from their executor only (an
// io_context run by one thread, or a strand).
//
// Watchdog — for I/O the caller awaits itself. One steady_timer for the owner's whole life with one
// wait always pending (start() to stop()); arm(t) says the wait under way must end by t, disarm()
// lifts that. When an armed deadline passes, on_expiry runs (it cancels or closes the I/O object,
// whose wait then ends with an error) and timed_out() turns true until clear(). arm() touches the
// timer only when the deadline moves earlier than the timer's expiry: a wait costs a clock read,
// not a timer syscall (Asio's check_deadline pattern).
//
// Race<T> — for an operation that cannot be interrupted (a filter check, a getaddrinfo). start()
// spawns it on the executor; wait() ends at the first of its completion, the deadline and
// cancel(). An abandoned operation runs on; its result is kept in the Race (which its completion
// keeps alive) and dropped with it. The wait is the timer's own: no coroutine frame of its own.
#pragma once
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>

namespace net {

using SteadyClock = std::chrono::steady_clock;

class Watchdog {
 public:
  using Clock = SteadyClock;
  explicit Watchdog(const boost::asio::any_io_executor& ex) : timer_(ex) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts watching. Until stop(), the pending wait holds `owner` (what on_expiry acts on, usually
  // the object this Watchdog belongs to) alive. Every deadline is cut to `horizon`. on_expiry runs
  // on the executor; capture a pointer only (std::function keeps it without allocating).
  void start(std::shared_ptr<void> owner, std::function<void()> on_expiry,
             Clock::time_point horizon = Clock::time_point::max());
  // The wait under way must end by `t` (at the latest by the horizon).
  void arm(Clock::time_point t) {
    target_ = std::min(t, horizon_);
    if (target_ < timer_.expiry()) timer_.expires_at(target_);  // wakes the pending wait early
  }
  template <class Rep, class Period>
  void arm_after(std::chrono::duration<Rep, Period> d) {
    arm(Clock::now() + std::chrono::duration_cast<Clock::duration>(d));
  }
  void disarm() { target_ = Clock::time_point::max(); }
  // An armed deadline passed (and on_expiry ran) since start() or the last clear().
  bool timed_out() const { return timed_out_; }
  void clear() { timed_out_ = false; }
  // Ends the watch: on_expiry never runs again, the pending wait ends and lets go of the owner.
  void stop();
  // When the timer fires next (tests check that a later deadline leaves it alone).
  Clock::time_point expiry() const { return timer_.expiry(); }

 private:
  void wait(std::shared_ptr<void> owner);
  void on_wake(std::shared_ptr<void> owner);

  boost::asio::steady_timer timer_;
  std::function<void()> on_expiry_;
  Clock::time_point target_ = Clock::time_point::max();
  Clock::time_point horizon_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool stopped_ = false;
};

enum class Ending { Done, TimedOut, Cancelled };

template <class T>
class Race : public std::enable_shared_from_this<Race<T>> {
 public:
  using Clock = SteadyClock;
  // Create with std::make_shared (the operation's completion holds the Race); one race per Race.
  explicit Race(const boost::asio::any_io_executor& ex) : timer_(ex) {}

  // Spawns `op` on the executor: the race is on between its completion, `deadline` and cancel().
  // `keep` is held until the operation completes (what it needs that its own frame does not hold).
  void start(boost::asio::awaitable<T> op, Clock::time_point deadline, std::shared_ptr<const void> keep = nullptr);
  // Awaits the end of the race (at once if it is over already), then ending() says who won. Not a
  // coroutine of its own: the awaitable is the timer's wait.
  boost::asio::awaitable<void> wait() {
    if (done_ || cancelled_) timer_.expires_at(Clock::time_point());  // long past
    return timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec_));
  }
  // A completion that came in before the wait ended wins over the deadline and cancel().
  Ending ending() const { return done_ ? Ending::Done : cancelled_ ? Ending::Cancelled : Ending::TimedOut; }
  // Ends the wait now (Cancelled unless the operation completed first); the operation runs on.
  void cancel() {
    cancelled_ = true;
    timer_.cancel();
  }
  bool done() const { return done_; }
  std::optional<T>& value() { return value_; }         // the operation returned
  std::exception_ptr error() const { return error_; }  // the operation threw

 private:
  boost::asio::steady_timer timer_;
  boost::system::error_code ec_;  // the wait's own: expired or cancelled, told apart by the flags
  std::optional<T> value_;
  std::exception_ptr error_;
  bool done_ = false;
  bool cancelled_ = false;
};

template <class T>
void Race<T>::start(boost::asio::awaitable<T> op, Clock::time_point deadline, std::shared_ptr<const void> keep) {
  timer_.expires_at(deadline);
  boost::asio::co_spawn(timer_.get_executor(), std::move(op),
                        [self = this->shared_from_this(), keep = std::move(keep)](std::exception_ptr e, T v) {
                          self->done_ = true;
                          if (e) self->error_ = e;
                          else self->value_ = std::move(v);
                          self->timer_.cancel();
                        });
}

}  // namespace net
