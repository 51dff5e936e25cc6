// DMARC (RFC 7489) policy discovery and evaluation as a pure core: discovery against an abstract
// async TXT lookup (net::Resolver in the filter, a fake table in the unit tests) and the evaluation
// of the SPF and DKIM results recorded by the filters before it (filters/sender_auth.h). No I/O of
// its own. The record parser, organisational domain, alignment and From domain are in record.h.
//  * Discovery (§6.6.3): _dmarc.<From domain>, else _dmarc.<organisational domain> (its sp= then
//    applies); several DMARC records at a level -> none; timeout/SERVFAIL -> temperror, never none;
//    an invalid record -> permerror.
//  * Evaluation: pass if SPF or any DKIM signature passes with an aligned domain; the SPF domain
//    is MAIL FROM's, or for the null sender only the HELO name (§3.1.2, §4.1: postmaster@HELO,
//    RFC 7208 §2.4), a HELO result never counts for a non-null MAIL FROM; a fail with an
//    aligned SPF/DKIM temperror is temperror; pct<100 samples with a draw 0..99 given by the
//    caller, pct=0 (or a draw outside pct) applies the next weaker policy.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>

#include "filters/dmarc/record.h"
#include "filters/sender_auth.h"
#include "net/dns_parse.h"

namespace filters::dmarc {

enum class Result { None, Pass, Fail, TempError, PermError };
std::string_view result_name(Result r);   // "none", "pass", "fail", "temperror", "permerror"
AuthResult auth_result(Result r);

using Lookup = std::function<boost::asio::awaitable<net::DnsAnswer>(std::string name, net::DnsType type)>;

struct Discovery {
  enum class Status { Found, None, TempError, PermError };
  Status status = Status::None;
  Record record;               // Found
  std::string policy_domain;   // the domain whose _dmarc record was used ("" when none)
  bool organizational = false; // the record is the organisational domain's (sp= applies)
  std::string detail;          // why, for the log and the header comment
};

// Policy discovery for a lower-case From domain whose organisational domain is `org_domain`.
boost::asio::awaitable<Discovery> discover(std::string from_domain, std::string org_domain, Lookup lookup);
// One level of it (pure): what the TXT answer for _dmarc.<domain> says. Status::None with an
// empty detail means "no DMARC record here" (discovery goes on to the organisational domain).
Discovery discover_level(const net::DnsAnswer& answer, const std::string& domain);

struct Inputs {
  std::string from_domain;                          // lower-case
  std::optional<SpfFacts> spf;                      // unset: spf=none
  bool null_sender = false;                         // MAIL FROM:<> (its SPF identity is postmaster@HELO)
  std::optional<std::vector<DkimFacts>> dkim;       // unset: no signatures
};

struct Evaluation {
  Result result = Result::None;
  Policy requested = Policy::None;    // p, or sp for a subdomain under the organisational record
  Policy disposition = Policy::None;  // what the policy asks for this message (after pct)
  bool sampled_out = false;           // pct made the disposition weaker
  bool spf_aligned = false;
  bool dkim_aligned = false;
  std::string detail;
};

// The DMARC result and disposition (pure). `draw` is uniform in 0..99 (pct sampling).
Evaluation evaluate(const Discovery& d, const Inputs& in, const PublicSuffixList& psl, unsigned draw);

}  // namespace filters::dmarc
