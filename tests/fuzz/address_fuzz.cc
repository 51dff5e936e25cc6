// libFuzzer target for the RFC 5321 path parser and the relay-syntax check.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smtp/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (auto kind : {smtp::PathKind::Sender, smtp::PathKind::Recipient}) {
    smtp::PathResult r = smtp::parse_path(in, kind);
    if (r.ok) {
      (void)smtp::has_routing_syntax(r.ok->address);
      if (r.ok->address.str().size() > size) __builtin_trap();  // never invents bytes
    }
  }
  return 0;
}
