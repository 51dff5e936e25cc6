// QMQP value types shared by the client, the framing code and the config: servers, timeouts,
// envelope and outcome. No Asio here, so config and parsers can use them without the I/O layer.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qmqp {

struct Server {
  std::string host;  // numeric IPv4/IPv6 address or a name resolved asynchronously
  uint16_t port = 628;
  std::string name() const;  // "host:port" ("[v6]:port")
};

// Passive health (qmqp/breaker.h): when a server's circuit breaker opens and when it is tried again.
struct BreakerPolicy {
  unsigned failure_threshold = 3;               // consecutive failures that open it; 0 = never opens
  std::chrono::milliseconds open_time{30'000};  // open this long, then one trial message (half-open)
};

class Breakers;

struct ClientConfig {
  std::vector<Server> servers;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds answer_timeout{60'000};  // from the end of the request to the answer (and the close, in the background)
  size_t max_answer = 4096;                          // longest answer netstring accepted
  BreakerPolicy breaker;
  std::shared_ptr<Breakers> breakers;                // per-server passive health; null = every server is always tried
};

struct Envelope {
  std::string sender;                   // may be empty (null reverse-path)
  std::vector<std::string> recipients;  // at least one
};

enum class Status {
  Accepted,       // K
  TempFail,       // Z
  PermFail,       // D
  Unavailable,    // no server could be connected to, or the request could not be sent
  ProtocolError,  // connected and sent, but no answer, a broken netstring or an unknown code
};

struct Outcome {
  Status status = Status::Unavailable;
  std::string text;    // the server's text after K/Z/D, or what went wrong
  std::string server;  // Server::name() of the server that answered (or was last tried)
};

}  // namespace qmqp
