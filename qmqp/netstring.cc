// Netstring encoding, QMQP request framing and answer parsing; the decoder accepts only canonical
// netstrings ("<len>:<bytes>,", no leading zeros, len <= max_len). No I/O here.
#include "qmqp/netstring.h"

#include <algorithm>

namespace qmqp {

std::string netstring(std::string_view payload) {
  std::string out = std::to_string(payload.size());
  out += ':';
  out += payload;
  out += ',';
  return out;
}

Frame frame_request(const Envelope& env, size_t message_len) {
  std::string open_message = std::to_string(message_len) + ":";
  std::string rest = "," + netstring(env.sender);
  for (const std::string& rcpt : env.recipients) rest += netstring(rcpt);
  size_t outer_len = open_message.size() + message_len + rest.size();
  return {std::to_string(outer_len) + ":" + open_message, rest + ","};
}

NetstringDecoder::State NetstringDecoder::feed(std::string_view& in) {
  auto fail = [this](const char* why) {
    error_ = why;
    return state_ = State::Error;
  };
  while (state_ == State::NeedMore && !in.empty()) {
    if (in_length_) {
      char c = in.front();
      in.remove_prefix(1);
      if (c == ':') {
        if (digits_ == 0) return fail("netstring length missing");
        in_length_ = false;
        payload_.reserve(len_);
        continue;
      }
      if (c < '0' || c > '9') return fail("non-digit in netstring length");
      if (digits_ == 1 && len_ == 0) return fail("leading zero in netstring length");
      size_t d = static_cast<size_t>(c - '0');
      if (len_ > max_len_ / 10 || len_ * 10 + d > max_len_) return fail("netstring too long");
      len_ = len_ * 10 + d;
      ++digits_;
    } else if (payload_.size() < len_) {
      size_t n = std::min(len_ - payload_.size(), in.size());
      payload_.append(in.substr(0, n));
      in.remove_prefix(n);
    } else {
      char c = in.front();
      in.remove_prefix(1);
      if (c != ',') return fail("netstring missing ','");
      state_ = State::Done;
    }
  }
  return state_;
}

Outcome parse_answer(std::string_view payload) {
  if (payload.empty()) return {Status::ProtocolError, "empty answer", ""};
  std::string text(payload.substr(1));
  switch (payload.front()) {
    case 'K': return {Status::Accepted, text, ""};
    case 'Z': return {Status::TempFail, text, ""};
    case 'D': return {Status::PermFail, text, ""};
    default: return {Status::ProtocolError, "unknown answer code", ""};
  }
}

}  // namespace qmqp
