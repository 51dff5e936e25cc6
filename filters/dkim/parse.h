// DKIM's pure text parts (RFC 6376): tag lists, DKIM-Signature values, key records, and the simple
// and relaxed canonicalisation. No Asio, no DNS, no cryptography: the fuzz target
// (tests/fuzz/dkim_fuzz.cc) builds on this alone (library mxdkim_parse).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace filters::dkim {

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
// A header field's name, lower-case, white space before the colon removed ("" without a colon).
std::string field_name(std::string_view field);

}  // namespace filters::dkim
