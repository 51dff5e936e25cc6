// DKIM verification (filters/dkim/dkim.h) against a fake key table: the tag-list, signature and key
// parsers, canonicalisation (the RFC 6376 §3.4.6 example), l=, messages signed here with OpenSSL
// (RSA-2048, Ed25519; relaxed and simple) that must verify, and every rule that must not give pass
// (altered message, no key, revoked/malformed key, bad b=, t=s, x=, h= without From, i= outside
// d=, rsa-sha1, short key, DNS timeout/SERVFAIL, max_signatures); and the filter's header.
#include <utility>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <map>

#include "core/base64.h"
#include "core/text.h"
#include "filters/dkim/dkim.h"
#include "filters/dkim/dkim_filter.h"
#include "filters/auth_results.h"
#include "filters/owned_headers.h"

namespace asio = boost::asio;
namespace dkim = filters::dkim;
using filters::AuthResult;
using filters::DkimFacts;
using net::DnsAnswer;
using net::DnsStatus;
using net::DnsType;

namespace {

struct FakeDns {
  std::map<std::string, DnsAnswer> table;  // TXT only
  std::vector<std::string> asked;
  void txt(const std::string& name, std::vector<std::string> records) {
    table[name].status = DnsStatus::Ok;
    table[name].txt = std::move(records);
  }
  void status(const std::string& name, DnsStatus s) { table[name].status = s; }
  dkim::Lookup lookup() {
    return [this](std::string name, DnsType) -> asio::awaitable<DnsAnswer> {
      asked.push_back(name);
      auto it = table.find(name);
      if (it != table.end()) co_return it->second;
      DnsAnswer none;
      none.status = DnsStatus::NxDomain;
      co_return none;
    };
  }
};

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Pkey rsa(size_t bits) { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits), &EVP_PKEY_free); }
Pkey ed25519() { return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free); }

EVP_PKEY* rsa2048() {
  static Pkey k = rsa(2048);
  return k.get();
}
EVP_PKEY* ed_key() {
  static Pkey k = ed25519();
  return k.get();
}

std::string b64(std::string_view s) { return core::base64_encode(s); }

std::string sha256(std::string_view d) {
  unsigned char out[32];
  unsigned n = 0;
  EVP_Digest(d.data(), d.size(), out, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

// The key record for a public key.
std::string key_record(EVP_PKEY* k, const std::string& extra = "") {
  if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
    unsigned char raw[32];
    size_t n = sizeof raw;
    EVP_PKEY_get_raw_public_key(k, raw, &n);
    return "v=DKIM1; k=ed25519; " + extra + "p=" + b64(std::string_view(reinterpret_cast<char*>(raw), n));
  }
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(k, &der);
  std::string rec = "v=DKIM1; k=rsa; " + extra + "p=" + b64(std::string_view(reinterpret_cast<char*>(der), n));
  OPENSSL_free(der);
  return rec;
}

struct SignOpts {
  EVP_PKEY* key = rsa2048();
  std::string a = "rsa-sha256";
  std::string d = "example.test";
  std::string s = "sel";
  std::string c = "relaxed/relaxed";
  std::string h = "from:to:subject";
  std::string extra;             // more tags, "i=@example.test; "
  std::optional<size_t> l;       // sign only the first l octets of the canonical body
};

dkim::Canon canon_named(std::string_view n) { return n == "relaxed" ? dkim::Canon::Relaxed : dkim::Canon::Simple; }

// A test signer (RFC 6376 §5): the fields of h= picked from the bottom up, the signature field
// with an empty b=, then b= appended. Returns the message (LF) with the new field on top.
std::string sign(const std::string& message, const SignOpts& o) {
  std::string m = dkim::to_crlf(message);
  size_t split = m.find("\r\n\r\n");
  std::string head = m.substr(0, split + 2), body = m.substr(split + 4);
  std::vector<std::string> fields;
  for (size_t pos = 0; pos < head.size();) {
    size_t end = pos;
    do end = head.find("\r\n", end) + 2;
    while (end < head.size() && (head[end] == ' ' || head[end] == '\t'));
    fields.push_back(head.substr(pos, end - pos));
    pos = end;
  }
  auto hc = canon_named(o.c.substr(0, o.c.find('/'))), bc = canon_named(o.c.substr(o.c.find('/') + 1));
  std::string cb = dkim::canon_body(body, bc);
  if (o.l) cb.resize(*o.l);
  std::string value = "v=1; a=" + o.a + "; c=" + o.c + "; d=" + o.d + "; s=" + o.s + "; " + o.extra +
                      (o.l ? "l=" + std::to_string(*o.l) + "; " : "") + "h=" + o.h + ";\r\n\tbh=" + b64(sha256(cb)) + "; b=";
  std::string data;
  std::vector<bool> used(fields.size());
  std::string names = o.h + ":";
  for (size_t p = 0, c; (c = names.find(':', p)) != std::string::npos; p = c + 1) {
    std::string n = names.substr(p, c - p);
    for (size_t i = fields.size(); i-- > 0;) {
      if (used[i] || !core::iequals(fields[i].substr(0, fields[i].find(':')), n)) continue;
      used[i] = true;
      data += dkim::canon_header(fields[i], hc);
      break;
    }
  }
  std::string self = dkim::canon_header("DKIM-Signature: " + value + "\r\n", hc);
  data += self.substr(0, self.size() - 2);
  bool ed = EVP_PKEY_get_base_id(o.key) == EVP_PKEY_ED25519;
  std::string tbs = ed ? sha256(data) : data;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, ed ? nullptr : (o.a == "rsa-sha1" ? EVP_sha1() : EVP_sha256()), nullptr, o.key);
  size_t n = 0;
  EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size());
  std::string sig(n, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n, reinterpret_cast<const unsigned char*>(tbs.data()),
                 tbs.size());
  sig.resize(n);
  EVP_MD_CTX_free(ctx);
  std::string field = "DKIM-Signature: " + value + b64(sig) + "\n";
  std::string out;
  for (size_t i = 0; i < field.size(); ++i)
    if (field[i] != '\r') out += field[i];
  return out + message;
}

const std::string kMessage =
    "From: Alice <alice@example.test>\n"
    "To: bob@example.net\n"
    "Subject:  Hello   world \n"
    "Date: Mon, 07 Dec 2026 02:00:00 +0000\n"
    "\n"
    "Hi Bob,\n"
    "  this is  a test.  \n"
    "\n"
    "\n";

std::vector<DkimFacts> run(FakeDns& dns, const std::string& message, dkim::Options o = {}) {
  asio::io_context io;
  auto f = asio::co_spawn(io, dkim::verify(message, dns.lookup(), o), asio::use_future);
  io.run();
  return f.get();
}

FakeDns dns_with_keys() {
  FakeDns dns;
  dns.txt("sel._domainkey.example.test", {key_record(rsa2048())});
  dns.txt("ed._domainkey.example.test", {key_record(ed_key())});
  return dns;
}

AuthResult only(FakeDns& dns, const std::string& message, dkim::Options o = {}) {
  auto facts = run(dns, message, o);
  EXPECT_EQ(facts.size(), 1u);
  return facts.empty() ? AuthResult::None : facts[0].result;
}

std::string detail(FakeDns& dns, const std::string& message) {
  auto facts = run(dns, message);
  return facts.empty() ? "" : facts[0].detail;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// parsers
TEST(DkimTagList, ParsesWithFoldingWhiteSpace) {
  std::string err;
  auto t = dkim::parse_tag_list(" v = 1 ;\r\n\ta=rsa-sha256; b = ab cd\r\n ef ; x_1=;", err);
  ASSERT_TRUE(t) << err;
  EXPECT_EQ(t->at("v"), "1");
  EXPECT_EQ(t->at("a"), "rsa-sha256");
  EXPECT_EQ(t->at("b"), "ab cd\r\n ef");
  EXPECT_EQ(t->at("x_1"), "");
}

TEST(DkimTagList, DuplicatesAndGarbageAreErrors) {
  std::string err;
  EXPECT_FALSE(dkim::parse_tag_list("a=1; b=2; a=3", err));
  EXPECT_NE(err.find("duplicate"), std::string::npos) << err;
  EXPECT_FALSE(dkim::parse_tag_list("a=1; junk; b=2", err));
  EXPECT_FALSE(dkim::parse_tag_list("1a=1", err));
  EXPECT_FALSE(dkim::parse_tag_list("=1", err));
}

TEST(DkimSignature, ParsesAllTagsAndIgnoresUnknownOnes) {
  std::string err;
  auto s = dkim::parse_signature(
      "v=1; a=RSA-SHA256; c=relaxed; d=Example.TEST; s=sel; i=user@sub.example.test; q=dns/txt; l=10; t=100; "
      "x=200; z=From:foo; future=whatever; h=From : To; bh=YWJj; b=ZG VmZw==",
      err);
  ASSERT_TRUE(s) << err;
  EXPECT_EQ(s->algorithm, "rsa-sha256");
  EXPECT_EQ(s->header_canon, dkim::Canon::Relaxed);
  EXPECT_EQ(s->body_canon, dkim::Canon::Simple);
  EXPECT_EQ(s->domain, "example.test");
  EXPECT_EQ(s->headers, (std::vector<std::string>{"from", "to"}));
  EXPECT_EQ(*s->length, 10u);
  EXPECT_EQ(*s->timestamp, 100u);
  EXPECT_EQ(*s->expiration, 200u);
  EXPECT_EQ(s->b, "defg");
  EXPECT_EQ(s->b_text, "ZGVmZw==");
  EXPECT_EQ(s->bh, "abc");
}

TEST(DkimSignature, SemanticErrors) {
  const std::string base = "a=rsa-sha256; d=example.test; s=sel; bh=YWJj; b=ZGVm; ";
  struct Case {
    std::string value, why;
  } cases[] = {
      {base + "v=1; h=to:subject", "From"},
      {base + "v=2; h=from", "v="},
      {base + "h=from", "no v="},
      {base + "v=1; h=from; i=user@other.test", "i="},
      {base + "v=1; h=from; i=user@notexample.test", "i="},
      {base + "v=1; h=from; c=fancy/simple", "c="},
      {base + "v=1; h=from; q=http", "q="},
      {base + "v=1; h=from; l=abc", "l="},
      {base + "v=1; h=from; t=20; x=10", "x="},
      {"v=1; a=rsa-sha256; d=example.test; s=sel; bh=YWJj; b=!!notbase64; h=from", "b="},
      {"v=1; a=rsa-sha256; d=example.test; s=sel; bh=YWJj; b=; h=from", "b="},
      {"v=1; a=rsa-sha256; d=example.test; s=sel; b=ZGVm; h=from", "bh="},
      {base + "v=1; h=from; d=again.test", "duplicate"},
  };
  for (const auto& c : cases) {
    std::string err;
    EXPECT_FALSE(dkim::parse_signature(c.value, err)) << c.value;
    EXPECT_NE(err.find(c.why), std::string::npos) << c.value << " -> " << err;
  }
}

TEST(DkimKey, Records) {
  std::string err;
  auto k = dkim::parse_key("v=DKIM1; k=ed25519; h=sha256; t=y:s; s=email; p=YWJj", err);
  ASSERT_TRUE(k) << err;
  EXPECT_EQ(k->type, "ed25519");
  EXPECT_TRUE(k->testing);
  EXPECT_TRUE(k->strict);
  EXPECT_EQ(k->public_key, "abc");
  auto revoked = dkim::parse_key("v=DKIM1; p=", err);
  ASSERT_TRUE(revoked) << err;
  EXPECT_TRUE(revoked->public_key.empty());
  EXPECT_EQ(revoked->type, "rsa");
  EXPECT_FALSE(dkim::parse_key("v=DKIM2; p=YWJj", err));
  EXPECT_FALSE(dkim::parse_key("v=DKIM1; k=rsa", err));
  EXPECT_FALSE(dkim::parse_key("v=DKIM1; p=%%%", err));
  EXPECT_FALSE(dkim::parse_key("v=DKIM1; s=web; p=YWJj", err));
  EXPECT_FALSE(dkim::parse_key("p=YWJj; p=YWJj", err));
}

// ------------------------------------------------------------------------------------------------
// canonicalisation: RFC 6376 §3.4.6
TEST(DkimCanon, Rfc6376Example) {
  const std::string a = "A: X\r\n", b = "B : Y\t\r\n\tZ  \r\n";
  const std::string body = " C \r\nD \t E\r\n\r\n\r\n";
  EXPECT_EQ(dkim::canon_header(a, dkim::Canon::Relaxed), "a:X\r\n");
  EXPECT_EQ(dkim::canon_header(b, dkim::Canon::Relaxed), "b:Y Z\r\n");
  EXPECT_EQ(dkim::canon_body(body, dkim::Canon::Relaxed), " C\r\nD E\r\n");
  EXPECT_EQ(dkim::canon_header(a, dkim::Canon::Simple), a);
  EXPECT_EQ(dkim::canon_header(b, dkim::Canon::Simple), b);
  EXPECT_EQ(dkim::canon_body(body, dkim::Canon::Simple), " C \r\nD \t E\r\n");
}

TEST(DkimCanon, EmptyBodiesAndMissingFinalLineEnd) {
  EXPECT_EQ(dkim::canon_body("", dkim::Canon::Simple), "\r\n");
  EXPECT_EQ(dkim::canon_body("\r\n\r\n", dkim::Canon::Simple), "\r\n");
  EXPECT_EQ(dkim::canon_body("", dkim::Canon::Relaxed), "");
  EXPECT_EQ(dkim::canon_body(" \r\n\r\n", dkim::Canon::Relaxed), "");
  EXPECT_EQ(dkim::canon_body("x", dkim::Canon::Relaxed), "x\r\n");
  EXPECT_EQ(dkim::canon_header("Subject: a:  b\r\n", dkim::Canon::Relaxed), "subject:a: b\r\n");
  EXPECT_EQ(dkim::to_crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
}

// ------------------------------------------------------------------------------------------------
// signatures that verify
TEST(DkimVerify, Rsa2048RelaxedAndSimplePass) {
  FakeDns dns = dns_with_keys();
  for (const char* c : {"relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"}) {
    SignOpts o;
    o.c = c;
    auto facts = run(dns, sign(kMessage, o));
    ASSERT_EQ(facts.size(), 1u);
    EXPECT_EQ(facts[0].result, AuthResult::Pass) << c << ": " << facts[0].detail;
    EXPECT_EQ(facts[0].domain, "example.test");
    EXPECT_EQ(facts[0].selector, "sel");
    EXPECT_EQ(facts[0].algorithm, "rsa-sha256");
    EXPECT_GE(facts[0].b_prefix.size(), 8u);
  }
  EXPECT_EQ(dns.asked.front(), "sel._domainkey.example.test");
}

TEST(DkimVerify, Ed25519Pass) {
  FakeDns dns = dns_with_keys();
  SignOpts o;
  o.key = ed_key();
  o.a = "ed25519-sha256";
  o.s = "ed";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Pass);
  o.c = "simple/simple";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Pass);
}

TEST(DkimVerify, RelaxedSurvivesWhiteSpaceChangesSimpleDoesNot) {
  FakeDns dns = dns_with_keys();
  SignOpts o;
  std::string relaxed = sign(kMessage, o);
  EXPECT_EQ(only(dns, replace(relaxed, "Subject:  Hello   world", "subject: Hello world")), AuthResult::Pass);
  o.c = "simple/simple";
  std::string simple = sign(kMessage, o);
  EXPECT_EQ(only(dns, replace(simple, "Subject:  Hello   world", "subject: Hello world")), AuthResult::Fail);
}

TEST(DkimVerify, OversignedHeadersVerifyAndBlockAdditions) {
  FakeDns dns = dns_with_keys();
  SignOpts o;
  o.h = "from:to:subject:subject";
  std::string signed_msg = sign(kMessage, o);
  EXPECT_EQ(only(dns, signed_msg), AuthResult::Pass);
  EXPECT_EQ(only(dns, replace(signed_msg, "Date:", "Subject: added\nDate:")), AuthResult::Fail);
  // without oversigning, an added field below the signed ones does not break the signature of
  // the bottom-up selection when it is a new name
  EXPECT_EQ(only(dns, replace(signed_msg, "Date:", "X-Added: 1\nDate:")), AuthResult::Pass);
}

TEST(DkimVerify, AlteredBodyOrHeaderFails) {
  FakeDns dns = dns_with_keys();
  std::string m = sign(kMessage, {});
  auto facts = run(dns, replace(m, "this is", "this was"));
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].result, AuthResult::Fail);
  EXPECT_NE(facts[0].detail.find("body hash"), std::string::npos);
  facts = run(dns, replace(m, "To: bob@example.net", "To: eve@example.net"));
  EXPECT_EQ(facts[0].result, AuthResult::Fail);
  EXPECT_NE(facts[0].detail.find("signature"), std::string::npos);
}

TEST(DkimVerify, LengthLimitedBodyNotesUnsignedContent) {
  FakeDns dns = dns_with_keys();
  SignOpts o;
  o.l = 9;  // "Hi Bob,\r\n"
  std::string m = sign(kMessage, o) + "appended by a list\n";
  auto facts = run(dns, m);
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].result, AuthResult::Pass) << facts[0].detail;
  EXPECT_NE(facts[0].detail.find("past l="), std::string::npos) << facts[0].detail;
  // l= longer than the body
  o.l.reset();
  o.extra = "l=100000; ";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::PermError);
}

// ------------------------------------------------------------------------------------------------
// nothing else is pass
TEST(DkimVerify, UnsignedMessageHasNoResults) {
  FakeDns dns;
  EXPECT_TRUE(run(dns, kMessage).empty());
  EXPECT_TRUE(dns.asked.empty());
}

TEST(DkimVerify, NoKeyIsPermerror) {
  FakeDns dns;
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::PermError);
  dns.status("sel._domainkey.example.test", DnsStatus::NoData);
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::PermError);
}

TEST(DkimVerify, RevokedKeyFailsMalformedKeyIsPermerror) {
  FakeDns dns;
  dns.txt("sel._domainkey.example.test", {"v=DKIM1; k=rsa; p="});
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::Fail);
  EXPECT_EQ(detail(dns, sign(kMessage, {})), "key revoked");
  dns.txt("sel._domainkey.example.test", {"v=DKIM1; k=rsa; p=YWJjZGVm"});  // base64, not a key
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::PermError);
  dns.txt("sel._domainkey.example.test", {"garbage without tags"});
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::PermError);
  dns.txt("sel._domainkey.example.test", {key_record(ed_key())});  // ed25519 key for an rsa signature
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::PermError);
  dns.txt("sel._domainkey.example.test", {key_record(rsa2048(), "h=sha1; ")});
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::PermError);
}

TEST(DkimVerify, KeyRecordSplitOverStringsIsJoinedByTheParser) {
  // net/dns_parse joins a TXT record's character-strings; the core sees one string per record
  FakeDns dns;
  dns.txt("sel._domainkey.example.test", {"not a key record", key_record(rsa2048())});
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::Pass);
}

TEST(DkimVerify, UndecodableSignatureIsPermerror) {
  FakeDns dns = dns_with_keys();
  std::string m = sign(kMessage, {});
  size_t b = m.find("; b=") + 4;
  m.insert(b, "*");
  EXPECT_EQ(only(dns, m), AuthResult::PermError);
}

TEST(DkimVerify, StrictKeyRefusesSubdomainIdentity) {
  FakeDns dns;
  dns.txt("sel._domainkey.example.test", {key_record(rsa2048(), "t=s; ")});
  SignOpts o;
  o.extra = "i=user@sub.example.test; ";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::PermError);
  o.extra = "i=user@example.test; ";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Pass);
  dns.txt("sel._domainkey.example.test", {key_record(rsa2048())});  // not strict: a subdomain is fine
  o.extra = "i=user@sub.example.test; ";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Pass);
}

TEST(DkimVerify, ExpiredSignatureIsPolicy) {
  FakeDns dns = dns_with_keys();
  SignOpts o;
  o.extra = "t=1000; x=2000; ";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Policy);
  o.extra = "t=1000; x=99999999999; ";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Pass);
}

TEST(DkimVerify, SignatureWithoutFromOrForeignIdentityIsPermerror) {
  FakeDns dns = dns_with_keys();
  SignOpts o;
  o.h = "to:subject";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::PermError);
  o.h = "from:to";
  o.extra = "i=user@elsewhere.test; ";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::PermError);
  EXPECT_TRUE(dns.asked.empty());  // decided without a lookup
}

TEST(DkimVerify, Sha1AndShortKeysAreRefusedByPolicy) {
  FakeDns dns = dns_with_keys();
  SignOpts o;
  o.a = "rsa-sha1";
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Policy);
  Pkey small = rsa(768);
  dns.txt("small._domainkey.example.test", {key_record(small.get())});
  SignOpts s;
  s.key = small.get();
  s.s = "small";
  EXPECT_EQ(only(dns, sign(kMessage, s)), AuthResult::Policy);
  dkim::Options lax;
  lax.min_rsa_bits = 512;
  EXPECT_EQ(only(dns, sign(kMessage, s), lax), AuthResult::Pass);
}

// A key record whose p= is a well-formed RSA SubjectPublicKeyInfo with a `bits`-bit modulus that is
// no real key (odd, top bit set, no private half): the size check comes before any verification.
std::string fake_rsa_record(size_t bits) {
  auto der = [](uint8_t tag, const std::string& body) {
    std::string len;
    if (body.size() < 128) len = std::string(1, static_cast<char>(body.size()));
    else len = std::string{static_cast<char>(0x82), static_cast<char>(body.size() >> 8), static_cast<char>(body.size() & 0xFF)};
    return std::string(1, static_cast<char>(tag)) + len + body;
  };
  std::string n(bits / 8, static_cast<char>(0x5A));
  n.front() = static_cast<char>(0xC5);
  n.back() = static_cast<char>(0x5B);
  std::string rsa = der(0x30, der(0x02, std::string(1, '\0') + n) + der(0x02, std::string("\x01\x00\x01", 3)));
  const std::string algo("\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00", 15);
  return "v=DKIM1; k=rsa; p=" + b64(der(0x30, algo + der(0x03, std::string(1, '\0') + rsa)));
}

TEST(DkimVerify, RsaKeysOver4096BitsAreRefusedByPolicy) {
  FakeDns dns;
  SignOpts o;  // signed with the 2048-bit key: whatever the published key, no signature verifies
  dns.txt("sel._domainkey.example.test", {fake_rsa_record(8192)});
  auto facts = run(dns, sign(kMessage, o));
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].result, AuthResult::Policy);
  EXPECT_EQ(facts[0].detail, "RSA key of 8192 bits not accepted");
  dns.txt("sel._domainkey.example.test", {fake_rsa_record(4104)});
  EXPECT_EQ(only(dns, sign(kMessage, o)), AuthResult::Policy);
  // 4096 bits is accepted: this key simply does not verify the signature
  dns.txt("sel._domainkey.example.test", {fake_rsa_record(4096)});
  facts = run(dns, sign(kMessage, o));
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].result, AuthResult::Fail);
  EXPECT_EQ(facts[0].detail, "signature did not verify");
}

TEST(DkimVerify, MalformedKeyRecordsNeverPass) {
  FakeDns dns;
  SignOpts ed;
  ed.key = ed_key();
  ed.a = "ed25519-sha256";
  const std::string ed_record = key_record(ed_key());
  std::string raw = *core::base64_decode(ed_record.substr(ed_record.find("p=") + 2));
  const std::string rsa_p = key_record(rsa2048()).substr(key_record(rsa2048()).find("p="));
  struct Case {
    std::string record;
    bool ed;
    AuthResult want;
    std::string detail_has;
  };
  const std::vector<Case> cases = {
      {"v=DKIM1; k=rsa; p=MIIBIjANBgkq*not*base64!", false, AuthResult::PermError, "p= is not base64"},
      {"v=DKIM1; k=dsa; " + rsa_p, false, AuthResult::PermError, "key type dsa"},
      {"v=DKIM1; k=rsa; this is not a tag; " + rsa_p, false, AuthResult::PermError, "malformed key"},
      {"v=DKIM1; k=rsa; h=sha1; " + rsa_p, false, AuthResult::PermError, "h= excludes sha256"},
      {"v=DKIM1; k=rsa; h=sha1:sha256; " + rsa_p, false, AuthResult::Pass, "good signature"},
      {"v=DKIM2; k=rsa; " + rsa_p, false, AuthResult::PermError, "v= is not DKIM1"},
      {"v=DKIM1; k=rsa; s=ftp; " + rsa_p, false, AuthResult::PermError, "not for email"},
      {"v=DKIM1; k=ed25519; p=" + b64(raw.substr(0, 31)), true, AuthResult::PermError, "malformed Ed25519 key"},
      {"v=DKIM1; k=ed25519; p=" + b64(raw + '\0'), true, AuthResult::PermError, "malformed Ed25519 key"},
      {"v=DKIM1; k=rsa; p=" + b64(std::string(6000, '\x42')), false, AuthResult::PermError, "malformed RSA key"},
      {"v=DKIM1; k=rsa; n=" + std::string(6000, 'x') + "; " + rsa_p, false, AuthResult::Pass, "good signature"},
  };
  for (const auto& c : cases) {
    dns.txt("sel._domainkey.example.test", {c.record});
    SignOpts o = c.ed ? ed : SignOpts{};
    o.s = "sel";
    auto facts = run(dns, sign(kMessage, o));
    ASSERT_EQ(facts.size(), 1u) << c.record.substr(0, 60);
    EXPECT_EQ(facts[0].result, c.want) << c.record.substr(0, 60) << ": " << facts[0].detail;
    EXPECT_NE(facts[0].detail.find(c.detail_has), std::string::npos) << facts[0].detail;
  }
}

TEST(DkimVerify, DnsTimeoutOrServfailIsTemperror) {
  FakeDns dns;
  dns.status("sel._domainkey.example.test", DnsStatus::Timeout);
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::TempError);
  dns.status("sel._domainkey.example.test", DnsStatus::Failure);
  EXPECT_EQ(only(dns, sign(kMessage, {})), AuthResult::TempError);
}

TEST(DkimVerify, EverySignatureUpToTheLimitIsEvaluated) {
  FakeDns dns = dns_with_keys();
  std::string m = kMessage;
  SignOpts ed;
  ed.key = ed_key();
  ed.a = "ed25519-sha256";
  ed.s = "ed";
  m = sign(m, ed);
  m = sign(m, {});
  SignOpts nokey;
  nokey.s = "gone";
  m = sign(m, nokey);
  auto facts = run(dns, m);
  ASSERT_EQ(facts.size(), 3u);
  EXPECT_EQ(facts[0].result, AuthResult::PermError);  // the top one: "gone"
  EXPECT_EQ(facts[1].result, AuthResult::Pass);
  EXPECT_EQ(facts[2].result, AuthResult::Pass);
  EXPECT_EQ(facts[2].algorithm, "ed25519-sha256");
  dkim::Options two;
  two.max_signatures = 2;
  facts = run(dns, m, two);
  ASSERT_EQ(facts.size(), 3u);
  EXPECT_EQ(facts[2].result, AuthResult::Neutral);
  EXPECT_NE(facts[2].detail.find("not checked"), std::string::npos);
}

// ------------------------------------------------------------------------------------------------
// the filter's pure parts
TEST(DkimFilter, AuthenticationResultsField) {
  EXPECT_EQ(dkim::auth_results("mx.example.net", {}), "mx.example.net; dkim=none");
  DkimFacts f{AuthResult::Pass, "example.test", "@example.test", "sel", "rsa-sha256", "abcdefghijkl", "good (sig)"};
  DkimFacts g{AuthResult::Fail, "x.test", "", "s2", "ed25519-sha256", "ABCDEFGHIJKL", "body hash did not verify"};
  EXPECT_EQ(dkim::auth_results("mx.example.net", {f, g}),
            "mx.example.net;\n\tdkim=pass (good _sig_) header.d=example.test header.i=@example.test header.s=sel "
            "header.a=rsa-sha256 header.b=abcdefghijkl;\n\tdkim=fail (body hash did not verify) header.d=x.test header.s=s2 "
            "header.a=ed25519-sha256 header.b=ABCDEFGHIJKL");
}

TEST(DkimFilter, HostileSignatureTagsCannotForgeResults) {
  // d= / s= / i= come from the sender's signature: a value that would need quoting is left out,
  // a comment loses its parentheses, so no "; dkim=pass" can be smuggled into our field.
  DkimFacts f{AuthResult::Fail, "evil.test; dkim=pass header.d=bank.test", "a b@evil.test", "s\"1", "rsa-sha256",
              "abcdefghijkl", "key (from) evil; dkim=pass)"};
  std::string v = dkim::auth_results("mx.example.net", {f});
  EXPECT_EQ(v, "mx.example.net;\n\tdkim=fail (key _from_ evil_ dkim=pass_) header.a=rsa-sha256 header.b=abcdefghijkl");
  EXPECT_FALSE(filters::auth_property_ok(""));
  EXPECT_FALSE(filters::auth_property_ok(std::string(256, 'a')));
  EXPECT_TRUE(filters::auth_property_ok("user@example.test"));
}

TEST(DkimFilter, ScoresPerResultNeverRefuses) {
  dkim::Settings s;
  s.score_fail = 2.5;
  DkimFacts fail{AuthResult::Fail, "x.test"};
  DkimFacts pass{AuthResult::Pass, "y.test"};
  auto v = dkim::verdict_for(s, "mx", {fail, pass, fail});
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_DOUBLE_EQ(v.score, 5);
  EXPECT_EQ(v.tags, (std::vector<std::string>{"DKIM_FAIL=2.5", "DKIM_FAIL=2.5"}));
  ASSERT_EQ(v.add_headers.size(), 1u);
  EXPECT_EQ(v.add_headers[0].name, "Authentication-Results");
  EXPECT_DOUBLE_EQ(dkim::verdict_for(dkim::Settings{}, "mx", {fail}).score, 0);
}

TEST(DkimFilter, OwnedHeaderMatchesOurAuthservId) {
  EXPECT_TRUE(filters::carries_authserv_id(" MX.example.net; dkim=pass", "mx.example.net"));
  EXPECT_TRUE(filters::carries_authserv_id("mx.example.net 1; dkim=pass", "mx.example.net"));
  EXPECT_FALSE(filters::carries_authserv_id("other.example.net; dkim=pass", "mx.example.net"));
  EXPECT_FALSE(filters::carries_authserv_id("mx.example.net.evil; dkim=pass", "mx.example.net"));
}

// ------------------------------------------------------------------------------------------------
// the filter's check without DNS: unsigned mail and authenticated clients
namespace {
filters::Verdict check(std::shared_ptr<filters::Context> ctx) {
  filters::DkimFilter f(dkim::Settings{}, "mx.example.net", nullptr);
  asio::io_context io;
  auto fut = asio::co_spawn(io, f.check(filters::Phase::Data, ctx), asio::use_future);
  io.run();
  return fut.get();
}
std::shared_ptr<filters::Context> data_context() {
  auto ctx = std::make_shared<filters::Context>();
  ctx->cancel = std::make_shared<filters::Cancel>();
  ctx->message = std::make_shared<const std::string>(kMessage);
  ctx->auth = std::make_shared<filters::SenderAuth>();
  return ctx;
}
}  // namespace

TEST(DkimFilter, UnsignedMailIsRecordedAsNone) {
  auto ctx = data_context();
  auto v = check(ctx);
  EXPECT_EQ(v.action, filters::Action::Continue);
  ASSERT_EQ(v.add_headers.size(), 1u);
  EXPECT_EQ(v.add_headers[0].value, "mx.example.net; dkim=none");
  ASSERT_TRUE(ctx->auth->dkim());  // recorded for DMARC: no signature
  EXPECT_TRUE(ctx->auth->dkim()->empty());
}

TEST(DkimFilter, AuthenticatedClientsAreNotChecked) {
  auto ctx = data_context();
  ctx->authenticated = true;
  auto v = check(ctx);
  EXPECT_EQ(v.action, filters::Action::Continue);
  EXPECT_TRUE(v.add_headers.empty());
  EXPECT_FALSE(ctx->auth->dkim());
}
