// DKIM verification core: tag lists, signature and key records, canonicalisation, the key lookups
// and the check of each signature with OpenSSL EVP (see dkim.h for the result rules).
#include "filters/dkim/dkim.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <memory>

#include "core/base64.h"
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

std::string without_fws(std::string_view s) {
  std::string out;
  for (char c : s)
    if (!fws(c)) out += c;
  return out;
}

std::vector<std::string> colon_list(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t c = s.find(':', pos);
    out.push_back(core::lowercase(trim_fws(s.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos))));
    if (c == std::string_view::npos) break;
    pos = c + 1;
  }
  return out;
}

bool tag_name_ok(std::string_view n) {
  if (n.empty() || !std::isalpha(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::optional<uint64_t> number(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> base64(std::string_view s) { return core::base64_decode(without_fws(s)); }

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

// The field's name, lower-case ("" when it has no colon).
std::string field_name(std::string_view field) {
  size_t colon = field.find(':');
  if (colon == std::string_view::npos) return {};
  std::string_view n = field.substr(0, colon);
  while (!n.empty() && wsp(n.back())) n.remove_suffix(1);
  return core::lowercase(n);
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

std::optional<std::map<std::string, std::string>> parse_tag_list(std::string_view text, std::string& error) {
  std::map<std::string, std::string> tags;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t semi = text.find(';', pos);
    std::string_view spec = trim_fws(text.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
    if (!spec.empty()) {
      size_t eq = spec.find('=');
      if (eq == std::string_view::npos) {
        error = fmt::format("tag without '=': {}", core::safe_text(spec, 40));
        return std::nullopt;
      }
      std::string name(trim_fws(spec.substr(0, eq)));
      if (!tag_name_ok(name)) {
        error = fmt::format("bad tag name: {}", core::safe_text(name, 40));
        return std::nullopt;
      }
      if (!tags.emplace(name, std::string(trim_fws(spec.substr(eq + 1)))).second) {
        error = fmt::format("duplicate tag {}=", name);
        return std::nullopt;
      }
    }
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
  }
  return tags;
}

std::optional<Signature> parse_signature(std::string_view value, std::string& error, Signature* partial) {
  Signature scratch;
  Signature& s = partial ? *partial : scratch;
  auto tags = parse_tag_list(value, error);
  if (!tags) return std::nullopt;
  auto get = [&](const char* n) -> const std::string* {
    auto it = tags->find(n);
    return it == tags->end() ? nullptr : &it->second;
  };
  auto fail = [&](std::string why) -> std::optional<Signature> {
    error = std::move(why);
    return std::nullopt;
  };
  if (auto d = get("d")) s.domain = core::lowercase(*d);
  if (auto sel = get("s")) s.selector = *sel;
  if (auto i = get("i")) s.identity = *i;
  if (auto a = get("a")) s.algorithm = core::lowercase(*a);
  if (auto b = get("b")) s.b_text = without_fws(*b);
  for (const char* req : {"v", "a", "b", "bh", "d", "h", "s"})
    if (!get(req)) return fail(fmt::format("no {}= tag", req));
  if (*get("v") != "1") return fail("v= is not 1");
  if (s.domain.empty() || s.selector.empty()) return fail("empty d= or s=");
  auto b = base64(*get("b"));
  if (!b || b->empty()) return fail("b= is not base64");
  s.b = std::move(*b);
  auto bh = base64(*get("bh"));
  if (!bh || bh->empty()) return fail("bh= is not base64");
  s.bh = std::move(*bh);
  if (auto c = get("c")) {
    std::string cv = core::lowercase(*c);
    size_t slash = cv.find('/');
    std::string head = cv.substr(0, slash), body = slash == std::string::npos ? "simple" : cv.substr(slash + 1);
    auto canon = [](const std::string& n) -> std::optional<Canon> {
      if (n == "simple") return Canon::Simple;
      if (n == "relaxed") return Canon::Relaxed;
      return std::nullopt;
    };
    auto hc = canon(head), bc = canon(body);
    if (!hc || !bc) return fail("unknown c= canonicalisation");
    s.header_canon = *hc;
    s.body_canon = *bc;
  }
  s.headers = colon_list(*get("h"));
  if (std::find(s.headers.begin(), s.headers.end(), "from") == s.headers.end()) return fail("h= does not include From");
  if (!s.identity.empty()) {
    size_t at = s.identity.rfind('@');
    if (at == std::string::npos) return fail("i= without @");
    std::string idom = core::lowercase(std::string_view(s.identity).substr(at + 1));
    if (idom != s.domain && !idom.ends_with("." + s.domain)) return fail("i= is not within d=");
  }
  if (auto l = get("l")) {
    s.length = number(*l, 19);
    if (!s.length) return fail("bad l=");
  }
  if (auto q = get("q")) {
    auto methods = colon_list(*q);
    if (std::find(methods.begin(), methods.end(), "dns/txt") == methods.end()) return fail("q= without dns/txt");
  }
  if (auto t = get("t")) {
    s.timestamp = number(*t, 12);
    if (!s.timestamp) return fail("bad t=");
  }
  if (auto x = get("x")) {
    s.expiration = number(*x, 12);
    if (!s.expiration) return fail("bad x=");
    if (s.timestamp && *s.expiration < *s.timestamp) return fail("x= before t=");
  }
  return s;
}

std::optional<Key> parse_key(std::string_view txt, std::string& error) {
  auto tags = parse_tag_list(txt, error);
  if (!tags) return std::nullopt;
  Key k;
  auto it = tags->find("v");
  if (it != tags->end() && it->second != "DKIM1") {
    error = "v= is not DKIM1";
    return std::nullopt;
  }
  if ((it = tags->find("k")) != tags->end()) k.type = core::lowercase(it->second);
  if ((it = tags->find("h")) != tags->end()) k.hashes = colon_list(it->second);
  if ((it = tags->find("s")) != tags->end()) {
    auto services = colon_list(it->second);
    if (std::find(services.begin(), services.end(), "*") == services.end() &&
        std::find(services.begin(), services.end(), "email") == services.end()) {
      error = "key not for email (s=)";
      return std::nullopt;
    }
  }
  if ((it = tags->find("t")) != tags->end())
    for (const auto& f : colon_list(it->second)) {
      if (f == "y") k.testing = true;
      if (f == "s") k.strict = true;
    }
  if ((it = tags->find("p")) == tags->end()) {
    error = "no p= tag";
    return std::nullopt;
  }
  if (!trim_fws(it->second).empty()) {
    auto p = base64(it->second);
    if (!p || p->empty()) {
      error = "p= is not base64";
      return std::nullopt;
    }
    k.public_key = std::move(*p);
  }
  return k;
}

std::string canon_header(std::string_view field, Canon c) {
  if (c == Canon::Simple) return std::string(field);
  size_t colon = field.find(':');
  if (colon == std::string_view::npos) return std::string(field);
  std::string out = field_name(field) + ":";
  bool space = false, started = false;
  for (char ch : field.substr(colon + 1)) {
    if (ch == '\r' || ch == '\n') continue;  // unfold
    if (wsp(ch)) {
      space = true;
      continue;
    }
    if (space && started) out += ' ';
    space = false;
    started = true;
    out += ch;
  }
  return out + "\r\n";
}

std::string canon_body(std::string_view body, Canon c) {
  std::string out;
  if (c == Canon::Simple) {
    out.assign(body);
    if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  } else {
    out.reserve(body.size());
    size_t i = 0;
    while (i < body.size()) {
      size_t e = body.find("\r\n", i);
      std::string_view line = body.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i);
      bool space = false;
      for (char ch : line) {
        if (wsp(ch)) {
          space = true;
          continue;
        }
        if (space) out += ' ';
        space = false;
        out += ch;
      }
      out += "\r\n";
      i = e == std::string_view::npos ? body.size() : e + 2;
    }
  }
  while (out.size() >= 4 && out.ends_with("\r\n\r\n")) out.resize(out.size() - 2);
  if (c == Canon::Simple && out.empty()) out = "\r\n";
  if (c == Canon::Relaxed && out == "\r\n") out.clear();
  return out;
}

std::string to_crlf(std::string_view m) {
  std::string out;
  out.reserve(m.size() + m.size() / 32);
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) out += '\r';
    out += m[i];
  }
  return out;
}

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
