// libFuzzer target for the MIME walk the rules filter runs on every message (GMime): header
// unfolding and RFC 2047 decoding, and the decoded text of every text/* part at any depth. Must
// never crash, and must respect its output limits whatever the input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "filters/mime_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view msg(reinterpret_cast<const char*>(data), size);
  size_t limit = size ? 64 + data[0] * 16 : 64;
  auto headers = filters::mime::headers(msg, limit);
  for (const auto& h : headers) (void)h.value.size();
  std::string text = filters::mime::body_text(msg, limit);
  if (text.size() > limit) __builtin_trap();
  return 0;
}
