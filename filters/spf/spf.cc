// SPF evaluation: check_host() on the parsed record (record.h). A permerror or temperror
// found anywhere (an include's record, a DNS failure, a limit) ends the whole evaluation: it is
// thrown as Stop and caught only in check_host(), which is what §5.2 and §4.6.4 ask for.
#include "filters/spf/spf.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fmt/format.h>
#include <optional>

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

namespace {
using namespace detail;

// ------------------------------------------------------------------------------------------------
// evaluation
struct Eval {
  Lookup lookup;
  core::IpAddress ip;
  std::string sender, local, sender_domain, helo;
  unsigned dns_terms = 0, voids = 0;
  std::optional<std::vector<std::string>> validated;  // the client's validated names, once looked up (%{p})
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

asio::awaitable<std::string> p_macro(Eval& e, const std::string& domain);

// The macro values for `text` in `domain`; %{p}'s name is looked up only when `text` uses it.
asio::awaitable<MacroInput> macro_input(Eval& e, std::string_view text, const std::string& domain) {
  MacroInput in{e.sender, e.local, e.sender_domain, domain, e.ip, e.helo, ""};
  if (uses_macro(text, 'p')) in.validated = co_await p_macro(e, domain);
  co_return in;
}

// The target name of a term: its expanded domain-spec (or the current domain), shortened to 253
// octets by dropping labels on the left (§7.3), without a trailing dot.
asio::awaitable<std::string> target_name(Eval& e, const std::string& spec, const std::string& domain) {
  if (spec.empty()) co_return domain;
  std::string error;
  MacroInput in = co_await macro_input(e, spec, domain);  // named: see net/blocking_pool.h on GCC 12
  auto name = expand(spec, in, error);
  if (!name) perm(error);
  while (!name->empty() && name->back() == '.') name->pop_back();
  while (name->size() > 253) {
    size_t dot = name->find('.');
    name->erase(0, dot == std::string::npos ? name->size() : dot + 1);
  }
  co_return *name;
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

// §5.5, §4.6.4: the client's PTR names, at most the first 10; a failed lookup gives none (DNS
// errors never make a temperror here, and these lookups are not void lookups: pyspf counts them).
asio::awaitable<std::vector<std::string>> ptr_names(Eval& e) {
  net::DnsAnswer ptr = co_await e.lookup(reverse_name(e.ip), net::DnsType::PTR);
  if (ptr.ptr.size() > kMaxMxNames) ptr.ptr.resize(kMaxMxNames);
  co_return ptr.ptr;
}

// §5.5: whether `name` is validated: one of its A/AAAA records (the client's family) is the
// client's address. A failed lookup is no (that name is skipped).
asio::awaitable<bool> points_back(Eval& e, const std::string& name) {
  net::DnsAnswer a = co_await e.lookup(name, e.ip.is_v6() ? net::DnsType::AAAA : net::DnsType::A);
  Term exact;
  for (uint32_t v4 : a.a)
    if (in_network(e.ip, core::IpAddress::v4({static_cast<uint8_t>(v4 >> 24), static_cast<uint8_t>(v4 >> 16),
                                              static_cast<uint8_t>(v4 >> 8), static_cast<uint8_t>(v4)}), exact))
      co_return true;
  for (const auto& b : a.aaaa)
    if (in_network(e.ip, core::IpAddress::v6(b), exact)) co_return true;
  co_return false;
}

// The ptr mechanism (§5.5): a validated name ending in `target`; only those names are checked.
asio::awaitable<bool> ptr_matches(Eval& e, const std::string& target) {
  std::vector<std::string> names = co_await ptr_names(e);
  for (const auto& name : names) {
    if (!is_subdomain(name, target)) continue;
    if (co_await points_back(e, name)) co_return true;
  }
  co_return false;
}

// %{p} (§7.3): the validated name equal to `domain`, else one in a subdomain of it, else the first
// validated name, else "unknown" (no PTR name, none validated, or a DNS error). The validated
// names are looked up once per check_host() (every name checked: any may be the answer).
asio::awaitable<std::string> p_macro(Eval& e, const std::string& domain) {
  if (!e.validated) {
    std::vector<std::string> names = co_await ptr_names(e), valid;
    for (const auto& name : names)
      if (co_await points_back(e, name)) valid.push_back(name);
    e.validated = std::move(valid);
  }
  const auto& v = *e.validated;
  for (const auto& n : v)
    if (iequals(n, domain)) co_return n;
  for (const auto& n : v)
    if (is_subdomain(n, domain)) co_return n;
  co_return v.empty() ? std::string("unknown") : v.front();
}

asio::awaitable<bool> matches(Eval& e, const Term& t, const std::string& domain) {
  switch (t.mech) {
    case Mech::All: co_return true;
    case Mech::Ip4:
    case Mech::Ip6: co_return in_network(e.ip, t.net, t);
    default: break;
  }
  count_dns_term(e);
  std::string name = co_await target_name(e, t.domain_spec, domain);
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
    std::string name = co_await target_name(e, spec, domain);
    if (!valid_domain(name)) co_return text;
    net::DnsAnswer a = co_await query(e, name, net::DnsType::TXT, false);
    if (a.status != net::DnsStatus::Ok || a.txt.size() != 1) co_return text;
    std::string error;
    MacroInput in = co_await macro_input(e, a.txt.front(), domain);
    if (auto expanded = expand(a.txt.front(), in, error, true)) text = std::move(*expanded);
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
    std::string target = co_await target_name(e, *r.redirect, domain);
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
