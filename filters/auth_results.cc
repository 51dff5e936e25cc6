// Authentication-Results pieces shared by spf, dkim and dmarc (auth_results.h).
#include "filters/auth_results.h"

#include <algorithm>

#include "core/text.h"

namespace filters {

bool carries_authserv_id(std::string_view value, std::string_view authserv_id) {
  size_t i = value.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos) return false;
  value.remove_prefix(i);
  size_t end = value.find_first_of(" \t\r\n;(");
  return core::iequals(value.substr(0, end), authserv_id);
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
