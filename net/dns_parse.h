// DNS answers and the response parser, apart from the resolver: pure code with no Asio, so the
// fuzz target (tests/fuzz/dns_fuzz.cc) builds with any compiler the fuzz build uses.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace net {

enum class DnsType { A = 1, PTR = 12, MX = 15, TXT = 16, AAAA = 28 };
enum class DnsStatus { Ok, NxDomain, NoData, Timeout, Failure };
std::string_view dns_status_name(DnsStatus s);  // "ok", "nxdomain", "nodata", "timeout", "failure"

struct DnsAnswer {
  DnsStatus status = DnsStatus::Failure;
  std::vector<uint32_t> a;        // A records, host byte order
  std::vector<std::string> txt;   // one string per TXT record (its character-strings joined)
  std::vector<std::array<uint8_t, 16>> aaaa;  // AAAA records, network byte order
  struct Mx {
    uint16_t preference = 0;
    std::string exchange;         // lower-case as sent, no trailing dot ("" for the root, RFC 7505)
  };
  std::vector<Mx> mx;             // MX records in answer order
  std::vector<std::string> ptr;   // PTR target names, no trailing dot
  uint32_t ttl = 0;               // smallest TTL of the records; negative answers: the SOA's negative TTL
  std::string error;              // Timeout / Failure: what went wrong
  bool server_answered = true;    // Failure: false when no server answered at all (unreachable), true for an
                                  // error answer (SERVFAIL, REFUSED, ...); Timeout is never an answer
};

// Parses a DNS response (pure, bounds-checked): the answer records of `type` with the smallest
// TTL; rcode NXDOMAIN -> NxDomain, no record of `type` -> NoData, other rcodes -> Failure; for a
// negative answer the TTL is min(SOA TTL, SOA minimum) from the authority section (0 if none).
// Names inside MX and PTR data are decoded with their compression pointers followed (backwards
// only, bounded); a record whose name cannot be decoded is skipped, as is an A/AAAA record of the
// wrong length.
DnsAnswer parse_response(const unsigned char* buf, size_t len, DnsType type);

// Decodes the domain name at `pos` of the message (pure, bounds-checked): labels joined by '.',
// no trailing dot, "" for the root; pointers must point backwards; false for a malformed name or
// one longer than 255 octets.
bool read_name(const unsigned char* buf, size_t len, size_t pos, std::string& out);

}  // namespace net
