// libFuzzer target for the one MIME parse the filters share on every message (GMime,
// mime::Message::parse): header unfolding and RFC 2047 decoding, the decoded text of every text/*
// part at any depth (rules), and the decoded binary parts (ocr). Must never crash, must respect
// its output limits whatever the input, asking for the structure must not change what is kept,
// and a headers-only parse (which reads only the cut header block) must give the same headers as
// the full parse.
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
  if (m.text().size() > limits.text_octets) __builtin_trap();
  size_t bytes = 0;
  for (const auto& p : m.binary_parts()) bytes += p.data.size();
  if (m.binary_parts().size() > limits.max_parts || bytes > limits.part_octets) __builtin_trap();
  // Asking for the structure (the message-level MIME limit) never changes what is kept, and the
  // counts stay within what the walk can see.
  filters::mime::Limits counted = limits;
  counted.max_depth = size ? 1 + data[size / 2] % filters::mime::kMaxDepth : 1;
  counted.max_nodes = size ? 1 + data[size / 3] % 64 : 1;
  auto c = filters::mime::Message::parse(msg, counted);
  if (c.text() != m.text() || c.binary_parts().size() != m.binary_parts().size()) __builtin_trap();
  if (c.structure().depth > filters::mime::kMaxDepth + 1 || c.structure().nodes < m.structure().nodes) __builtin_trap();
  filters::mime::Limits headers_only;
  headers_only.header_octets = limits.header_octets;
  auto h = filters::mime::Message::parse(msg, headers_only);
  if (h.headers().size() != m.headers().size()) __builtin_trap();
  for (size_t i = 0; i < h.headers().size(); ++i)
    if (h.headers()[i].name != m.headers()[i].name || h.headers()[i].value != m.headers()[i].value) __builtin_trap();
  return 0;
}
