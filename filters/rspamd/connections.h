// The rspamd filter's connections to its servers: idle keep-alive connections kept per io_context
// (IdlePool, a service of the context: each I/O thread reuses its own, no locks), and the
// process-wide bound on exchanges in flight per server (InFlight), whose waiters are served in order.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace filters::rspamd {

// Idle connections of one io_context, by server ("host:port"). Use it only on the context's own
// thread (smtpd::Server runs one thread per io_context). An idle connection is closed at once when
// it turns readable (the peer closed it, or sent what no request asked for: no CLOSE_WAIT socket
// stays), after its idle timeout, or when the context goes.
class IdlePool : public boost::asio::execution_context::service {
 public:
  static boost::asio::execution_context::id id;
  explicit IdlePool(boost::asio::execution_context& ctx);
  static IdlePool& of(const boost::asio::any_io_executor& ex);

  // The connection to `server` that went idle last, if any.
  std::optional<boost::asio::ip::tcp::socket> take(const std::string& server);
  // Keeps `sock` for `idle_timeout`; past `max_idle` idle connections to `server`, the oldest is closed.
  void put(const std::string& server, boost::asio::ip::tcp::socket sock, std::chrono::milliseconds idle_timeout,
           size_t max_idle);
  size_t idle(const std::string& server) const;

 private:
  struct Entry {
    uint64_t id;
    std::unique_ptr<boost::asio::ip::tcp::socket> sock;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  void drop(const std::string& server, uint64_t entry);  // closes it, if still idle
  void shutdown() override { idle_.clear(); }

  std::map<std::string, std::deque<Entry>> idle_;  // per server, oldest first
  uint64_t next_ = 0;
};

// Exchanges in flight with one server, for the whole process (a reload keeps counting).
class InFlight {
 public:
  // A held slot, released when destroyed (to the first waiter, if any); empty: none was free.
  class Slot {
   public:
    Slot() = default;
    explicit Slot(std::shared_ptr<InFlight> s) : s_(std::move(s)) {}
    Slot(Slot&& o) noexcept = default;
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        reset();
        s_ = std::move(o.s_);
      }
      return *this;
    }
    ~Slot() { reset(); }
    explicit operator bool() const { return s_ != nullptr; }

   private:
    void reset() {
      if (auto s = std::move(s_)) s->release();
    }
    std::shared_ptr<InFlight> s_;
  };

  static std::shared_ptr<InFlight> of(const std::string& server);
  // A slot if fewer than `max` exchanges are in flight.
  static Slot try_take(const std::shared_ptr<InFlight>& self, size_t max);
  // A slot as soon as one is free (waiters served in arrival order), or an empty one at `deadline`.
  static boost::asio::awaitable<Slot> wait(std::shared_ptr<InFlight> self, size_t max,
                                           std::chrono::steady_clock::time_point deadline);
  size_t in_flight() const;

 private:
  struct Waiter;
  void release();

  mutable std::mutex mu_;
  size_t n_ = 0;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace filters::rspamd
