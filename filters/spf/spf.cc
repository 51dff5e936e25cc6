// SPF evaluation: the record parser, macro expansion and check_host(). A permerror or temperror
// found anywhere (an include's record, a DNS failure, a limit) ends the whole evaluation: it is
// thrown as Stop and caught only in check_host(), which is what §5.2 and §4.6.4 ask for.
#include "filters/spf/spf.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fmt/format.h>

namespace filters::spf {
namespace asio = boost::asio;

AuthResult auth_result(Result r) {
  switch (r) {
    case Result::None: return AuthResult::None;
    case Result::Neutral: return AuthResult::Neutral;
    case Result::Pass: return AuthResult::Pass;
    case Result::Fail: return AuthResult::Fail;
    case Result::SoftFail: return AuthResult::SoftFail;
    case Result::TempError: return AuthResult::TempError;
    case Result::PermError: return AuthResult::PermError;
  }
  return AuthResult::None;
}

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

namespace {

constexpr unsigned kMaxDnsTerms = 10;
constexpr unsigned kMaxVoidLookups = 2;
constexpr unsigned kMaxMxNames = 10;

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

}  // namespace

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
    case 'p': return std::string("unknown");  // no PTR validation is done (see spf.h)
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
namespace {

enum class Mech { All, Include, A, Mx, Ptr, Ip4, Ip6, Exists };

struct Term {
  Result qualifier = Result::Pass;
  Mech mech = Mech::All;
  std::string domain_spec;  // "" = the current domain (a, mx, ptr)
  int cidr4 = 32, cidr6 = 128;
  core::IpAddress net;      // ip4, ip6
  std::string text;         // as written, for the log
};

struct Record {
  std::vector<Term> terms;
  std::optional<std::string> redirect, exp;
};

struct Stop {
  Result result;
  std::string detail;
};

[[noreturn]] void perm(std::string detail) { throw Stop{Result::PermError, std::move(detail)}; }

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

// ------------------------------------------------------------------------------------------------
// evaluation
struct Eval {
  Lookup lookup;
  core::IpAddress ip;
  std::string sender, local, sender_domain, helo;
  unsigned dns_terms = 0, voids = 0;
};

std::string_view type_name(net::DnsType t) {
  switch (t) {
    case net::DnsType::A: return "A";
    case net::DnsType::AAAA: return "AAAA";
    case net::DnsType::MX: return "MX";
    case net::DnsType::TXT: return "TXT";
    case net::DnsType::PTR: return "PTR";
  }
  return "?";
}

void count_dns_term(Eval& e) {
  if (++e.dns_terms > kMaxDnsTerms) perm(fmt::format("more than {} DNS-querying terms", kMaxDnsTerms));
}

// One query; a timeout or failure is a temperror; a void answer counts when `counts_void`.
asio::awaitable<net::DnsAnswer> query(Eval& e, const std::string& name, net::DnsType t, bool counts_void) {
  net::DnsAnswer a = co_await e.lookup(name, t);
  if (a.status == net::DnsStatus::Timeout || a.status == net::DnsStatus::Failure)
    throw Stop{Result::TempError, fmt::format("DNS {} {}: {} {}", type_name(t), name, net::dns_status_name(a.status), a.error)};
  if (counts_void && a.status != net::DnsStatus::Ok && ++e.voids > kMaxVoidLookups)
    perm(fmt::format("more than {} void DNS lookups", kMaxVoidLookups));
  co_return a;
}

MacroInput macro_input(const Eval& e, const std::string& domain) {
  return {e.sender, e.local, e.sender_domain, domain, e.ip, e.helo};
}

// The target name of a term: its expanded domain-spec (or the current domain), shortened to 253
// octets by dropping labels on the left (§7.3), without a trailing dot.
std::string target_name(const Eval& e, const std::string& spec, const std::string& domain) {
  if (spec.empty()) return domain;
  std::string error;
  auto name = expand(spec, macro_input(e, domain), error);
  if (!name) perm(error);
  while (!name->empty() && name->back() == '.') name->pop_back();
  while (name->size() > 253) {
    size_t dot = name->find('.');
    name->erase(0, dot == std::string::npos ? name->size() : dot + 1);
  }
  return *name;
}

bool in_network(const core::IpAddress& ip, const core::IpAddress& net, const Term& t) {
  if (ip.is_v6() != net.is_v6()) return false;
  int bits = ip.is_v6() ? t.cidr6 : t.cidr4;
  return ip.prefix(bits) == net.prefix(bits);
}

// Whether an address record of `name` (A or AAAA, the client's family) is in the term's network.
asio::awaitable<bool> address_matches(Eval& e, const std::string& name, const Term& t, bool counts_void) {
  bool v6 = e.ip.is_v6();
  net::DnsAnswer a = co_await query(e, name, v6 ? net::DnsType::AAAA : net::DnsType::A, counts_void);
  for (uint32_t v4 : a.a) {
    auto ip = core::IpAddress::v4({static_cast<uint8_t>(v4 >> 24), static_cast<uint8_t>(v4 >> 16), static_cast<uint8_t>(v4 >> 8),
                                   static_cast<uint8_t>(v4)});
    if (in_network(e.ip, ip, t)) co_return true;
  }
  for (const auto& b : a.aaaa)
    if (in_network(e.ip, core::IpAddress::v6(b), t)) co_return true;
  co_return false;
}

asio::awaitable<Outcome> evaluate(Eval& e, std::string domain, bool explain = false);

asio::awaitable<bool> mx_matches(Eval& e, const std::string& name, const Term& t) {
  net::DnsAnswer mx = co_await query(e, name, net::DnsType::MX, true);
  if (mx.mx.size() > kMaxMxNames) perm(fmt::format("mx:{} has more than {} names", name, kMaxMxNames));
  for (const auto& m : mx.mx) {
    if (m.exchange.empty()) continue;  // null MX (RFC 7505)
    if (co_await address_matches(e, m.exchange, t, false)) co_return true;
  }
  co_return false;
}

// The reverse-lookup name of an address: "3.2.0.192.in-addr.arpa", nibbles + ".ip6.arpa".
std::string reverse_name(const core::IpAddress& ip) {
  std::string forward = ip_macro(ip);
  auto parts = split_any(forward, ".");
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += std::string(*it) + ".";
  return out + (ip.is_v6() ? "ip6.arpa" : "in-addr.arpa");
}

bool is_subdomain(std::string_view name, std::string_view domain) {
  return iequals(name, domain) || (name.size() > domain.size() && name[name.size() - domain.size() - 1] == '.' &&
                                   iequals(name.substr(name.size() - domain.size()), domain));
}

// §5.5: the client's validated names (PTR names, at most 10, whose A/AAAA records include the
// client) ending in `target`. DNS errors never make a temperror here: a failed PTR lookup is no
// match, a name whose address lookup fails is skipped.
asio::awaitable<bool> ptr_matches(Eval& e, const std::string& target) {
  net::DnsAnswer ptr = co_await e.lookup(reverse_name(e.ip), net::DnsType::PTR);
  size_t checked = 0;
  for (const auto& name : ptr.ptr) {
    if (++checked > kMaxMxNames) break;
    if (!is_subdomain(name, target)) continue;
    net::DnsAnswer a = co_await e.lookup(name, e.ip.is_v6() ? net::DnsType::AAAA : net::DnsType::A);
    Term exact;
    for (uint32_t v4 : a.a)
      if (in_network(e.ip, core::IpAddress::v4({static_cast<uint8_t>(v4 >> 24), static_cast<uint8_t>(v4 >> 16),
                                                static_cast<uint8_t>(v4 >> 8), static_cast<uint8_t>(v4)}), exact))
        co_return true;
    for (const auto& b : a.aaaa)
      if (in_network(e.ip, core::IpAddress::v6(b), exact)) co_return true;
  }
  co_return false;
}

asio::awaitable<bool> matches(Eval& e, const Term& t, const std::string& domain) {
  switch (t.mech) {
    case Mech::All: co_return true;
    case Mech::Ip4:
    case Mech::Ip6: co_return in_network(e.ip, t.net, t);
    default: break;
  }
  count_dns_term(e);
  std::string name = target_name(e, t.domain_spec, domain);
  if (t.mech == Mech::Ptr) co_return co_await ptr_matches(e, name);
  if (t.mech == Mech::Include) {
    Outcome sub = co_await evaluate(e, name);
    if (sub.result == Result::None) perm(fmt::format("include:{} has no SPF record", name));
    co_return sub.result == Result::Pass;
  }
  if (!valid_domain(name)) {  // nothing to look up: a void lookup that never went out
    if (++e.voids > kMaxVoidLookups) perm(fmt::format("more than {} void DNS lookups", kMaxVoidLookups));
    co_return false;
  }
  if (t.mech == Mech::A) co_return co_await address_matches(e, name, t, true);
  if (t.mech == Mech::Mx) co_return co_await mx_matches(e, name, t);
  net::DnsAnswer a = co_await query(e, name, net::DnsType::A, true);  // exists
  co_return !a.a.empty();
}

// §6.2: the explanation of a fail: the TXT record of the expanded exp domain-spec, expanded with
// the exp-only macros. Not a DNS-querying term; any DNS error, no record, several records or a
// syntax error in the text mean no explanation ("" returned), never a different result.
asio::awaitable<std::string> explanation(Eval& e, const std::string& spec, const std::string& domain) {
  std::string text;
  try {
    std::string name = target_name(e, spec, domain);
    if (!valid_domain(name)) co_return text;
    net::DnsAnswer a = co_await query(e, name, net::DnsType::TXT, false);
    if (a.status != net::DnsStatus::Ok || a.txt.size() != 1) co_return text;
    std::string error;
    if (auto expanded = expand(a.txt.front(), macro_input(e, domain), error, true)) text = std::move(*expanded);
  } catch (const Stop&) {
  }
  co_return text;
}

// check_host() for one domain: none when it has no record, else the record's result. `explain`:
// fetch the exp= text on a fail (the top-level record and redirect targets, never includes).
asio::awaitable<Outcome> evaluate(Eval& e, std::string domain, bool explain) {
  Outcome out;
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  domain = lowercase(domain);
  if (!valid_domain(domain)) {
    out.detail = fmt::format("'{}' is not a valid domain", domain);
    co_return out;
  }
  net::DnsAnswer txt = co_await query(e, domain, net::DnsType::TXT, false);
  size_t count = 0;
  auto text = select_record(txt.txt, count);
  if (count > 1) perm(fmt::format("{} has {} SPF records", domain, count));
  if (!text) {
    out.detail = fmt::format("{} has no SPF record", domain);
    co_return out;
  }
  Record r = parse_record(*text);
  for (const Term& t : r.terms)
    if (co_await matches(e, t, domain)) {
      out.result = t.qualifier;
      out.mechanism = t.text;
      out.detail = fmt::format("{} matched {} of {}", e.ip.str(), t.text, domain);
      if (explain && out.result == Result::Fail && r.exp) out.explanation = co_await explanation(e, *r.exp, domain);
      co_return out;
    }
  if (r.redirect) {
    count_dns_term(e);
    std::string target = target_name(e, *r.redirect, domain);
    Outcome sub = co_await evaluate(e, target, explain);  // §6.2: the target's exp, not ours
    if (sub.result == Result::None) perm(fmt::format("redirect={} has no SPF record", target));
    co_return sub;
  }
  out.result = Result::Neutral;
  out.detail = fmt::format("no term of {} matched {}", domain, e.ip.str());
  co_return out;
}

}  // namespace

asio::awaitable<Outcome> check_host(core::IpAddress ip, std::string domain, std::string sender, std::string helo, Lookup lookup) {
  Eval e;
  e.lookup = std::move(lookup);
  e.ip = ip;
  size_t at = sender.rfind('@');
  e.local = at == std::string::npos || at == 0 ? "postmaster" : sender.substr(0, at);
  e.sender_domain = at == std::string::npos ? sender : sender.substr(at + 1);
  e.sender = e.local + "@" + e.sender_domain;
  e.helo = std::move(helo);
  Outcome out;
  try {
    out = co_await evaluate(e, std::move(domain), true);
  } catch (const Stop& s) {
    out.result = s.result;
    out.detail = s.detail;
  }
  out.dns_terms = e.dns_terms;
  out.void_lookups = e.voids;
  co_return out;
}

}  // namespace filters::spf
