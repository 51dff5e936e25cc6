// DKIM verification (RFC 6376, RFC 8463 for ed25519-sha256) as a pure core: parsers, canonicalisation,
// and the check of every signature against an abstract async key lookup (net::Resolver in the
// filter, a fake table in the unit tests). No Asio I/O of its own; the CPU part (finish()) is a
// plain function the filter runs on the worker pool. Cryptography is OpenSSL EVP only.
//  * Results are the RFC 8601 words (filters::AuthResult): pass, fail (bad signature or body hash,
//    revoked key), policy (rsa-sha1, RSA key under min_rsa_bits, x= expired), permerror (syntax,
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

#include "filters/sender_auth.h"
#include "net/dns_parse.h"

namespace filters::dkim {

// One DNS query: the answer, or Timeout/Failure status for a lookup that could not be made.
using Lookup = std::function<boost::asio::awaitable<net::DnsAnswer>(std::string name, net::DnsType type)>;

enum class Canon { Simple, Relaxed };

// A tag-list (RFC 6376 §3.2): names to values, white space around both removed (inside values it
// stays). nullopt on a syntax error or a duplicate tag (`error` says which).
std::optional<std::map<std::string, std::string>> parse_tag_list(std::string_view text, std::string& error);

struct Signature {
  std::string algorithm;            // a=, lower-case: "rsa-sha256", "ed25519-sha256", "rsa-sha1", ...
  std::string b;                    // b= decoded
  std::string b_text;               // b= as base64 without white space (header.b)
  std::string bh;                   // bh= decoded
  Canon header_canon = Canon::Simple;
  Canon body_canon = Canon::Simple;
  std::string domain;               // d=, lower-case
  std::vector<std::string> headers; // h=, lower-case, in order
  std::string identity;             // i= ("" when absent; the default is "@" + d)
  std::optional<uint64_t> length;   // l=
  std::string selector;             // s=
  std::optional<uint64_t> timestamp;   // t=
  std::optional<uint64_t> expiration;  // x=
};

// The DKIM-Signature value parsed and checked (§3.5, §6.1.1): v=1, required tags, base64, h=
// including From, i= within d=, q=dns/txt, t <= x. nullopt: permerror (`error` says why).
// What could be read of d/s/i/a/b before the error is kept in `partial` for the header.
std::optional<Signature> parse_signature(std::string_view value, std::string& error, Signature* partial = nullptr);

struct Key {
  std::string type = "rsa";             // k=
  std::string public_key;               // p= decoded; empty: revoked
  std::vector<std::string> hashes;      // h= (empty: any)
  bool testing = false;                 // t=y
  bool strict = false;                  // t=s: i= must not be a subdomain of d=
};
// A key record (§3.6.1). nullopt: malformed (`error` says why).
std::optional<Key> parse_key(std::string_view txt, std::string& error);

// Canonicalisation (§3.4). `field` is one whole header field with its CRLF line ends
// ("Name: value\r\n\tmore\r\n"); `body` the body in CRLF form.
std::string canon_header(std::string_view field, Canon c);
std::string canon_body(std::string_view body, Canon c);
// The message with every bare LF turned into CRLF.
std::string to_crlf(std::string_view message);

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
