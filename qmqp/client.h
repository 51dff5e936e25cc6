// QMQP client (cr.yp.to/proto/qmqp.html), qmail-qmqpc style: one connection per message.
// Tries the configured servers in order; a refused or timed-out connect moves on to the next one.
// Once the request has been sent, no other server is tried (that could deliver twice): a missing
// or broken answer is a temporary failure. The client reads the answer and then the server's
// close (bounded by the answer timeout), so no socket is left behind in CLOSE_WAIT.
#pragma once
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/reply.h"

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

// Relays one message. `header` and `body` are sent back to back as the message netstring,
// both already in QMQP form: LF line endings, dot-unstuffed. Runs on the caller's executor;
// never blocks the thread.
boost::asio::awaitable<Outcome> relay(const ClientConfig& cfg, const Envelope& env,
                                      std::string_view header, std::string_view body);

// K -> 250 2.0.0, Z -> 451, D -> 554, Unavailable/ProtocolError -> 451 4.4.x (see core/reply.h).
core::Reply to_reply(const Outcome& o);

}  // namespace qmqp
