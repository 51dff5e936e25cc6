// DKIM verification (RFC 6376, RFC 8463 for ed25519-sha256) as a pure core (parsers and
// canonicalisation in parse.h) and the check of every signature against an abstract async key
// lookup (net::Resolver in the filter, a fake table in the unit tests). No Asio I/O of its own;
// the CPU part (finish()) is a plain function the filter runs on the worker pool. Cryptography is
// OpenSSL EVP only.
//  * Results are the RFC 8601 words (filters::AuthResult): pass, fail (bad signature or body hash,
//    revoked key), policy (rsa-sha1, RSA key under min_rsa_bits or over 4096 bits, x= expired), permerror (syntax,
//    no key, malformed key, undecodable b=, h= without From, i= outside d=, key t=s with an i= in
//    a subdomain, key/algorithm mismatch), temperror (key lookup timeout or SERVFAIL), neutral
//    (signatures past max_signatures: not checked). Nothing but a verified signature is pass.
//  * The message comes as received (LF line endings); DKIM's canonical forms use CRLF, so every LF
//    not already after a CR is taken as CRLF.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filters/dkim/parse.h"
#include "filters/sender_auth.h"
#include "net/dns_parse.h"

namespace filters::dkim {

// One DNS query: the answer, or Timeout/Failure status for a lookup that could not be made.
using Lookup = std::function<boost::asio::awaitable<net::DnsAnswer>(std::string name, net::DnsType type)>;

struct Options {
  size_t max_signatures = 5;
  unsigned min_rsa_bits = 1024;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();  // for x=
};

// One signature on its way through the check.
struct Pending {
  DkimFacts facts;                 // header.* fields; result set once `done`
  bool done = false;
  std::optional<Signature> sig;
  std::optional<Key> key;
  size_t field = 0;                // index of the DKIM-Signature field among the header fields
};

// Step 1 (pure, cheap): the top-level DKIM-Signature fields, parsed; syntax errors are done
// (permerror), those past max_signatures done (neutral, "not checked").
std::vector<Pending> collect(std::string_view message, const Options& o);
// Step 2 (async): the key of every signature not done yet ("<s>._domainkey.<d>" TXT).
boost::asio::awaitable<void> fetch_keys(std::vector<Pending>& sigs, Lookup lookup);
// Step 3 (pure, CPU): key policy, body hash and signature of every signature not done yet.
std::vector<DkimFacts> finish(std::string_view message, std::vector<Pending> sigs, const Options& o);

// All three steps inline (the unit tests; the filter runs finish() on the worker pool).
boost::asio::awaitable<std::vector<DkimFacts>> verify(std::string message, Lookup lookup, Options o);

}  // namespace filters::dkim
