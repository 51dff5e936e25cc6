// libFuzzer target for DKIM's text parts (filters/dkim/parse.h): the input's first byte picks
// what the rest is fed to, and beyond "no crash, no UB":
//  - parse_tag_list: every name is a valid tag name; the list written back as "name=value;" parses
//    to the same map (values never hold ';', white space around them is gone);
//  - parse_signature: an accepted signature has d=, s=, a non-empty b= and bh=, h= with from, an
//    i= (when given) in d= or a subdomain, x= not before t=;
//  - parse_key: an accepted key of type rsa/ed25519 with p= decoded (empty only for "p=");
//  - canon_header (for a valid field name) / canon_body: relaxed output has no tab, no space before a line end, ends with
//    CRLF (or is empty, for a body), and canonicalising again changes nothing (both methods).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "filters/dkim/parse.h"

namespace {

namespace dkim = filters::dkim;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool name_ok(const std::string& n) {
  if (n.empty() || !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z'))) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

void tag_list(std::string_view in) {
  std::string err;
  auto t = dkim::parse_tag_list(in, err);
  if (!t) {
    check(!err.empty());
    return;
  }
  std::string again;
  for (const auto& [k, v] : *t) {
    check(name_ok(k));
    check(v.find(';') == std::string::npos);
    again += k + "=" + v + ";";
  }
  auto t2 = dkim::parse_tag_list(again, err);
  check(t2 && *t2 == *t);
}

void signature(std::string_view in) {
  std::string err;
  auto s = dkim::parse_signature(in, err);
  if (!s) {
    check(!err.empty());
    return;
  }
  check(!s->domain.empty() && !s->selector.empty() && !s->b.empty() && !s->bh.empty());
  bool from = false;
  for (const auto& h : s->headers) from = from || h == "from";
  check(from);
  if (!s->identity.empty()) {
    std::string d = s->identity.substr(s->identity.rfind('@') + 1);
    for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    check(d == s->domain || (d.size() > s->domain.size() && d.ends_with("." + s->domain)));
  }
  if (s->timestamp && s->expiration) check(*s->expiration >= *s->timestamp);
}

void key(std::string_view in) {
  std::string err;
  auto k = dkim::parse_key(in, err);
  if (!k) check(!err.empty());
}

// A field name as RFC 5322 §3.6.8 has it (printable, no white space, no colon).
bool ftext(const std::string& n) {
  for (char c : n)
    if (c < 33 || c > 126) return false;
  return !n.empty();
}

void canon(std::string_view in) {
  std::string text;  // CRLF line ends only: no lone CR, every LF a CRLF
  for (char c : in)
    if (c != '\r') text += c;
  text = dkim::to_crlf(text);
  for (auto m : {dkim::Canon::Simple, dkim::Canon::Relaxed}) {
    std::string b = dkim::canon_body(text, m);
    check(dkim::canon_body(b, m) == b);
    check(b.empty() ? m == dkim::Canon::Relaxed : b.ends_with("\r\n"));
    if (m == dkim::Canon::Relaxed) {
      check(b.find('\t') == std::string::npos && b.find(" \r\n") == std::string::npos);
      std::string h = dkim::canon_header(text, m);
      if (text.find(':') != std::string::npos && ftext(dkim::field_name(text))) {
        check(h.ends_with("\r\n") && h.find('\t') == std::string::npos);
        check(dkim::canon_header(h, m) == h);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: tag_list(in); break;
    case 1: signature(in); break;
    case 2: key(in); break;
    default: canon(in); break;
  }
  return 0;
}
