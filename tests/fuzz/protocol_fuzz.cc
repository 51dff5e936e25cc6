// libFuzzer target for smtp::Protocol: arbitrary bytes, split at arbitrary points, with
// decisions derived from the input; the engine must never crash, hang or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smtp/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  smtp::Settings s;
  s.message_size = 4096;
  s.data_line_length = 1024;
  s.recipients = 4;
  smtp::Protocol p(s);
  p.greet(core::replies::greeting("fuzz"));
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t step = size ? (data[0] % 17) + 1 : 1;
  unsigned choice = 0;
  for (size_t off = 0; off < in.size(); off += step) {
    p.receive(in.substr(off, step));
    for (int guard = 0; guard < 10000; ++guard) {
      smtp::Event e = p.next();
      if (e == smtp::Event::NeedInput || e == smtp::Event::Close) break;
      switch (++choice % 5) {
        case 0: p.reject(core::replies::relay_denied()); break;
        case 1: p.disconnect(core::replies::shutting_down()); break;
        default: p.accept(); break;
      }
    }
    p.output().clear();
    if (p.closing()) break;
  }
  return 0;
}
