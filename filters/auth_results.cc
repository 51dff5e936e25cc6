// Authentication-Results pieces shared by spf, dkim and dmarc (auth_results.h).
#include "filters/auth_results.h"

#include <algorithm>
#include <optional>

#include "config/config.h"
#include "core/text.h"

namespace filters {
namespace {

bool fws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Skips CFWS from `i`: white space, folding and comments (nested, with quoted-pairs). False when
// a comment never ends.
bool skip_cfws(std::string_view v, size_t& i) {
  while (i < v.size()) {
    if (fws(v[i])) {
      ++i;
      continue;
    }
    if (v[i] != '(') return true;
    size_t depth = 0;
    for (; i < v.size(); ++i) {
      if (v[i] == '\\') ++i;  // quoted-pair: the next byte is taken as is
      else if (v[i] == '(') ++depth;
      else if (v[i] == ')' && --depth == 0) break;
    }
    if (i >= v.size()) return false;
    ++i;
  }
  return true;
}

// The authserv-id of a field (RFC 8601 §2.2: [CFWS] value), nullopt when it cannot be read.
std::optional<std::string> read_authserv_id(std::string_view v) {
  size_t i = 0;
  if (!skip_cfws(v, i) || i == v.size()) return std::nullopt;
  std::string id;
  if (v[i] != '"') {
    size_t end = i;
    while (end < v.size() && !fws(v[end]) && v[end] != '(' && v[end] != ';' && v[end] != '"') ++end;
    if (end == i) return std::nullopt;  // ';' first: no id at all
    return std::string(v.substr(i, end - i));
  }
  for (++i; i < v.size() && v[i] != '"'; ++i) {
    if (v[i] == '\r' || v[i] == '\n') continue;  // folding
    if (v[i] == '\\' && ++i == v.size()) break;
    id += v[i];
  }
  if (i >= v.size()) return std::nullopt;  // the quoted-string never ends
  size_t a = id.find_first_not_of(" \t"), b = id.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : id.substr(a, b - a + 1);
}

}  // namespace

const std::string& authserv_id(const config::Config& c) { return c.authserv_id.empty() ? c.hostname : c.authserv_id; }

bool carries_authserv_id(std::string_view value, std::string_view authserv_id) {
  auto id = read_authserv_id(value);
  return !id || core::iequals(*id, authserv_id);
}

std::string auth_comment(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (out.size() >= 200) break;
    out += (c < 0x20 || c > 0x7E || c == '(' || c == ')' || c == '\\' || c == ';') ? '_' : c;
  }
  return out;
}

bool auth_property_ok(std::string_view v) {
  return !v.empty() && v.size() <= 255 && std::all_of(v.begin(), v.end(), [](char c) {
    return c > 0x20 && c < 0x7F && c != '(' && c != ')' && c != ';' && c != '"' && c != '\\';
  });
}

}  // namespace filters
