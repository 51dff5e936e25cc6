// RFC 5321 §4.1.2 path grammar: Path, Mailbox, Dot-string / Quoted-string, Domain / address-literal.
#include "smtp/address.h"

#include <cctype>

#include "core/domain.h"

namespace smtp {
namespace {

constexpr size_t kMaxLocal = 64;
constexpr size_t kMaxDomain = 255;
constexpr size_t kMaxPath = 256;

bool is_atext(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool valid_dot_string(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i + 1] == '.') return false;
    } else if (!is_atext(s[i])) {
      return false;
    }
  }
  return true;
}

// Address literal: [1.2.3.4] or [IPv6:...]; content kept printable (not parsed further).
bool valid_address_literal(std::string_view d) {
  if (d.size() < 3 || d.size() > kMaxDomain || d.front() != '[' || d.back() != ']') return false;
  for (char c : d.substr(1, d.size() - 2))
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':')) return false;
  return true;
}

bool valid_domain(std::string_view d) {
  if (!d.empty() && d.front() == '[') return valid_address_literal(d);
  return core::valid_domain(d, core::DomainRules::Hostname);
}

// Finds the '>' closing the path, skipping quoted strings; npos if none.
size_t find_close(std::string_view s) {
  bool quoted = false;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

// Quoted-string local part: '"' (qtextSMTP / '\' any-printable)* '"'. Returns its length or 0.
size_t quoted_length(std::string_view s) {
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      if (++i >= s.size()) return 0;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return 0;
}

std::optional<std::string> parse_params(std::string_view rest, std::vector<Param>& out) {
  size_t i = 0;
  while (i < rest.size()) {
    if (rest[i] == ' ') { ++i; continue; }
    size_t end = rest.find(' ', i);
    std::string_view tok = rest.substr(i, end == std::string_view::npos ? end : end - i);
    size_t eq = tok.find('=');
    Param p;
    std::string_view key = tok.substr(0, eq);
    if (key.empty()) return "empty parameter name";
    for (char c : key) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return "bad parameter name";
      p.key += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (eq != std::string_view::npos) p.value = std::string(tok.substr(eq + 1));
    out.push_back(std::move(p));
    if (end == std::string_view::npos) break;
    i = end;
  }
  return std::nullopt;
}

PathResult fail(std::string e) { return {std::nullopt, std::move(e)}; }

}  // namespace

bool has_routing_syntax(const Address& a) {
  return a.local.find_first_of("%!@") != std::string::npos;
}

bool is_postmaster(const Address& a, const std::vector<std::string>& local_domains) {
  if (a.quoted || !core::iequals(a.local, "postmaster")) return false;
  if (a.domain.empty()) return true;
  std::string d = lowercase(a.domain);
  for (const auto& l : local_domains)
    if (l == d) return true;
  return false;
}

PathResult parse_path(std::string_view arg, PathKind kind) {
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  for (char c : arg) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return fail("invalid character in address");
  }
  if (arg.empty() || arg.front() != '<') return fail("address must be enclosed in <>");
  size_t close = find_close(arg);
  if (close == std::string_view::npos) return fail("missing '>'");
  std::string_view path = arg.substr(1, close - 1);
  std::string_view rest = arg.substr(close + 1);
  if (!rest.empty() && rest.front() != ' ') return fail("garbage after '>'");
  if (path.size() > kMaxPath) return fail("path too long");

  PathArg out;
  if (auto perr = parse_params(rest, out.params)) return fail(*perr);

  if (path.empty()) {
    if (kind == PathKind::Recipient) return fail("null recipient");
    return {std::move(out), {}};
  }
  if (path.front() == '@') {  // source route: "@a,@b:" — validate and ignore
    size_t colon = path.find(':');
    if (colon == std::string_view::npos) return fail("bad source route");
    std::string_view route = path.substr(0, colon);
    size_t start = 0;
    while (start < route.size()) {
      size_t comma = route.find(',', start);
      std::string_view hop = route.substr(start, comma == std::string_view::npos ? comma : comma - start);
      if (hop.size() < 2 || hop.front() != '@' || !valid_domain(hop.substr(1))) return fail("bad source route");
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    path.remove_prefix(colon + 1);
    out.address.had_route = true;
  }

  std::string_view local, domain;
  if (!path.empty() && path.front() == '"') {
    size_t q = quoted_length(path);
    if (q == 0) return fail("unterminated quoted local part");
    local = path.substr(0, q);
    std::string_view after = path.substr(q);
    if (!after.empty()) {
      if (after.front() != '@') return fail("garbage after quoted local part");
      domain = after.substr(1);
    }
    out.address.quoted = true;
  } else {
    size_t at = path.find('@');
    local = path.substr(0, at);
    if (at != std::string_view::npos) domain = path.substr(at + 1);
    if (domain.find('@') != std::string_view::npos) return fail("more than one '@'");
    if (!valid_dot_string(local)) return fail("bad local part");
  }
  if (local.size() > kMaxLocal + (out.address.quoted ? 2 : 0)) return fail("local part too long");
  if (domain.empty()) {
    // Only <postmaster> may come without a domain (RFC 5321 §4.5.1), and only as a recipient.
    if (path.find('@') != std::string_view::npos) return fail("empty domain");
    if (kind != PathKind::Recipient || lowercase(local) != "postmaster") return fail("address needs a domain");
  } else if (!valid_domain(domain)) {
    return fail("bad domain");
  }
  out.address.local = std::string(local);
  out.address.domain = std::string(domain);
  return {std::move(out), {}};
}

}  // namespace smtp
