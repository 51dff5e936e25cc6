// libFuzzer target for the one MIME parse the filters share on every message (GMime,
// mime::Message::parse): header unfolding and RFC 2047 decoding, the decoded text of every text/*
// part at any depth (rules), and the decoded binary parts (ocr). Must never crash, and must
// respect its output limits whatever the input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "filters/mime_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view msg(reinterpret_cast<const char*>(data), size);
  filters::mime::Limits limits;
  limits.header_octets = size ? 64 + data[0] * 16 : 64;
  limits.text_octets = limits.header_octets;
  limits.max_parts = size ? 1 + data[size - 1] % 8 : 1;
  limits.part_octets = limits.header_octets;
  auto m = filters::mime::Message::parse(msg, limits);
  for (const auto& h : m.headers()) (void)h.value.size();
  if (m.text().size() > limits.text_octets) __builtin_trap();
  size_t bytes = 0;
  for (const auto& p : m.binary_parts()) bytes += p.data.size();
  if (m.binary_parts().size() > limits.max_parts || bytes > limits.part_octets) __builtin_trap();
  return 0;
}
