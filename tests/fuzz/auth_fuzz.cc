// libFuzzer target for the AUTH exchanges (RFC 4954) of smtp::Protocol on a TLS-active session
// with AUTH offered: PLAIN with an initial response or a continuation, LOGIN's two steps, "*"
// cancels, bad base64, over-long lines, pipelined commands after AUTH — plus the strict base64
// decoder itself, whose result must re-encode to the same text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/base64.h"
#include "smtp/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto decoded = core::base64_decode(in)) {
    if (core::base64_encode(*decoded) != in) __builtin_trap();  // canonical only
  }
  smtp::Settings s;
  s.auth = true;
  s.tls_active = true;
  s.auth_failure_limit = 3;
  smtp::Protocol p(s);
  p.set_tls_active();
  p.greet(core::replies::greeting("fuzz"));
  p.receive("EHLO fuzz.test\r\n");
  size_t step = size ? (data[0] % 13) + 1 : 1;
  unsigned verdicts = size ? data[size - 1] : 0;
  for (size_t off = 0;; off += step) {
    for (int guard = 0; guard < 10000; ++guard) {
      smtp::Event e = p.next();
      if (e == smtp::Event::NeedInput || e == smtp::Event::Close) break;
      if (e == smtp::Event::Auth) {
        // The login and password the engine decoded are what the directory would see.
        volatile size_t n = p.auth_login().size() + p.auth_password().size();
        (void)n;
        if ((verdicts >>= 1) & 1) p.accept();
        else p.reject(core::replies::auth_failed());
      } else {
        p.accept();
      }
    }
    p.output().clear();
    if (p.closing() || off >= in.size()) break;
    p.receive(in.substr(off, step));
  }
  return 0;
}
