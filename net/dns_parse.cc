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

// The RDATA of one record of `type`, appended to `a`; false when it is malformed (skipped).
bool append_record(const unsigned char* buf, size_t len, const Record& rec, DnsType type, DnsAnswer& a) {
  const unsigned char* d = buf + rec.rdata;
  switch (type) {
    case DnsType::A:
      if (rec.rdlen != 4) return false;
      a.a.push_back(uint32_t{d[0]} << 24 | uint32_t{d[1]} << 16 | uint32_t{d[2]} << 8 | d[3]);
      return true;
    case DnsType::TXT:
      a.txt.push_back(txt_strings(d, rec.rdlen));
      return true;
    case DnsType::AAAA: {
      if (rec.rdlen != 16) return false;
      std::array<uint8_t, 16> b{};
      std::copy(d, d + 16, b.begin());
      a.aaaa.push_back(b);
      return true;
    }
    case DnsType::MX: {
      DnsAnswer::Mx mx;
      if (rec.rdlen < 3) return false;
      mx.preference = static_cast<uint16_t>(d[0] << 8 | d[1]);
      // the name must lie inside the RDATA (its pointers may point anywhere before it)
      if (!read_name(buf, rec.rdata + rec.rdlen, rec.rdata + 2, mx.exchange)) return false;
      a.mx.push_back(std::move(mx));
      return true;
    }
    case DnsType::PTR: {
      std::string name;
      if (!read_name(buf, rec.rdata + rec.rdlen, rec.rdata, name)) return false;
      a.ptr.push_back(std::move(name));
      return true;
    }
  }
  return false;
}

void clear_records(DnsAnswer& a) {
  a.a.clear();
  a.txt.clear();
  a.aaaa.clear();
  a.mx.clear();
  a.ptr.clear();
}

}  // namespace

bool read_name(const unsigned char* buf, size_t len, size_t pos, std::string& out) {
  out.clear();
  size_t limit = len;  // a pointer must point before the label that holds it
  for (int jumps = 0; jumps < 64;) {
    if (pos >= limit) return false;
    unsigned c = buf[pos];
    if ((c & 0xC0) == 0xC0) {
      if (pos + 1 >= limit) return false;
      size_t target = (c & 0x3F) << 8 | buf[pos + 1];
      if (target >= pos) return false;
      limit = pos;
      pos = target;
      ++jumps;
      continue;
    }
    if (c & 0xC0) return false;
    if (c == 0) return true;
    if (pos + 1 + c > limit) return false;
    if (!out.empty()) out += '.';
    for (unsigned k = 0; k < c; ++k) {
      char ch = static_cast<char>(buf[pos + 1 + k]);
      out += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
    }
    if (out.size() > 254) return false;
    pos += 1 + c;
  }
  return false;
}

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
    if (!append_record(buf, len, rec, type, a)) continue;
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
  clear_records(a);
  a.status = rcode == 3 ? DnsStatus::NxDomain : DnsStatus::NoData;
  a.ttl = negative_ttl(r, ns);
  return a;
}

}  // namespace net
