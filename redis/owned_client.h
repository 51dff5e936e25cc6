// redis::OwnedClient — a redis::Client on a thread of its own, for users whose checks await Redis
// from any executor (and the shared connection of redis::ThreadClients): created, started, stopped and destroyed
// on that thread as client.h requires; eval() may be awaited from anywhere and answers within the
// client's timeout (an error Reply when Redis is down, slow or refuses). Connection changes are
// logged once each as "<who>: redis <host>:<port> connected|down (<why>)"; down_reason() keeps the
// last why for /health.
// FarmState: whether the last answer came from Redis or the local fallback, so that its owner
// logs each change once; fallback_reason() names a failed command for the fallback counters.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "redis/client.h"
#include "redis/script.h"

namespace redis {

class OwnedClient {
 public:
  OwnedClient(ClientConfig cfg, std::string who);
  ~OwnedClient();
  OwnedClient(const OwnedClient&) = delete;
  OwnedClient& operator=(const OwnedClient&) = delete;

  // EVALSHA, then EVAL when the server does not know the script (one more round trip).
  boost::asio::awaitable<Reply> eval(const Script& s, std::vector<std::string> keys, std::vector<std::string> argv);
  // From a thread that is NOT an I/O thread (an OCR pool thread): sends `args` and blocks the
  // calling thread until the reply, at most the client's timeout (then an error Reply "timeout").
  // Never call it from an io_context thread: every session on that thread would stall.
  Reply call(std::vector<std::string> args);
  // Fire and forget, from any thread: `done` (optional) runs on the client's thread.
  void send(std::vector<std::string> args, std::function<void(Reply)> done = {});
  bool up() const;  // never blocks
  std::string down_reason() const;  // "" when up, else why the connection is down (never blocks long)
  const ClientConfig& config() const { return cfg_; }

 private:
  ClientConfig cfg_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::shared_ptr<Client> client_;
  mutable std::mutex why_mu_;
  std::string why_ = "not connected yet";
  std::thread thread_;
};

// EVALSHA on `client`, then EVAL when the server does not know the script (one more round trip);
// awaited on any executor.
boost::asio::awaitable<Reply> eval(std::shared_ptr<Client> client, const Script& s, std::vector<std::string> keys,
                                   std::vector<std::string> argv);

// "timeout", "down", "inflight" or "error", from the error text of a failed command.
const char* fallback_reason(const std::string& error);

// Farm-wide (Redis answered) or local (fallback): set() says whether this answer changed it.
class FarmState {
 public:
  bool set(bool farm) { return state_.exchange(farm ? 1 : 0) != (farm ? 1 : 0); }

 private:
  std::atomic<int> state_{-1};  // -1 not known yet
};

}  // namespace redis
