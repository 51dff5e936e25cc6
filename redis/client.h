// redis::Client — an asynchronous Redis client on one io_context executor: one Asio connection
// (TCP, or TLS when ClientConfig::tls is set); hiredis only formats commands (redisFormatCommandArgv)
// and parses replies (redisReader). Pipelined, writes coalesced, replies answered in order. Every
// command answers exactly once: the reply, or an error Reply when it times out, when too many are
// in flight, when the connection is down (never queued while down), or when the client stops.
// Reconnects with backoff; AUTH (password or ACL user+password) and SELECT before a connection
// counts as up. TLS: the server's certificate is verified (CA and tls_server_name); a failed
// verification is a connection down with its reason, like any other.
// Strand contract: create, start, stop and destroy the client on its executor's thread (an
// io_context run by one thread); command()/submit() may be called from any thread (they post).
// Sentinel (ClientConfig::sentinels): before each connect the master's address is asked of the
// sentinels in order (SENTINEL get-master-addr-by-name, one small client per sentinel on the same
// executor, with TLS too when it is on), and a connection counts as up only once ROLE says
// "master" — after a failover the old master (now a replica) is left and the new one found.
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
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace boost::asio::ssl {
class context;
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
  std::string host;  // numeric address, or a name resolved (asynchronously) at each connect
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
  // TLS: null = plain TCP; else the client context (CA to verify with, client certificate), see
  // tls_context(). tls_server_name: the name to verify ("" = host; for the master and sentinels).
  std::shared_ptr<asio::ssl::context> tls;
  std::string tls_server_name;
};
// A TLS client context that verifies the server against the PEM CA bundle `ca_file` ("" = the
// system's default verify paths), TLS 1.2 at least, and presents `cert_file` + `key_file` when
// given (both or neither). Null on error: `err` names the file and OpenSSL's reason.
std::shared_ptr<asio::ssl::context> tls_context(const std::string& ca_file, const std::string& cert_file,
                                                const std::string& key_file, std::string& err);
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
  // `on_state(up, why)` runs on the client's thread at each change of the connection's state (and
  // for the first: a server down from the start is reported with its reason).
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
  struct Conn;
  Client(asio::any_io_executor ex, ClientConfig cfg, std::function<void(bool, const std::string&)> on_state);
  void connect();
  void discover(size_t i);  // asks sentinel i for the master, then connects (or tries i + 1)
  void connect_to_server();
  void open(const std::shared_ptr<Conn>& c, const std::vector<asio::ip::tcp::endpoint>& eps);
  void opened(const std::shared_ptr<Conn>& c);
  void handshake();
  void send_subscribe();
  void send(std::vector<std::string> args, Done done, bool internal);
  bool write(const std::vector<std::string>& args);  // formats into the connection's output
  void flush(const std::shared_ptr<Conn>& c);
  void read(const std::shared_ptr<Conn>& c);
  bool on_reply(Reply r);  // false: a reply nobody asked for
  void watch_deadlines(const std::shared_ptr<Conn>& c);
  void drop(const std::string& why);
  void set_up(bool up, const std::string& why);
  void schedule_reconnect();

  asio::any_io_executor ex_;
  ClientConfig cfg_;
  std::function<void(bool, const std::string&)> on_state_;
  std::shared_ptr<Conn> conn_;  // null while down
  asio::steady_timer reconnect_timer_, connect_timer_;
  std::chrono::milliseconds backoff_;
  std::string channel_;
  std::function<void(const std::string&)> on_message_;
  std::vector<std::shared_ptr<Client>> sentinels_;  // Sentinel discovery: one client per sentinel
  mutable std::mutex server_mu_;                     // cfg_.host/port change with each discovery
  bool stopped_ = false, handshaking_ = false, reconnect_pending_ = false, state_known_ = false;
  size_t inflight_ = 0;
  std::atomic<bool> up_{false};
  ClientStats stats_;
};

}  // namespace redis
