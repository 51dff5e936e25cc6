// libFuzzer target for the MIME walks the filters run on every message (GMime): header unfolding
// and RFC 2047 decoding, the decoded text of every text/* part at any depth (rules), and the decoded
// binary parts (ocr). Must never crash, and must respect its output limits whatever the input.
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
  size_t max_parts = size ? 1 + data[size - 1] % 8 : 1;
  auto parts = filters::mime::binary_parts(msg, max_parts, limit);
  size_t bytes = 0;
  for (const auto& p : parts) bytes += p.data.size();
  if (parts.size() > max_parts || bytes > limit) __builtin_trap();
  return 0;
}
