// DMARC (RFC 7489) as a pure core: the record parser, the organisational domain (public suffix
// list via libpsl), identifier alignment, policy discovery against an abstract async TXT lookup
// (net::Resolver in the filter, a fake table in the unit tests) and the evaluation of the SPF and
// DKIM results recorded by the filters before it (filters/sender_auth.h). No I/O of its own.
//  * Records: "v=DMARC1" first (else not a DMARC record), tags p sp pct adkim aspf rua ruf fo rf ri,
//    unknown tags ignored, a syntax error makes the record invalid (permerror, no policy applied);
//    a record without a valid p= (or with an invalid sp=) but with a valid rua is p=none (§6.6.3).
//  * Discovery (§6.6.3): _dmarc.<From domain>, else _dmarc.<organisational domain> (its sp= then
//    applies); several DMARC records at a level -> none; timeout/SERVFAIL -> temperror, never none.
//  * Evaluation: pass if SPF or any DKIM signature passes with an aligned domain; a fail with an
//    aligned SPF/DKIM temperror is temperror; pct<100 samples with a draw 0..99 given by the
//    caller, pct=0 (or a draw outside pct) applies the next weaker policy.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filters/sender_auth.h"
#include "net/dns_parse.h"

struct psl_ctx_st;

namespace filters::dmarc {

enum class Policy { None, Quarantine, Reject };
enum class Alignment { Relaxed, Strict };
enum class Result { None, Pass, Fail, TempError, PermError };
std::string_view policy_name(Policy p);   // "none", "quarantine", "reject"
std::string_view result_name(Result r);   // "none", "pass", "fail", "temperror", "permerror"
AuthResult auth_result(Result r);
// The next weaker policy (reject -> quarantine -> none).
Policy weaker(Policy p);

struct Record {
  Policy p = Policy::None;
  std::optional<Policy> sp;          // absent: subdomains get p
  unsigned pct = 100;
  Alignment adkim = Alignment::Relaxed;
  Alignment aspf = Alignment::Relaxed;
  std::vector<std::string> rua, ruf; // URIs as written (lenient)
  std::string fo = "0";
  std::string rf = "afrf";
  uint32_t ri = 86400;
  bool p_defaulted = false;          // no valid p= / sp= but a rua: acted on as p=none (§6.6.3)

  Policy subdomain_policy() const { return sp.value_or(p); }
};

// Parses one DMARC record. nullopt when it is not one ("v=DMARC1" not first) or has a syntax
// error; `error` says which.
std::optional<Record> parse_record(std::string_view txt, std::string& error);
// Whether a TXT string starts with the v=DMARC1 tag (the records kept by §6.6.3 step 2).
bool is_dmarc_record(std::string_view txt);

// The public suffix list, loaded from a file (Debian: /usr/share/publicsuffix/public_suffix_list.dat).
// Immutable once loaded; thread-safe.
class PublicSuffixList {
 public:
  // nullptr when the file is missing or holds no rule (`error` says why).
  static std::shared_ptr<const PublicSuffixList> load(const std::string& path, std::string& error);
  ~PublicSuffixList();
  PublicSuffixList(const PublicSuffixList&) = delete;
  PublicSuffixList& operator=(const PublicSuffixList&) = delete;
  // The organisational domain (RFC 7489 §3.2) of a lower-case domain: the public suffix (the
  // longest matching rule, the default rule "*" for an unlisted TLD) and one more label; the
  // domain itself when it is a public suffix or a single label.
  std::string organizational_domain(std::string_view domain) const;

 private:
  explicit PublicSuffixList(psl_ctx_st* ctx) : ctx_(ctx) {}
  psl_ctx_st* ctx_;
};

// Identifier alignment (§3.1): strict = the same domain; relaxed = the same organisational domain.
bool aligned(std::string_view identifier, std::string_view from_domain, Alignment mode, const PublicSuffixList& psl);

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

// ---- the From field (RFC 7489 §6.6.1) ----
struct FromDomain {
  enum class Status { Ok, Missing, MultipleFields, MultipleAddresses, Invalid };
  Status status = Status::Missing;
  std::string domain;  // Ok: lower-case
  std::string detail;
};
// From the message's top-level header block (LF or CRLF line ends): exactly one From field
// holding exactly one mailbox (parsed with GMime; display names, comments and groups handled).
FromDomain from_domain(std::string_view message);

}  // namespace filters::dmarc
