// The pure, Asio-free parts of DMARC (RFC 7489): the record parser, the organisational domain
// (public suffix list via libpsl), identifier alignment and the From domain of a message. Kept
// apart from the discovery/evaluation core (dmarc.h) so that the fuzz target builds without Asio.
//  * Records: "v=DMARC1" first (else not a DMARC record), tags p sp pct adkim aspf rua ruf fo rf ri,
//    unknown tags ignored, a syntax error makes the record invalid (permerror, no policy applied);
//    a record without a valid p= (or with an invalid sp=) but with a valid rua is p=none (§6.6.3).
//  * From: exactly one From field with exactly one mailbox (GMime's address parser).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct psl_ctx_st;

namespace filters::dmarc {

enum class Policy { None, Quarantine, Reject };
enum class Alignment { Relaxed, Strict };
std::string_view policy_name(Policy p);   // "none", "quarantine", "reject"
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
