// Label-by-label domain check (domain.h).
#include "core/domain.h"

namespace core {
namespace {

bool label_char(char c, DomainRules rules) {
  bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return alnum || c == '-' || (c == '_' && rules == DomainRules::Dns);
}

bool valid_label(std::string_view l, DomainRules rules) {
  if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
  for (char c : l)
    if (!label_char(c, rules)) return false;
  return true;
}

}  // namespace

bool valid_domain(std::string_view d, DomainRules rules) {
  if (d.empty() || d.size() > kMaxDomainLength) return false;
  for (size_t start = 0;;) {
    size_t dot = d.find('.', start);
    if (!valid_label(d.substr(start, dot - start), rules)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace core
