// Netstrings (cr.yp.to/proto/netstrings.txt) and QMQP request/answer framing — sans-I/O:
// pure functions and an incremental decoder, no sockets. Unit-tested and fuzzable.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "qmqp/types.h"

namespace qmqp {

std::string netstring(std::string_view payload);  // "5:hello,"

// The QMQP request around a message of `message_len` bytes:
//   head = "<outer len>:<message_len>:"            (outer netstring opens, message netstring opens)
//   tail = "," + netstring(sender) + netstring(rcpt)... + ","
// so that head + message + tail is exactly one well-formed request.
struct Frame {
  std::string head;
  std::string tail;
};
Frame frame_request(const Envelope& env, size_t message_len);

// Incremental decoder for one netstring. feed() consumes bytes from `in` (advancing it) until
// the netstring is complete or malformed; bytes after the final ',' are left in `in`.
class NetstringDecoder {
 public:
  enum class State { NeedMore, Done, Error };
  explicit NetstringDecoder(size_t max_len) : max_len_(max_len) {}
  State feed(std::string_view& in);
  State state() const { return state_; }
  const std::string& payload() const { return payload_; }
  const std::string& error() const { return error_; }

 private:
  size_t max_len_;
  State state_ = State::NeedMore;
  bool in_length_ = true;
  size_t digits_ = 0;
  size_t len_ = 0;
  std::string payload_;
  std::string error_;
};

// Interprets the payload of a QMQP answer netstring: first byte K, Z or D, then text.
// Anything else is Status::ProtocolError.
Outcome parse_answer(std::string_view payload);

}  // namespace qmqp
