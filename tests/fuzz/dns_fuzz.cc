// libFuzzer target for net::parse_response (net/dns_parse.h): arbitrary bytes as a DNS response, parsed
// for A and for TXT. Beyond "no crash, no read past the input, no UB":
//  - the answer is what an independent, deliberately plain walk of the same message gives: same
//    status, same A records in order, same TXT strings, same TTL (Ok: the smallest TTL of the
//    records of the type, so it is <= every one of them and equal to one; NxDomain/NoData: the
//    first well-formed SOA's min(TTL, minimum) in the authority section, else 0);
//  - Failure carries an error and no records; the others carry no error; the parser never says
//    Timeout; only Ok carries records; no more records than the header's answer count;
//  - a TXT string is never longer than the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "net/dns_parse.h"

namespace {

using net::DnsAnswer;
using net::DnsStatus;
using net::DnsType;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// The reference walk: index arithmetic on the whole message, written independently of net/dns.cc.
struct Ref {
  const uint8_t* p;
  size_t n;

  bool name(size_t& i) const {  // compression pointers end a name and are not followed
    for (int labels = 0; labels < 128; ++labels) {
      if (i >= n) return false;
      unsigned c = p[i];
      if (c >= 0xC0) {
        if (n - i < 2) return false;
        i += 2;
        return true;
      }
      if (c >= 0x40) return false;  // 0x40 / 0x80: extended label types, refused
      if (c == 0) {
        i += 1;
        return true;
      }
      if (n - i < 1 + size_t{c}) return false;
      i += 1 + c;
    }
    return false;
  }
  uint32_t be(size_t i, int bytes) const {
    uint32_t v = 0;
    for (int k = 0; k < bytes; ++k) v = v << 8 | p[i + k];
    return v;
  }
  struct Rr {
    uint16_t type;
    uint32_t ttl;
    size_t rdata, rdlen;
  };
  bool record(size_t& i, Rr& rr) const {
    if (!name(i) || n - i < 10) return false;
    rr.type = static_cast<uint16_t>(be(i, 2));
    rr.ttl = be(i + 4, 4);
    rr.rdlen = be(i + 8, 2);
    rr.rdata = i + 10;
    if (n - rr.rdata < rr.rdlen) return false;
    i = rr.rdata + rr.rdlen;
    return true;
  }

  DnsAnswer parse(DnsType type) const {
    DnsAnswer out;
    if (n < 12) return out;  // Failure
    unsigned rcode = p[3] & 0x0F;
    size_t qd = be(4, 2), an = be(6, 2), ns = be(8, 2);
    size_t i = 12;
    for (size_t k = 0; k < qd; ++k)
      if (!name(i) || n - i < 4) return out;
      else i += 4;
    if (rcode != 0 && rcode != 3) return out;
    std::vector<uint32_t> a;
    std::vector<std::string> txt;
    std::vector<uint32_t> ttls;
    for (size_t k = 0; k < an; ++k) {
      Rr rr{};
      if (!record(i, rr)) return out;
      if (rr.type != static_cast<uint16_t>(type)) continue;
      if (type == DnsType::A) {
        if (rr.rdlen != 4) continue;
        a.push_back(be(rr.rdata, 4));
      } else {
        std::string s;
        for (size_t j = rr.rdata, end = rr.rdata + rr.rdlen; j < end;) {
          size_t k2 = p[j];
          if (end - j - 1 < k2) break;
          s.append(reinterpret_cast<const char*>(p + j + 1), k2);
          j += 1 + k2;
        }
        txt.push_back(std::move(s));
      }
      ttls.push_back(rr.ttl);
    }
    if (rcode == 0 && !ttls.empty()) {
      out.status = DnsStatus::Ok;
      out.a = std::move(a);
      out.txt = std::move(txt);
      out.ttl = ttls[0];
      for (uint32_t t : ttls) out.ttl = std::min(out.ttl, t);
      return out;
    }
    out.status = rcode == 3 ? DnsStatus::NxDomain : DnsStatus::NoData;
    for (size_t k = 0; k < ns; ++k) {
      Rr rr{};
      if (!record(i, rr)) break;
      if (rr.type != 6) continue;
      Ref soa{p, rr.rdata + rr.rdlen};  // names inside the SOA must end within its rdata
      size_t j = rr.rdata;
      if (!soa.name(j) || !soa.name(j) || soa.n - j < 20) continue;
      out.ttl = std::min(rr.ttl, be(j + 16, 4));
      break;
    }
    return out;
  }
};

void check_answer(const uint8_t* data, size_t size, DnsType type) {
  DnsAnswer got = net::parse_response(data, size, type);
  DnsAnswer want = Ref{data, size}.parse(type);

  check(got.status != DnsStatus::Timeout);
  check(got.status == want.status);
  check((got.status == DnsStatus::Failure) == !got.error.empty());
  if (got.status != DnsStatus::Ok) check(got.a.empty() && got.txt.empty());
  if (got.status == DnsStatus::Failure) check(got.ttl == 0);
  check(got.a == want.a);
  check(got.txt == want.txt);
  check(got.ttl == want.ttl);
  if (type == DnsType::A) check(got.txt.empty());
  if (type == DnsType::TXT) check(got.a.empty());

  if (got.status == DnsStatus::Ok) {
    check(!got.a.empty() || !got.txt.empty());
    size_t an = size >= 8 ? (size_t{data[6]} << 8 | data[7]) : 0;
    check(got.a.size() + got.txt.size() <= an);
  }
  for (const auto& t : got.txt) check(t.size() <= size);
}

// AAAA, MX, PTR (the SPF lookups): no reference walk, the invariants only — the status is the
// A parse's when both are negative or failed, only Ok carries records, no more records than the
// answer count, names no longer than 254 octets and never longer than the input.
void check_names(const uint8_t* data, size_t size, DnsType type) {
  DnsAnswer a = net::parse_response(data, size, type);
  size_t n = a.aaaa.size() + a.mx.size() + a.ptr.size();
  check(a.a.empty() && a.txt.empty());
  check(a.status != DnsStatus::Timeout);
  check(a.status == DnsStatus::Ok ? n > 0 : n == 0);
  check(a.status == DnsStatus::Failure ? !a.error.empty() : a.error.empty());
  if (size >= 12) check(n <= (size_t{data[6]} << 8 | data[7]));
  // A name is at most 254 characters. It is NOT bounded by the message size: a compression
  // pointer may point back into labels of the same name's earlier run (each jump goes strictly
  // backward, so it ends), and a 172-byte answer gave a 174-character name (fuzz_dns_smoke, CI).
  for (const auto& m : a.mx) check(m.exchange.size() <= 254);
  for (const auto& p : a.ptr) check(p.size() <= 254);
  DnsAnswer ref = net::parse_response(data, size, DnsType::A);
  if (a.status != DnsStatus::Ok && ref.status != DnsStatus::Ok) check(a.status == ref.status);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_answer(data, size, DnsType::A);
  check_answer(data, size, DnsType::TXT);
  check_names(data, size, DnsType::AAAA);
  check_names(data, size, DnsType::MX);
  check_names(data, size, DnsType::PTR);
  return 0;
}
