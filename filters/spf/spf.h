// SPF evaluation (RFC 7208 §4–§7) as a pure core: check_host() against an abstract async DNS
// lookup (net::Resolver in the filter, a fake table in the unit tests). No Asio I/O of its own.
//  * Mechanisms all, include, a, mx, ip4, ip6 (CIDR lengths, dual-cidr for a/mx), exists, and ptr
//    as §5.5 says (validated names from at most 10 PTR names; its DNS errors are no match, never
//    temperror). Modifiers redirect (evaluated) and exp (§6.2: on a fail, the explanation TXT is
//    fetched and expanded with c/r/t; any DNS or syntax problem with it means no explanation; the
//    exp of an included record is never used, the one of a redirect target is); unknown ones ignored.
//  * Macros %{s l o d i p v h} with digits/`r` transformers and delimiters, %%, %_, %-; an upper-
//    case letter URL-escapes; c/r/t are exp-only. %{p} (§7.3) is the client's validated name (the
//    ptr mechanism's validation, looked up once per evaluation and only when a macro uses it): the
//    current domain, else a subdomain of it, else the first; "unknown" when none or on DNS errors.
//    Its lookups, like the ptr mechanism's, are no DNS-querying term and no void lookup.
//  * Limits: more than 10 DNS-querying terms (include a mx ptr exists redirect) or more than 2
//    void lookups (NXDOMAIN / no records) -> permerror; an mx with more than 10 names -> permerror.
//  * No record -> none; two or more records -> permerror; a syntax error anywhere -> permerror;
//    DNS timeout or SERVFAIL on any query -> temperror; include of a domain without record -> permerror.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.h"
#include "filters/spf/record.h"
#include "filters/sender_auth.h"
#include "net/dns_parse.h"

namespace filters::spf {

AuthResult auth_result(Result r);        // the same word as the chain's shared record (filters/sender_auth.h)

// One DNS query: the answer, or Timeout/Failure status for a lookup that could not be made.
using Lookup = std::function<boost::asio::awaitable<net::DnsAnswer>(std::string name, net::DnsType type)>;

struct Outcome {
  Result result = Result::None;
  std::string mechanism;  // the term that matched ("-all", "include:_spf.example.com"); "" otherwise
  std::string detail;     // why, for the log and the header comment (errors: what went wrong)
  std::string explanation;  // fail only: the domain's exp= text, expanded (untrusted: sanitise before use)
  unsigned dns_terms = 0; // DNS-querying terms evaluated
  unsigned void_lookups = 0;
};

// check_host(<ip>, <domain>, <sender>) of RFC 7208 §4. `sender` is the full identity
// ("local@domain"; for the HELO identity "postmaster@<helo>"), `helo` the HELO/EHLO name (%{h}).
boost::asio::awaitable<Outcome> check_host(core::IpAddress ip, std::string domain, std::string sender, std::string helo,
                                           Lookup lookup);

// The pure parts (result names, macros, record parsing) are in filters/spf/record.h.

}  // namespace filters::spf
