// libFuzzer target for net/proxy_protocol.h: arbitrary bytes as the start of a connection.
// Checks, beyond "no crash, no read past the input":
//  - Done: 0 < consumed <= size, within the v1/v2 bounds, and the header alone parses the same;
//    every shorter prefix of it is NeedMore, and its `more` never reaches past the header.
//  - Along the prefixes of any input: NeedMore, then at most one change, to Error or to Done
//    (which then stays Done with the same consumed).
//  - A smaller max_v2_length never accepts more than the default does.
//  - The input taken as a v1 address: accepted exactly when inet_pton accepts it, printed as
//    inet_ntop prints it.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/proxy_protocol.h"

namespace {

using net::ProxyResult;
using net::ProxyStatus;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool same(const ProxyResult& a, const ProxyResult& b) {
  return a.status == b.status && a.consumed == b.consumed && a.header.version == b.header.version &&
         a.header.local == b.header.local && a.header.src_ip == b.header.src_ip && a.header.dst_ip == b.header.dst_ip &&
         a.header.src_port == b.header.src_port && a.header.dst_port == b.header.dst_port &&
         a.header.tlvs == b.header.tlvs;
}

void check_result(std::string_view in, const ProxyResult& r) {
  switch (r.status) {
    case ProxyStatus::NeedMore:
      check(r.consumed == 0 && r.error.empty() && r.more >= 1);
      break;
    case ProxyStatus::Error:
      check(r.consumed == 0 && !r.error.empty() && r.more == 0);
      break;
    case ProxyStatus::Done:
      check(r.consumed > 0 && r.consumed <= in.size() && r.error.empty() && r.more == 0);
      check(r.header.version == 1 || r.header.version == 2);
      check(r.header.version == 2 || r.consumed <= 107);
      check(r.header.version == 1 || r.consumed <= 16 + 4096);
      check(r.header.version == 2 || r.header.tlvs.empty());
      check(r.header.local == r.header.src_ip.empty() && r.header.local == r.header.dst_ip.empty());
      break;
  }
}

// The input (no separators in it) as the source address of a v1 line.
void check_address(std::string_view in) {
  if (in.size() > 60 || in.find_first_of(std::string_view(" \r\n\0", 4)) != std::string_view::npos) return;
  std::string text(in);
  for (int family : {AF_INET, AF_INET6}) {
    unsigned char buf[16];
    bool pton = inet_pton(family, text.c_str(), buf) == 1;
    std::string line = std::string(family == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ") + text +
                       (family == AF_INET ? " 127.0.0.1 1 2\r\n" : " ::1 1 2\r\n");
    ProxyResult r = net::parse_proxy_header(line);
    check_result(line, r);
    if (line.size() > 107) continue;
    check((r.status == ProxyStatus::Done) == pton);
    if (pton) {
      char printed[INET6_ADDRSTRLEN];
      check(inet_ntop(family, buf, printed, sizeof printed) != nullptr);
      check(r.header.src_ip == printed);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ProxyResult r = net::parse_proxy_header(in);
  check_result(in, r);

  if (r.status == ProxyStatus::Done) {
    std::string_view hdr = in.substr(0, r.consumed);
    check(same(net::parse_proxy_header(hdr), r));
    for (size_t k = 0; k < r.consumed; ++k) {
      ProxyResult p = net::parse_proxy_header(hdr.substr(0, k));
      check(p.status == ProxyStatus::NeedMore && k + p.more <= r.consumed);
    }
  }

  // Prefixes: every one for short inputs, a sample of the rest for long ones.
  ProxyStatus seen = ProxyStatus::NeedMore;
  size_t seen_consumed = 0;
  for (size_t k = 0; k <= size; k += (k < 256 ? 1 : 1 + size / 64)) {
    ProxyResult p = net::parse_proxy_header(in.substr(0, k));
    check_result(in.substr(0, k), p);
    if (seen != ProxyStatus::NeedMore) check(p.status == seen && p.consumed == seen_consumed);
    seen = p.status;
    seen_consumed = p.consumed;
  }
  if (seen != ProxyStatus::NeedMore) check(r.status == seen && r.consumed == seen_consumed);

  ProxyResult small = net::parse_proxy_header(in, 64);
  check_result(in, small);
  if (small.status == ProxyStatus::Done) check(same(small, r));
  if (r.status == ProxyStatus::Error) check(small.status == ProxyStatus::Error);

  check_address(in);
  return 0;
}
