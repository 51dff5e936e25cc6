// PROXY protocol header parsing. v1: a token scanner that judges a whole line or the beginning of
// one (is there a completion within 107 bytes?). v2: fixed offsets, then a TLV walk over the bytes
// seen so far, so a bad TLV is refused before the rest of the header arrives.
#include "net/proxy_protocol.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>

namespace net {
namespace {

constexpr size_t kV1MaxLine = 107;  // including the CRLF
constexpr size_t kV1MinLine = 15;   // "PROXY UNKNOWN\r\n", the shortest header of either version
constexpr std::string_view kV1Magic = "PROXY";
constexpr std::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr size_t kV2Fixed = 16;  // signature, ver|cmd, fam|proto, 2-byte length
constexpr uint8_t kTlvCrc32c = 0x03;

// `more`: how many more bytes certainly belong to the header (at least one).
ProxyResult need_more(size_t more) {
  ProxyResult r;
  r.more = std::max<size_t>(more, 1);
  return r;
}

ProxyResult fail(std::string what) {
  ProxyResult r;
  r.status = ProxyStatus::Error;
  r.error = std::move(what);
  return r;
}

std::string hex_byte(uint8_t b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[b >> 4] + kDigits[b & 0xF];
}

// ---------------------------------------------------------------------------------------------
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as RFC 4960 appendix B.

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// CRC-32C of `data` with the 4 bytes at `zero_at` taken as zeros.
uint32_t crc32c_zeroing(std::string_view data, size_t zero_at) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < data.size(); ++i) {
    uint8_t b = (i >= zero_at && i < zero_at + 4) ? 0 : static_cast<uint8_t>(data[i]);
    c = kCrc32cTable[(c ^ b) & 0xFF] ^ (c >> 8);
  }
  return c ^ 0xFFFFFFFFu;
}

// ---------------------------------------------------------------------------------------------
// v1 token scanners. Each judges `s` either as a whole token (partial = false) or as the
// beginning of one (partial = true: more characters may follow). For a valid beginning,
// *min_extra gets the fewest characters that complete it; a whole valid token fills *out.

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Four decimal numbers 0-255 joined by single dots, no leading zeros.
bool scan_ipv4(std::string_view s, bool partial, uint8_t* out, size_t* min_extra) {
  int part = 0;
  int digits = 0;
  unsigned value = 0;
  for (char c : s) {
    if (c == '.') {
      if (digits == 0 || part == 3) return false;
      if (out) out[part] = static_cast<uint8_t>(value);
      ++part;
      digits = 0;
      value = 0;
    } else if (is_digit(c)) {
      if (digits == 1 && value == 0) return false;  // leading zero
      value = value * 10 + static_cast<unsigned>(c - '0');
      ++digits;
      if (value > 255) return false;
    } else {
      return false;
    }
  }
  if (partial) {
    if (min_extra) *min_extra = (digits == 0 ? 1 : 0) + static_cast<size_t>(3 - part) * 2;
    return true;
  }
  if (part != 3 || digits == 0) return false;
  if (out) out[3] = static_cast<uint8_t>(value);
  return true;
}

// RFC 4291 §2.2 text form: 1-4 hex digits per group, at most one "::" (standing for at least one
// zero group), the last 32 bits optionally as a dotted quad; 128 bits exactly.
bool scan_ipv6(std::string_view s, bool partial, uint8_t* out, size_t* min_extra) {
  std::array<uint16_t, 8> groups{};
  int n = 0;       // explicit groups so far (a dotted quad counts two)
  int dc_at = -1;  // index into groups where "::" stands, -1 if none yet
  enum class Prev { Start, Colon, DoubleColon } prev = Prev::Start;
  size_t i = 0;
  size_t extra = 0;
  auto max_groups = [&] { return dc_at >= 0 ? 7 : 8; };

  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    dc_at = 0;
    prev = Prev::DoubleColon;
    i = 2;
  } else if (!s.empty() && s[0] == ':') {
    if (!(partial && s.size() == 1)) return false;
    if (min_extra) *min_extra = 1;
    return true;
  }

  bool complete = false;
  for (;;) {
    // At the start of a group.
    if (i == s.size()) {
      if (prev == Prev::DoubleColon) {
        complete = true;
        extra = 0;
      } else if (!partial) {
        return false;
      } else {
        extra = prev == Prev::Start ? 2 : 1;  // "::", or one more hex digit
      }
      break;
    }
    size_t start = i;
    unsigned value = 0;
    while (i < s.size() && i - start < 5 && hex_value(s[i]) >= 0) value = value * 16 + hex_value(s[i++]);
    size_t digits = i - start;
    if (digits == 0 || digits > 4) return false;
    if (i < s.size() && s[i] == '.') {  // the last 32 bits as a dotted quad
      if (n + 2 > max_groups() || (dc_at < 0 && n + 2 != 8)) return false;
      uint8_t v4[4];
      size_t e4 = 0;
      if (!scan_ipv4(s.substr(start), partial, v4, &e4)) return false;
      if (!partial) {
        groups[n++] = static_cast<uint16_t>(v4[0] << 8 | v4[1]);
        groups[n++] = static_cast<uint16_t>(v4[2] << 8 | v4[3]);
        complete = true;
      }
      extra = e4;
      break;
    }
    if (n + 1 > max_groups()) return false;
    groups[n++] = static_cast<uint16_t>(value);
    if (i == s.size()) {
      bool enough = dc_at >= 0 || n == 8;
      if (!partial && !enough) return false;
      complete = enough;
      extra = enough ? 0 : 2;  // "::" closes it
      break;
    }
    if (s[i] != ':') return false;
    if (i + 1 < s.size() && s[i + 1] == ':') {
      if (dc_at >= 0 || n > 7) return false;
      dc_at = n;
      prev = Prev::DoubleColon;
      i += 2;
    } else {
      if (n >= max_groups()) return false;
      prev = Prev::Colon;
      i += 1;
    }
  }
  if (partial) {
    if (min_extra) *min_extra = extra;
    return true;
  }
  if (!complete) return false;
  if (out) {
    std::array<uint16_t, 8> full{};
    if (dc_at < 0) {
      full = groups;
    } else {
      int tail = n - dc_at;
      for (int k = 0; k < dc_at; ++k) full[k] = groups[k];
      for (int k = 0; k < tail; ++k) full[8 - tail + k] = groups[dc_at + k];
    }
    for (int k = 0; k < 8; ++k) {
      out[2 * k] = static_cast<uint8_t>(full[k] >> 8);
      out[2 * k + 1] = static_cast<uint8_t>(full[k] & 0xFF);
    }
  }
  return true;
}

// Decimal 0-65535, no sign, no leading zeros.
bool scan_port(std::string_view s, bool partial, uint16_t* out, size_t* min_extra) {
  if (s.empty()) {
    if (!partial) return false;
    if (min_extra) *min_extra = 1;
    return true;
  }
  if (s.size() > 1 && s[0] == '0') return false;
  unsigned value = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) return false;
  }
  if (out) *out = static_cast<uint16_t>(value);
  if (min_extra) *min_extra = 0;
  return true;
}

std::string ntop(int family, const uint8_t* addr) {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(family, addr, buf, sizeof buf)) return {};
  return buf;
}

bool starts(std::string_view whole, std::string_view part) { return whole.substr(0, part.size()) == part; }

// Judges a v1 line without its CRLF: whole (partial = false) or the beginning of one. On success
// fills *h (whole line) or *min_extra (fewest bytes to complete the line, CRLF not counted).
bool scan_v1_line(std::string_view line, bool partial, ProxyHeader* h, size_t* min_extra, std::string* err) {
  *min_extra = 0;
  size_t sp = line.find(' ');
  std::string_view magic = line.substr(0, sp);
  if (sp == std::string_view::npos) {
    if (partial && starts(kV1Magic, magic)) return true;
    *err = magic == kV1Magic ? "PROXY v1: protocol missing" : "PROXY v1: no \"PROXY \" at the start";
    return false;
  }
  if (magic != kV1Magic) {
    *err = "PROXY v1: no \"PROXY \" at the start";
    return false;
  }
  std::string_view rest = line.substr(sp + 1);
  sp = rest.find(' ');
  std::string_view proto = rest.substr(0, sp);
  if (proto == "UNKNOWN") {  // anything up to the CRLF is ignored
    h->version = 1;
    h->local = true;
    return true;
  }
  if (sp == std::string_view::npos) {
    if (partial && (starts("TCP4", proto) || starts("TCP6", proto) || starts("UNKNOWN", proto))) return true;
    *err = (proto == "TCP4" || proto == "TCP6") ? "PROXY v1: addresses and ports missing"
                                                 : "PROXY v1: unknown protocol (not TCP4, TCP6 or UNKNOWN)";
    return false;
  }
  bool v6;
  if (proto == "TCP4") {
    v6 = false;
  } else if (proto == "TCP6") {
    v6 = true;
  } else {
    *err = "PROXY v1: unknown protocol (not TCP4, TCP6 or UNKNOWN)";
    return false;
  }
  static constexpr const char* kField[] = {"source address", "destination address", "source port",
                                           "destination port"};
  const size_t min_len[] = {v6 ? 2u : 7u, v6 ? 2u : 7u, 1u, 1u};  // "::" / "0.0.0.0" / "0"
  uint8_t addr[2][16] = {};
  uint16_t port[2] = {};
  std::string_view f = rest.substr(sp + 1);
  for (int idx = 0; idx < 4; ++idx) {
    sp = f.find(' ');
    std::string_view tok = f.substr(0, sp);
    bool ends_line = sp == std::string_view::npos;
    if (ends_line && partial) {
      size_t extra = 0;
      bool ok = idx < 2 ? (v6 ? scan_ipv6(tok, true, nullptr, &extra) : scan_ipv4(tok, true, nullptr, &extra))
                        : scan_port(tok, true, nullptr, &extra);
      if (!ok) {
        *err = std::string("PROXY v1: bad ") + kField[idx];
        return false;
      }
      for (int k = idx + 1; k < 4; ++k) extra += 1 + min_len[k];
      *min_extra = extra;
      return true;
    }
    if (ends_line && idx < 3) {
      *err = std::string("PROXY v1: ") + kField[idx + 1] + " missing";
      return false;
    }
    if (!ends_line && idx == 3) {
      *err = "PROXY v1: unexpected data after the destination port";
      return false;
    }
    bool ok = idx < 2 ? (v6 ? scan_ipv6(tok, false, addr[idx], nullptr) : scan_ipv4(tok, false, addr[idx], nullptr))
                      : scan_port(tok, false, &port[idx - 2], nullptr);
    if (!ok) {
      *err = std::string("PROXY v1: bad ") + kField[idx] + (v6 ? " for TCP6" : " for TCP4");
      return false;
    }
    if (!ends_line) f = f.substr(sp + 1);
  }
  if (partial) return true;  // a whole line judged as a beginning: nothing missing
  int family = v6 ? AF_INET6 : AF_INET;
  h->version = 1;
  h->local = false;
  h->src_ip = ntop(family, addr[0]);
  h->dst_ip = ntop(family, addr[1]);
  h->src_port = port[0];
  h->dst_port = port[1];
  return true;
}

ProxyResult parse_v1(std::string_view in) {
  size_t window = std::min(in.size(), kV1MaxLine);
  size_t cr = std::string_view::npos;
  for (size_t i = 0; i < window; ++i) {
    if (in[i] == '\n') return fail("PROXY v1: LF without CR");
    if (in[i] == '\r') {
      cr = i;
      break;
    }
  }
  ProxyResult r;
  size_t extra = 0;
  if (cr == std::string_view::npos) {
    if (in.size() + 2 > kV1MaxLine) return fail("PROXY v1: no CRLF within 107 bytes");
    if (!scan_v1_line(in, true, &r.header, &extra, &r.error)) return fail(std::move(r.error));
    if (in.size() + extra + 2 > kV1MaxLine) return fail("PROXY v1: line cannot end within 107 bytes");
    size_t shortest = in.size() < kV1MinLine ? kV1MinLine - in.size() : 0;
    return need_more(std::max(shortest, extra + 2));  // the fewest characters completing the line, and its CRLF
  }
  if (cr + 2 > kV1MaxLine) return fail("PROXY v1: no CRLF within 107 bytes");
  if (!scan_v1_line(in.substr(0, cr), false, &r.header, &extra, &r.error)) return fail(std::move(r.error));
  if (cr + 1 == in.size()) return need_more(1);  // the LF is still to come
  if (in[cr + 1] != '\n') return fail("PROXY v1: CR not followed by LF");
  r.status = ProxyStatus::Done;
  r.consumed = cr + 2;
  return r;
}

// ---------------------------------------------------------------------------------------------
// v2

ProxyResult parse_v2(std::string_view in, size_t max_length) {
  size_t n = in.size();
  size_t sig = std::min(n, kV2Signature.size());
  if (in.substr(0, sig) != kV2Signature.substr(0, sig)) return fail("PROXY v2: bad signature");
  if (n < 13) return need_more(kV2Fixed - n);
  uint8_t ver_cmd = static_cast<uint8_t>(in[12]);
  if ((ver_cmd >> 4) != 2) return fail("PROXY v2: version " + std::to_string(ver_cmd >> 4) + ", not 2");
  unsigned command = ver_cmd & 0x0F;
  if (command > 1) return fail("PROXY v2: unknown command " + std::to_string(command));
  bool local = command == 0;
  if (n < 14) return need_more(kV2Fixed - n);
  uint8_t fam = static_cast<uint8_t>(in[13]);
  size_t addr_len = 0;
  switch (fam) {
    case 0x00:
      if (!local) return fail("PROXY v2: UNSPEC family with the PROXY command");
      addr_len = 0;
      break;
    case 0x11:
      addr_len = 12;
      break;
    case 0x21:
      addr_len = 36;
      break;
    default:
      return fail("PROXY v2: unsupported family/protocol " + hex_byte(fam) + " (only TCP over IPv4/IPv6)");
  }
  if (n < 15) return need_more(kV2Fixed - n);
  size_t len_hi = static_cast<uint8_t>(in[14]);
  if (len_hi * 256 > max_length) return fail("PROXY v2: length above " + std::to_string(max_length));
  if (n < 16) return need_more(kV2Fixed - n);
  size_t length = len_hi * 256 + static_cast<uint8_t>(in[15]);
  if (length > max_length) return fail("PROXY v2: length " + std::to_string(length) + " above " + std::to_string(max_length));
  if (length < addr_len)
    return fail("PROXY v2: length " + std::to_string(length) + " too short for the " + std::to_string(addr_len) +
                "-byte address block");
  size_t total = kV2Fixed + length;
  bool whole = n >= total;
  std::string_view hdr = in.substr(0, std::min(n, total));

  // TLVs: judged as far as they have arrived.
  ProxyResult r;
  size_t crc_at = std::string_view::npos;
  size_t pos = kV2Fixed + addr_len;
  while (pos < total) {
    if (total - pos < 3) return fail("PROXY v2: TLV header overruns the header length");
    if (hdr.size() < pos + 3) break;
    uint8_t type = static_cast<uint8_t>(hdr[pos]);
    size_t vlen = static_cast<size_t>(static_cast<uint8_t>(hdr[pos + 1])) << 8 | static_cast<uint8_t>(hdr[pos + 2]);
    if (vlen > total - pos - 3)
      return fail("PROXY v2: TLV " + hex_byte(type) + " of length " + std::to_string(vlen) +
                  " overruns the header length");
    if (type == kTlvCrc32c) {
      if (vlen != 4) return fail("PROXY v2: CRC32C TLV of length " + std::to_string(vlen) + ", not 4");
      if (crc_at != std::string_view::npos) return fail("PROXY v2: more than one CRC32C TLV");
      crc_at = pos + 3;
    }
    if (whole) r.header.tlvs.emplace_back(type, std::string(hdr.substr(pos + 3, vlen)));
    pos += 3 + vlen;
  }
  if (!whole) return need_more(total - n);

  if (crc_at != std::string_view::npos) {
    uint32_t want = 0;
    for (int k = 0; k < 4; ++k) want = want << 8 | static_cast<uint8_t>(hdr[crc_at + k]);
    uint32_t got = crc32c_zeroing(hdr, crc_at);
    if (got != want) return fail("PROXY v2: CRC32C mismatch");
  }

  r.status = ProxyStatus::Done;
  r.consumed = total;
  r.header.version = 2;
  r.header.local = local;
  if (!local) {
    const uint8_t* a = reinterpret_cast<const uint8_t*>(hdr.data()) + kV2Fixed;
    size_t alen = fam == 0x11 ? 4 : 16;
    int family = fam == 0x11 ? AF_INET : AF_INET6;
    r.header.src_ip = ntop(family, a);
    r.header.dst_ip = ntop(family, a + alen);
    r.header.src_port = static_cast<uint16_t>(a[2 * alen] << 8 | a[2 * alen + 1]);
    r.header.dst_port = static_cast<uint16_t>(a[2 * alen + 2] << 8 | a[2 * alen + 3]);
  }
  return r;
}

}  // namespace

ProxyResult parse_proxy_header(std::string_view bytes, size_t max_v2_length) {
  if (bytes.empty()) return need_more(kV1MinLine);
  if (bytes[0] == kV2Signature[0]) return parse_v2(bytes, max_v2_length);
  if (bytes[0] == kV1Magic[0]) return parse_v1(bytes);
  return fail("not a PROXY protocol header");
}

}  // namespace net
