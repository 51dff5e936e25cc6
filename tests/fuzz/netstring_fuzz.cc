// libFuzzer target for the QMQP answer path: incremental netstring decoding at every split,
// then answer parsing. Split decoding must agree with one-shot decoding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qmqp/netstring.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  qmqp::NetstringDecoder whole(4096);
  std::string_view in = all;
  auto s1 = whole.feed(in);
  qmqp::NetstringDecoder bytes(4096);
  auto s2 = qmqp::NetstringDecoder::State::NeedMore;
  for (size_t i = 0; i < size && s2 == qmqp::NetstringDecoder::State::NeedMore; ++i) {
    std::string_view one = all.substr(i, 1);
    s2 = bytes.feed(one);
  }
  if (s1 != s2) __builtin_trap();
  if (s1 == qmqp::NetstringDecoder::State::Done) {
    if (whole.payload() != bytes.payload()) __builtin_trap();
    (void)qmqp::parse_answer(whole.payload());
  }
  return 0;
}
