// The SPF record (RFC 7208 §4.5, §4.6, §5, §6) and macro (§7) text: parsing and expansion, no DNS
// and no Asio (record.h). Used by check_host() (spf.cc) and fuzzed on its own (tests/fuzz/spf_fuzz.cc).
#include "filters/spf/record.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fmt/format.h>

namespace filters::spf {
using namespace detail;

std::string_view result_name(Result r) {
  switch (r) {
    case Result::None: return "none";
    case Result::Neutral: return "neutral";
    case Result::Pass: return "pass";
    case Result::Fail: return "fail";
    case Result::SoftFail: return "softfail";
    case Result::TempError: return "temperror";
    case Result::PermError: return "permerror";
  }
  return "?";
}

namespace detail {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::vector<std::string_view> split_any(std::string_view s, std::string_view delims) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || delims.find(s[i]) != std::string_view::npos) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return parts;
}

std::string url_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~') out += c;
    else out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  return out;
}

}  // namespace detail

std::string ip_macro(const core::IpAddress& ip) {
  const auto& b = ip.bytes();
  if (!ip.is_v6()) return fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i) out += '.';
    out += hex[b[i] >> 4];
    out += '.';
    out += hex[b[i] & 0x0F];
  }
  return out;
}

bool valid_domain(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  if (d.empty() || d.size() > 253 || d.find_first_of("[]: \t") != std::string_view::npos) return false;
  auto labels = split_any(d, ".");
  if (labels.size() < 2) return false;
  return std::all_of(labels.begin(), labels.end(), [](std::string_view l) { return !l.empty() && l.size() <= 63; });
}

std::optional<std::string> select_record(const std::vector<std::string>& txt, size_t& count) {
  std::optional<std::string> found;
  count = 0;
  for (const auto& t : txt) {
    if (t.size() < 6 || !iequals(std::string_view(t).substr(0, 6), "v=spf1")) continue;
    if (t.size() > 6 && t[6] != ' ') continue;
    ++count;
    found = t;
  }
  if (count != 1) found.reset();
  return found;
}

// ------------------------------------------------------------------------------------------------
// macros (§7)
namespace {

std::optional<std::string> letter_value(char letter, const MacroInput& in, bool exp) {
  switch (lower(letter)) {
    case 's': return in.sender;
    case 'l': return in.local;
    case 'o': return in.sender_domain;
    case 'd': return in.domain;
    case 'i': return ip_macro(in.ip);
    case 'p': return in.validated.empty() ? std::string("unknown") : in.validated;  // found by check_host()
    case 'v': return std::string(in.ip.is_v6() ? "ip6" : "in-addr");
    case 'h': return in.helo;
    case 'c': if (exp) return in.ip.str(); break;
    case 'r': if (exp) return std::string("unknown"); break;
    case 't': if (exp) return std::to_string(static_cast<long long>(std::time(nullptr))); break;
  }
  return std::nullopt;
}

// Applies the transformers (digits, 'r') and delimiters to a macro's value.
std::string transform(std::string_view value, size_t keep, bool reverse, std::string_view delims) {
  auto parts = split_any(value, delims.empty() ? "." : delims);
  if (reverse) std::reverse(parts.begin(), parts.end());
  size_t from = keep && keep < parts.size() ? parts.size() - keep : 0;
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) {
    if (i > from) out += '.';
    out += parts[i];
  }
  return out;
}

// One "%{...}" starting at s[i] == '{'; appends its expansion, advances i past '}'.
bool expand_one(std::string_view s, size_t& i, const MacroInput& in, bool exp, std::string& out, std::string& error) {
  ++i;  // '{'
  if (i >= s.size()) return (error = "unterminated macro", false);
  char letter = s[i++];
  auto value = letter_value(letter, in, exp);
  if (!value) return (error = fmt::format("unknown macro letter '{}'", letter), false);
  size_t keep = 0;
  bool digits = false;
  while (i < s.size() && is_digit(s[i])) {
    keep = std::min<size_t>(keep * 10 + static_cast<size_t>(s[i++] - '0'), 1000);
    digits = true;
  }
  if (digits && keep == 0) return (error = "macro digit transformer 0", false);
  bool reverse = i < s.size() && lower(s[i]) == 'r';
  if (reverse) ++i;
  std::string delims;
  while (i < s.size() && std::string_view(".-+,/_=").find(s[i]) != std::string_view::npos) delims += s[i++];
  if (i >= s.size() || s[i] != '}') return (error = "malformed macro", false);
  ++i;
  std::string v = transform(*value, keep, reverse, delims);
  out += std::isupper(static_cast<unsigned char>(letter)) ? url_escape(v) : v;
  return true;
}

}  // namespace

bool uses_macro(std::string_view s, char letter) {
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (s[i + 1] == '{' && lower(s[i + 2]) == letter) return true;
    ++i;  // "%%", "%_", "%-", "%{x": the next character starts no macro
  }
  return false;
}

std::optional<std::string> expand(std::string_view s, const MacroInput& in, std::string& error, bool exp) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c != '%') {
      // macro-literal is %x21-7E; an explain-string (exp) also has SP between its macro-strings
      if (c < (exp ? 0x20 : 0x21) || c > 0x7E) return (error = "invalid character in macro string", std::nullopt);
      out += c;
      ++i;
      continue;
    }
    if (++i >= s.size()) return (error = "'%' at the end of a macro string", std::nullopt);
    switch (s[i]) {
      case '%': out += '%'; ++i; break;
      case '_': out += ' '; ++i; break;
      case '-': out += "%20"; ++i; break;
      case '{':
        if (!expand_one(s, i, in, exp, out, error)) return std::nullopt;
        break;
      default: return (error = fmt::format("'%{}' in a macro string", s[i]), std::nullopt);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// the record (§4.6, §5, §6)
namespace detail {
bool all_digits(std::string_view s) { return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), is_digit); }

int parse_cidr(std::string_view digits, int max, std::string_view term) {
  if (!all_digits(digits) || (digits.size() > 1 && digits[0] == '0')) perm(fmt::format("bad CIDR length in '{}'", term));
  int n = std::stoi(std::string(digits));
  if (n > max) perm(fmt::format("CIDR length {} out of range in '{}'", n, term));
  return n;
}

// Strips a trailing ip4-cidr / "//" ip6-cidr from `spec` (a, mx).
void take_dual_cidr(std::string_view& spec, Term& t) {
  if (size_t p = spec.rfind("//"); p != std::string_view::npos && all_digits(spec.substr(p + 2))) {
    t.cidr6 = parse_cidr(spec.substr(p + 2), 128, t.text);
    spec = spec.substr(0, p);
  }
  if (size_t p = spec.rfind('/'); p != std::string_view::npos && all_digits(spec.substr(p + 1))) {
    t.cidr4 = parse_cidr(spec.substr(p + 1), 32, t.text);
    spec = spec.substr(0, p);
  }
}

// domain-spec = macro-string domain-end: checked with a dummy expansion and the top label rule.
void check_domain_spec(std::string_view spec, std::string_view term, bool exp = false) {
  std::string error;
  if (spec.empty()) perm(fmt::format("empty domain in '{}'", term));
  if (!expand(spec, MacroInput{}, error, exp)) perm(fmt::format("{} in '{}'", error, term));
  if (spec.back() == '}') return;
  std::string_view d = spec;
  if (d.back() == '.') d.remove_suffix(1);
  size_t dot = d.rfind('.');
  std::string_view top = dot == std::string_view::npos ? std::string_view() : d.substr(dot + 1);
  bool ok = !top.empty() && top.size() <= 63 && top.front() != '-' && top.back() != '-' &&
            std::all_of(top.begin(), top.end(), [](char c) { return is_alpha(c) || is_digit(c) || c == '-'; }) &&
            std::any_of(top.begin(), top.end(), is_alpha);
  if (!ok) perm(fmt::format("invalid domain in '{}'", term));
}

core::IpAddress parse_network(std::string_view s, bool v6, Term& t) {
  size_t slash = s.find('/');
  std::string_view addr = s.substr(0, slash);
  auto ip = core::IpAddress::parse(addr);
  bool family_ok = ip && (v6 ? addr.find(':') != std::string_view::npos : !ip->is_v6() && addr.find(':') == std::string_view::npos);
  if (!family_ok) perm(fmt::format("bad address in '{}'", t.text));
  if (slash != std::string_view::npos) {
    int& c = v6 ? t.cidr6 : t.cidr4;
    c = parse_cidr(s.substr(slash + 1), v6 ? 128 : 32, t.text);
  }
  return *ip;
}

Term parse_mechanism(std::string_view text) {
  Term t;
  t.text = std::string(text);
  if (!text.empty() && std::string_view("+-~?").find(text[0]) != std::string_view::npos) {
    t.qualifier = text[0] == '+' ? Result::Pass : text[0] == '-' ? Result::Fail : text[0] == '~' ? Result::SoftFail : Result::Neutral;
    text.remove_prefix(1);
  }
  size_t end = std::min(text.find(':'), text.find('/'));
  std::string name = lowercase(text.substr(0, end));
  std::string_view rest = end == std::string_view::npos ? std::string_view() : text.substr(end);
  bool colon = !rest.empty() && rest[0] == ':';
  std::string_view arg = colon ? rest.substr(1) : rest;
  if (name == "all" && rest.empty()) t.mech = Mech::All;
  else if ((name == "include" || name == "exists") && colon) {
    t.mech = name == "include" ? Mech::Include : Mech::Exists;
    t.domain_spec = std::string(arg);
    check_domain_spec(arg, t.text);
  } else if (name == "a" || name == "mx") {
    t.mech = name == "a" ? Mech::A : Mech::Mx;
    take_dual_cidr(arg, t);
    if (colon) {
      check_domain_spec(arg, t.text);
      t.domain_spec = std::string(arg);
    } else if (!arg.empty()) {
      perm(fmt::format("bad term '{}'", t.text));
    }
  } else if (name == "ptr" && (rest.empty() || colon)) {
    t.mech = Mech::Ptr;
    if (colon) check_domain_spec(arg, t.text);
    t.domain_spec = std::string(arg);
  } else if ((name == "ip4" || name == "ip6") && colon) {
    t.mech = name == "ip4" ? Mech::Ip4 : Mech::Ip6;
    t.net = parse_network(arg, t.mech == Mech::Ip6, t);
  } else {
    perm(fmt::format("unknown or malformed mechanism '{}'", t.text));
  }
  return t;
}

bool modifier_name(std::string_view n) {
  return !n.empty() && is_alpha(n[0]) &&
         std::all_of(n.begin(), n.end(), [](char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.'; });
}

void parse_modifier(std::string_view text, size_t eq, Record& r) {
  std::string name = lowercase(text.substr(0, eq));
  std::string_view value = text.substr(eq + 1);
  if (!modifier_name(name)) perm(fmt::format("malformed term '{}'", text));
  if (name == "redirect" || name == "exp") {
    auto& slot = name == "redirect" ? r.redirect : r.exp;
    if (slot) perm(fmt::format("'{}' given twice", name));
    check_domain_spec(value, text, false);
    slot = std::string(value);
    return;
  }
  std::string error;  // unknown modifiers are ignored, but must be well-formed
  if (!expand(value, MacroInput{}, error, false)) perm(fmt::format("{} in '{}'", error, text));
}

Record parse_record(std::string_view text) {
  Record r;
  auto terms = split_any(text.substr(6), " ");
  for (std::string_view t : terms) {
    if (t.empty()) continue;
    size_t eq = t.find('=');
    size_t mech_end = std::min(t.find(':'), t.find('/'));
    if (eq != std::string_view::npos && eq < mech_end) parse_modifier(t, eq, r);
    else r.terms.push_back(parse_mechanism(t));
  }
  return r;
}


}  // namespace detail
}  // namespace filters::spf
