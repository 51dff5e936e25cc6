// redis::ThreadClients — one redis::Client per io_context that awaits Redis, for the checks a session
// makes on its own I/O thread (the ratelimit and greylist filters): the command goes out and its
// answer comes back on the awaiting thread, with no hand-off to another thread and back (on a loaded
// machine each hand-off is a wakeup waiting for a CPU; bench/README.md, "farm rate limits").
// eval() must be awaited on an io_context run by one thread (smtpd::Server's I/O threads are): that
// context's client is created and started there at its first eval, as client.h requires, and kept in
// a service of the context. It goes when this object goes (a removal posted to its context) or when
// the context is destroyed, whichever comes first. Destroy a ThreadClients before its contexts or after
// they are gone, never while one is being destroyed (main.cc: the server, with its contexts, goes first).
// A connection on a thread of its own (OwnedClient, the one every eval used before) connects at once:
// its state is up() and the log's, and it answers an eval whose context's client is not up (being
// connected at first use, or again after a drop), so no check fails open while Redis is there.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "redis/client.h"
#include "redis/owned_client.h"
#include "redis/script.h"

namespace redis {

class ThreadClients {
 public:
  ThreadClients(ClientConfig cfg, std::string who);
  ~ThreadClients();
  ThreadClients(const ThreadClients&) = delete;
  ThreadClients& operator=(const ThreadClients&) = delete;

  // EVALSHA (EVAL after NOSCRIPT) on the awaiting coroutine's context's client, or on the shared
  // connection while that one is not up; answers within the client's timeout (an error Reply when
  // Redis is down, slow or refuses).
  boost::asio::awaitable<Reply> eval(const Script& s, std::vector<std::string> keys, std::vector<std::string> argv);
  bool up() const { return shared_.up(); }  // never blocks
  std::string down_reason() const { return shared_.down_reason(); }  // "" when up; never blocks
  const ClientConfig& config() const { return shared_.config(); }

 private:
  struct Placed {  // a context where this object has a client
    boost::asio::any_io_executor ex;
    std::weak_ptr<void> context_alive;  // expires when the context's service shuts down
  };
  std::shared_ptr<Client> here(const boost::asio::any_io_executor& ex);

  const uint64_t id_;  // the key of this object's clients in each context's service (never reused)
  OwnedClient shared_;
  mutable std::mutex mu_;
  std::vector<Placed> placed_;
};

}  // namespace redis
