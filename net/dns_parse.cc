// DNS response parsing: bounds-checked, compression pointers end a name and are never followed.
#include "net/dns_parse.h"

#include <algorithm>

namespace net {

std::string_view dns_status_name(DnsStatus s) {
  switch (s) {
    case DnsStatus::Ok: return "ok";
    case DnsStatus::NxDomain: return "nxdomain";
    case DnsStatus::NoData: return "nodata";
    case DnsStatus::Timeout: return "timeout";
    case DnsStatus::Failure: return "failure";
  }
  return "?";
}

// ------------------------------------------------------------------------------------------------
// response parsing
namespace {

struct Reader {
  const unsigned char* p;
  size_t n;
  size_t i = 0;
  bool ok = true;

  bool need(size_t k) { return ok = ok && i + k <= n; }
  uint16_t u16() {
    if (!need(2)) return 0;
    uint16_t v = static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
    i += 2;
    return v;
  }
  uint32_t u32() {
    uint32_t hi = u16();
    return hi << 16 | u16();
  }
  void skip(size_t k) {
    if (need(k)) i += k;
  }
  void skip_name() {
    for (int labels = 0; ok && labels < 128; ++labels) {
      if (!need(1)) return;
      unsigned len = p[i];
      if ((len & 0xC0) == 0xC0) return skip(2);  // compression pointer ends the name
      if (len & 0xC0) {
        ok = false;
        return;
      }
      ++i;
      if (len == 0) return;
      skip(len);
    }
    ok = false;
  }
};

struct Record {
  uint16_t type = 0;
  uint32_t ttl = 0;
  size_t rdata = 0, rdlen = 0;  // offsets into the message
};

Record read_record(Reader& r) {
  Record rec;
  r.skip_name();
  rec.type = r.u16();
  r.u16();  // class
  rec.ttl = r.u32();
  rec.rdlen = r.u16();
  rec.rdata = r.i;
  r.skip(rec.rdlen);
  return rec;
}

std::string txt_strings(const unsigned char* p, size_t len) {
  std::string out;
  for (size_t i = 0; i < len;) {
    size_t k = p[i++];
    if (i + k > len) break;
    out.append(reinterpret_cast<const char*>(p + i), k);
    i += k;
  }
  return out;
}

// min(SOA TTL, SOA minimum) from the authority section, 0 when there is no SOA.
uint32_t negative_ttl(Reader& r, unsigned nscount) {
  for (unsigned k = 0; k < nscount && r.ok; ++k) {
    Record rec = read_record(r);
    if (!r.ok || rec.type != 6) continue;
    Reader soa{r.p, rec.rdata + rec.rdlen, rec.rdata};
    soa.skip_name();
    soa.skip_name();
    soa.skip(16);  // serial, refresh, retry, expire
    uint32_t minimum = soa.u32();
    if (soa.ok) return std::min(rec.ttl, minimum);
  }
  return 0;
}

}  // namespace

DnsAnswer parse_response(const unsigned char* buf, size_t len, DnsType type) {
  DnsAnswer a;
  Reader r{buf, len};
  r.skip(2);  // id
  uint16_t flags = r.u16();
  unsigned qd = r.u16(), an = r.u16(), ns = r.u16();
  r.u16();  // arcount
  for (unsigned k = 0; k < qd && r.ok; ++k) {
    r.skip_name();
    r.skip(4);
  }
  if (!r.ok) {
    a.error = "malformed DNS response";
    return a;
  }
  unsigned rcode = flags & 0x0F;
  if (rcode != 0 && rcode != 3) {
    a.error = "DNS rcode " + std::to_string(rcode);
    return a;
  }
  bool first = true;
  for (unsigned k = 0; k < an && r.ok; ++k) {
    Record rec = read_record(r);
    if (!r.ok || rec.type != static_cast<uint16_t>(type)) continue;
    if (type == DnsType::A && rec.rdlen == 4) {
      const unsigned char* d = buf + rec.rdata;
      a.a.push_back(uint32_t{d[0]} << 24 | uint32_t{d[1]} << 16 | uint32_t{d[2]} << 8 | d[3]);
    } else if (type == DnsType::TXT) {
      a.txt.push_back(txt_strings(buf + rec.rdata, rec.rdlen));
    } else {
      continue;
    }
    a.ttl = first ? rec.ttl : std::min(a.ttl, rec.ttl);
    first = false;
  }
  if (!r.ok) {
    a = DnsAnswer{};
    a.error = "malformed DNS response";
    return a;
  }
  if (!first && rcode == 0) {
    a.status = DnsStatus::Ok;
    return a;
  }
  // NXDOMAIN with records of the type (seen from a fuzzer, not from a real server): negative, and
  // a negative answer carries no records.
  a.a.clear();
  a.txt.clear();
  a.status = rcode == 3 ? DnsStatus::NxDomain : DnsStatus::NoData;
  a.ttl = negative_ttl(r, ns);
  return a;
}

}  // namespace net
