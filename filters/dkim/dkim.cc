// DKIM verification core: tag lists, signature and key records, canonicalisation, the key lookups
// and the check of each signature with OpenSSL EVP (see dkim.h for the result rules).
#include "filters/dkim/dkim.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fmt/format.h>
#include <memory>

#include "core/text.h"

namespace filters::dkim {
namespace {

bool wsp(char c) { return c == ' ' || c == '\t'; }
bool fws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim_fws(std::string_view s) {
  while (!s.empty() && fws(s.front())) s.remove_prefix(1);
  while (!s.empty() && fws(s.back())) s.remove_suffix(1);
  return s;
}

// Splits a CRLF header block into whole fields (continuation lines included); returns where the
// body starts (after the empty line), or the end when there is none.
size_t split_fields(std::string_view m, std::vector<std::string_view>& fields) {
  size_t pos = 0;
  while (pos < m.size()) {
    if (m.compare(pos, 2, "\r\n") == 0) return pos + 2;
    size_t end = pos;
    do {
      size_t crlf = m.find("\r\n", end);
      end = crlf == std::string_view::npos ? m.size() : crlf + 2;
    } while (end < m.size() && wsp(m[end]));
    fields.push_back(m.substr(pos, end - pos));
    pos = end;
  }
  return m.size();
}

std::string_view field_value(std::string_view field) {
  size_t colon = field.find(':');
  return colon == std::string_view::npos ? std::string_view{} : field.substr(colon + 1);
}

// The header block of an LF message in CRLF form (the body is not copied).
std::string crlf_header_block(std::string_view message) {
  size_t end = message.find("\n\n");
  size_t head = message.starts_with("\n") ? 0 : end == std::string_view::npos ? message.size() : end + 1;
  return to_crlf(message.substr(0, head)) + "\r\n";
}

// The signature field with the value of its b= tag emptied (RFC 6376 §3.7).
std::string without_b(std::string_view field) {
  std::string out(field);
  size_t colon = out.find(':');
  if (colon == std::string::npos) return out;
  size_t pos = colon + 1;
  while (pos <= out.size()) {
    size_t semi = out.find(';', pos);
    size_t end = semi == std::string::npos ? out.size() : semi;
    size_t eq = out.find('=', pos);
    if (eq != std::string::npos && eq < end && trim_fws(std::string_view(out).substr(pos, eq - pos)) == "b") {
      size_t value_end = end;
      // keep the field's final CRLF when b= is the last tag
      if (semi == std::string::npos && out.ends_with("\r\n")) value_end = out.size() - 2;
      out.erase(eq + 1, value_end - (eq + 1));
      break;
    }
    if (semi == std::string::npos) break;
    pos = semi + 1;
  }
  return out;
}

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::string sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out, &n, EVP_sha256(), nullptr) != 1) return {};
  return std::string(reinterpret_cast<char*>(out), n);
}

PkeyPtr rsa_key(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* k = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!k) {  // some publish the bare RSAPublicKey (PKCS#1)
    p = reinterpret_cast<const unsigned char*>(der.data());
    k = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(der.size()));
  }
  if (k && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
    EVP_PKEY_free(k);
    k = nullptr;
  }
  return PkeyPtr(k, &EVP_PKEY_free);
}

// EVP_DigestVerify with `md` (null for Ed25519, which hashes itself).
bool evp_verify(EVP_PKEY* key, const EVP_MD* md, std::string_view data, const std::string& sig) {
  MdCtxPtr ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

void set(Pending& p, AuthResult r, std::string detail) {
  p.facts.result = r;
  p.facts.detail = std::move(detail);
  p.done = true;
}

// The data the header signature covers (§3.7): the h= fields picked from the bottom up, then the
// signature field with b= emptied and without its final CRLF.
std::string signed_headers(const std::vector<std::string_view>& fields, const std::vector<std::string>& names,
                           const Signature& sig, size_t sig_field) {
  std::map<std::string, std::vector<size_t>> by_name;  // indices, top to bottom
  for (size_t i = 0; i < fields.size(); ++i) by_name[field_name(fields[i])].push_back(i);
  std::string data;
  for (const auto& n : names) {
    auto it = by_name.find(n);
    if (it == by_name.end() || it->second.empty()) continue;  // oversigned: contributes nothing
    data += canon_header(fields[it->second.back()], sig.header_canon);
    it->second.pop_back();
  }
  std::string self = canon_header(without_b(fields[sig_field]), sig.header_canon);
  if (self.ends_with("\r\n")) self.resize(self.size() - 2);
  return data + self;
}

// The policy checks that need the key, before any hashing. False when they decided.
bool key_acceptable(Pending& p) {
  const Signature& s = *p.sig;
  const Key& k = *p.key;
  if (k.public_key.empty()) return set(p, AuthResult::Fail, "key revoked"), false;
  std::string want = s.algorithm == "ed25519-sha256" ? "ed25519" : "rsa";
  if (k.type != want) return set(p, AuthResult::PermError, fmt::format("key type {} for {}", k.type, s.algorithm)), false;
  if (!k.hashes.empty() && std::find(k.hashes.begin(), k.hashes.end(), "sha256") == k.hashes.end())
    return set(p, AuthResult::PermError, "key h= excludes sha256"), false;
  if (k.strict && !s.identity.empty() && core::lowercase(core::domain_of(s.identity)) != s.domain)
    return set(p, AuthResult::PermError, "key t=s forbids an i= in a subdomain of d="), false;
  return true;
}

// The body hash of `sig` over the canonical body; false (and p done) on a mismatch.
bool body_matches(Pending& p, const std::string& canon, std::string& note) {
  const Signature& s = *p.sig;
  std::string_view hashed = canon;
  if (s.length) {
    if (*s.length > canon.size()) return set(p, AuthResult::PermError, "l= longer than the body"), false;
    hashed = hashed.substr(0, *s.length);
    if (*s.length < canon.size()) note = fmt::format("{} body octets past l= not signed", canon.size() - *s.length);
  }
  if (sha256(hashed) != s.bh) return set(p, AuthResult::Fail, "body hash did not verify"), false;
  return true;
}

void check_signature(Pending& p, std::string_view data, const Options& o, std::string note) {
  const Signature& s = *p.sig;
  const Key& k = *p.key;
  bool ok = false;
  if (s.algorithm == "rsa-sha256") {
    PkeyPtr key = rsa_key(k.public_key);
    if (!key) return set(p, AuthResult::PermError, "malformed RSA key");
    int bits = EVP_PKEY_get_bits(key.get());
    if (bits < static_cast<int>(o.min_rsa_bits) || bits > 4096)
      return set(p, AuthResult::Policy, fmt::format("RSA key of {} bits not accepted", bits));
    ok = evp_verify(key.get(), EVP_sha256(), data, s.b);
  } else {
    if (k.public_key.size() != 32) return set(p, AuthResult::PermError, "malformed Ed25519 key");
    PkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                            reinterpret_cast<const unsigned char*>(k.public_key.data()), 32),
                &EVP_PKEY_free);
    if (!key) return set(p, AuthResult::PermError, "malformed Ed25519 key");
    ok = evp_verify(key.get(), nullptr, sha256(data), s.b);  // RFC 8463: Ed25519 over the SHA-256
  }
  if (!ok) return set(p, AuthResult::Fail, "signature did not verify");
  std::string detail = "good signature";
  if (k.testing) detail += ", testing key";
  if (!note.empty()) detail += ", " + note;
  set(p, AuthResult::Pass, detail);
}

}  // namespace

std::vector<Pending> collect(std::string_view message, const Options& o) {
  std::string head = crlf_header_block(message);
  std::vector<std::string_view> fields;
  split_fields(head, fields);
  std::vector<Pending> out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (field_name(fields[i]) != "dkim-signature") continue;
    Pending p;
    p.field = i;
    Signature partial;
    std::string error;
    auto sig = parse_signature(field_value(fields[i]), error, &partial);
    p.facts.domain = partial.domain;
    p.facts.identity = partial.identity;
    p.facts.selector = partial.selector;
    p.facts.algorithm = partial.algorithm;
    p.facts.b_prefix = partial.b_text.substr(0, 12);
    if (out.size() >= o.max_signatures) set(p, AuthResult::Neutral, "not checked: over dkim.max_signatures");
    else if (!sig) set(p, AuthResult::PermError, error);
    else if (sig->algorithm == "rsa-sha1") set(p, AuthResult::Policy, "rsa-sha1 not accepted");
    else if (sig->algorithm != "rsa-sha256" && sig->algorithm != "ed25519-sha256")
      set(p, AuthResult::PermError, "unknown algorithm " + core::safe_text(sig->algorithm, 40));
    p.sig = std::move(sig);
    out.push_back(std::move(p));
  }
  return out;
}

boost::asio::awaitable<void> fetch_keys(std::vector<Pending>& sigs, Lookup lookup) {
  for (auto& p : sigs) {
    if (p.done) continue;
    std::string name = p.sig->selector + "._domainkey." + p.sig->domain;
    net::DnsAnswer a = co_await lookup(name, net::DnsType::TXT);
    if (a.status == net::DnsStatus::Timeout || a.status == net::DnsStatus::Failure) {
      set(p, AuthResult::TempError, fmt::format("key lookup {}: {}", name, net::dns_status_name(a.status)));
      continue;
    }
    if (a.status != net::DnsStatus::Ok || a.txt.empty()) {
      set(p, AuthResult::PermError, fmt::format("no key at {}", name));
      continue;
    }
    std::string error;
    for (const auto& txt : a.txt)
      if ((p.key = parse_key(txt, error))) break;
    if (!p.key) set(p, AuthResult::PermError, "malformed key: " + error);
  }
}

std::vector<DkimFacts> finish(std::string_view message, std::vector<Pending> sigs, const Options& o) {
  std::string m = to_crlf(message);
  std::vector<std::string_view> fields;
  size_t body_at = split_fields(m, fields);
  std::string_view body = std::string_view(m).substr(body_at);
  std::map<Canon, std::string> bodies;  // canonical bodies, made once per method
  const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(o.now.time_since_epoch()).count());
  std::vector<DkimFacts> out;
  for (auto& p : sigs) {
    if (!p.done && p.sig->expiration && *p.sig->expiration < now) set(p, AuthResult::Policy, "signature expired (x=)");
    if (!p.done && key_acceptable(p)) {
      auto it = bodies.find(p.sig->body_canon);
      if (it == bodies.end()) it = bodies.emplace(p.sig->body_canon, canon_body(body, p.sig->body_canon)).first;
      std::string note;
      if (body_matches(p, it->second, note))
        check_signature(p, signed_headers(fields, p.sig->headers, *p.sig, p.field), o, note);
    }
    out.push_back(std::move(p.facts));
  }
  return out;
}

boost::asio::awaitable<std::vector<DkimFacts>> verify(std::string message, Lookup lookup, Options o) {
  std::vector<Pending> sigs = collect(message, o);
  co_await fetch_keys(sigs, std::move(lookup));
  co_return finish(message, std::move(sigs), o);
}

}  // namespace filters::dkim
