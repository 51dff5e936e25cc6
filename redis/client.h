// redis::Client — an asynchronous Redis client on one io_context executor: hiredis's async API
// driven by Asio (redis/asio_adapter.h); one connection, pipelined; every command answers exactly
// once: the reply, or an error Reply when it times out, when too many are in flight, when the
// connection is down (never queued while down), or when the client stops. Reconnects with backoff;
// AUTH (password or ACL user+password) and SELECT before a connection counts as up.
// Strand contract: create, start, stop and destroy the client on its executor's thread (an
// io_context run by one thread); command()/submit() may be called from any thread (they post).
// Sentinel (ClientConfig::sentinels): before each connect the master's address is asked of the
// sentinels in order (SENTINEL get-master-addr-by-name, one small client per sentinel on the same
// executor), and a connection counts as up only once ROLE says "master" — after a failover the
// old master (now a replica) is left and the new one found. Not done: TLS.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

struct redisAsyncContext;
namespace redis {
struct AsioWatch;
}

namespace redis {

namespace asio = boost::asio;

// One Redis reply (RESP2): status and string keep their text in `str`, errors too.
struct Reply {
  enum class Type { Integer, String, Status, Nil, Array, Error };
  Type type = Type::Nil;
  long long integer = 0;
  std::string str;
  std::vector<Reply> elements;
  bool error() const { return type == Type::Error; }
  static Reply make_error(std::string why) { return Reply{Type::Error, 0, std::move(why), {}}; }
};

// Limits of one client; the defaults are the [redis] section's.
struct ClientConfig {
  std::string host;  // numeric address (a name is resolved blocking at connect, on the client's thread)
  uint16_t port = 6379;
  std::string username;  // ACL user ("" = the default user)
  std::string password;  // "" = no AUTH
  unsigned db = 0;       // SELECT db when not 0
  std::chrono::milliseconds timeout{200};             // per command, and the connect+handshake x kConnectTimeoutFactor
  size_t max_inflight = 1000;                         // commands sent and not yet answered by the server
  std::chrono::milliseconds reconnect_min{100};       // first wait after a drop; doubles up to reconnect_max
  std::chrono::milliseconds reconnect_max{5000};
  // Sentinel discovery: "host:port" of each sentinel (tried in order) and the master's name; when
  // set, host/port above are only the last master found. sentinel_password: AUTH to the sentinels.
  std::vector<std::pair<std::string, uint16_t>> sentinels;
  std::string master_name;
  std::string sentinel_password;
};
inline constexpr int kConnectTimeoutFactor = 5;
// How a configured Redis is named in /health and logs: "host:port", or "master <name> (sentinel)"
// when the master is found through sentinels (its address changes with a failover).
inline std::string display_name(const ClientConfig& c) {
  if (!c.sentinels.empty()) return "master " + c.master_name + " (sentinel)";
  return c.host + ":" + std::to_string(c.port);
}

// Counters, readable from any thread.
struct ClientStats {
  std::atomic<uint64_t> commands{0}, errors{0}, timeouts{0}, rejected{0}, connects{0}, drops{0};
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  using Done = std::function<void(Reply)>;
  // `on_state(up, why)` runs on the client's thread at each change of the connection's state.
  static std::shared_ptr<Client> create(asio::any_io_executor ex, ClientConfig cfg,
                                        std::function<void(bool, const std::string&)> on_state = {});
  ~Client();
  void start();  // connect (client's thread)
  void stop();   // disconnect for good; pending commands answer with an error (client's thread)

  // Subscriber mode (call before start()): this client's connection only listens to `channel`,
  // subscribed again after each reconnect; `on_message(payload)` runs on the client's thread.
  // Commands on a subscribed client are refused by the server (use a second client).
  void subscribe(std::string channel, std::function<void(const std::string&)> on_message);

  // From any thread: `done` runs on the client's thread.
  void submit(std::vector<std::string> args, Done done);

  template <class Token>
  auto async_command(std::vector<std::string> args, Token&& token) {
    return asio::async_initiate<Token, void(Reply)>(
        [self = shared_from_this()](auto handler, std::vector<std::string> a) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          self->submit(std::move(a), [h](Reply r) {
            auto ex = asio::get_associated_executor(*h);
            asio::dispatch(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
          });
        },
        token, std::move(args));
  }
  // co_await client->command({"INCR", key})
  asio::awaitable<Reply> command(std::vector<std::string> args) {
    return async_command(std::move(args), asio::use_awaitable);
  }

  bool up() const { return up_.load(); }
  const ClientStats& stats() const { return stats_; }
  const ClientConfig& config() const { return cfg_; }
  // The server connected to (or last tried): "host:port"; with Sentinel, the master it named.
  std::string server() const;

 private:
  struct Pending;
  Client(asio::any_io_executor ex, ClientConfig cfg, std::function<void(bool, const std::string&)> on_state);
  void connect();
  void discover(size_t i);  // asks sentinel i for the master, then connects (or tries i + 1)
  void connect_to_server();
  void handshake();
  void send_subscribe();
  void send(std::vector<std::string> args, Done done, bool internal);
  void drop(const std::string& why);
  void set_up(bool up, const std::string& why);
  void schedule_reconnect();
  static void on_connect(const redisAsyncContext* c, int status);
  static void on_disconnect(const redisAsyncContext* c, int status);
  static void on_reply(redisAsyncContext* c, void* reply, void* privdata);

  asio::any_io_executor ex_;
  ClientConfig cfg_;
  std::function<void(bool, const std::string&)> on_state_;
  redisAsyncContext* ctx_ = nullptr;
  std::shared_ptr<AsioWatch> watch_;
  asio::steady_timer reconnect_timer_, connect_timer_;
  std::chrono::milliseconds backoff_;
  std::string channel_;
  std::function<void(const std::string&)> on_message_;
  std::vector<std::shared_ptr<Client>> sentinels_;  // Sentinel discovery: one client per sentinel
  mutable std::mutex server_mu_;                     // cfg_.host/port change with each discovery
  bool stopped_ = false, handshaking_ = false, reconnect_pending_ = false;
  size_t inflight_ = 0;
  std::atomic<bool> up_{false};
  ClientStats stats_;
};

}  // namespace redis
