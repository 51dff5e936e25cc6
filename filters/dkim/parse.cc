// DKIM's text parts: tag lists, signature and key records, canonicalisation (see parse.h).
#include "filters/dkim/parse.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fmt/format.h>

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

}  // namespace

std::string field_name(std::string_view field) {
  size_t colon = field.find(':');
  if (colon == std::string_view::npos) return {};
  std::string_view n = field.substr(0, colon);
  while (!n.empty() && wsp(n.back())) n.remove_suffix(1);
  return core::lowercase(n);
}

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

}  // namespace filters::dkim
