// QMQP value types shared by the client, the framing code and the config: servers, timeouts,
// envelope and outcome. No Asio here, so config and parsers can use them without the I/O layer.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qmqp {

struct Server {
  std::string host;  // numeric IPv4/IPv6 address or a name resolved asynchronously
  uint16_t port = 628;
  std::string name() const;  // "host:port" ("[v6]:port")
};

struct ClientConfig {
  std::vector<Server> servers;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds answer_timeout{60'000};  // from the end of the request to the answer + close
  size_t max_answer = 4096;                          // longest answer netstring accepted
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
