// DNS answers and the response parser, apart from the resolver: pure code with no Asio, so the
// fuzz target (tests/fuzz/dns_fuzz.cc) builds with any compiler the fuzz build uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace net {

enum class DnsType { A = 1, TXT = 16 };
enum class DnsStatus { Ok, NxDomain, NoData, Timeout, Failure };
std::string_view dns_status_name(DnsStatus s);  // "ok", "nxdomain", "nodata", "timeout", "failure"

struct DnsAnswer {
  DnsStatus status = DnsStatus::Failure;
  std::vector<uint32_t> a;        // A records, host byte order
  std::vector<std::string> txt;   // one string per TXT record (its character-strings joined)
  uint32_t ttl = 0;               // smallest TTL of the records; negative answers: the SOA's negative TTL
  std::string error;              // Timeout / Failure: what went wrong
};

// Parses a DNS response (pure, bounds-checked): the answer records of `type` with the smallest
// TTL; rcode NXDOMAIN -> NxDomain, no record of `type` -> NoData, other rcodes -> Failure; for a
// negative answer the TTL is min(SOA TTL, SOA minimum) from the authority section (0 if none).
DnsAnswer parse_response(const unsigned char* buf, size_t len, DnsType type);

}  // namespace net
