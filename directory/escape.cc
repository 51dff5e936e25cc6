// RFC 4515 value escaping and %s substitution (escape.h).
#include "directory/escape.h"

namespace ldap {
namespace {

bool needs_escape(unsigned char c) {
  return c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c >= 0x7f;
}

}  // namespace

std::string filter_escape(std::string_view value) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (!needs_escape(c)) {
      out.push_back(ch);
      continue;
    }
    out.push_back('\\');
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0x0f]);
  }
  return out;
}

std::string build_filter(std::string_view tmpl, std::string_view value) {
  const std::string escaped = filter_escape(value);
  std::string out;
  out.reserve(tmpl.size() + 2 * escaped.size());
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '%' && i + 1 < tmpl.size() && tmpl[i + 1] == 's') {
      out += escaped;
      ++i;
    } else {
      out.push_back(tmpl[i]);
    }
  }
  return out;
}

}  // namespace ldap
