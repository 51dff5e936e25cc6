// Removing client-supplied copies of the headers mxfront writes (see owned_headers.h).
#include "filters/owned_headers.h"

#include "core/text.h"

namespace filters {
namespace {

bool wsp(char c) { return c == ' ' || c == '\t'; }

// The field's value with its line ends removed and leading white space trimmed.
std::string unfolded_value(std::string_view field, size_t colon) {
  std::string v;
  for (size_t i = colon + 1; i < field.size(); ++i)
    if (field[i] != '\n' && field[i] != '\r') v += field[i];
  size_t b = 0;
  while (b < v.size() && wsp(v[b])) ++b;
  return v.substr(b);
}

}  // namespace

size_t strip_owned_headers(std::string_view message, const std::vector<OwnedHeader>& owned, std::string& out) {
  if (owned.empty()) return 0;
  // Pass 1: the fields to drop, as [begin, end) ranges of the header block.
  std::vector<std::pair<size_t, size_t>> drop;
  size_t pos = 0;
  while (pos < message.size() && message[pos] != '\n') {  // an empty line ends the header block
    size_t end = pos;  // the field: its first line and every continuation line
    do {
      size_t lf = message.find('\n', end);
      end = lf == std::string_view::npos ? message.size() : lf + 1;
    } while (end < message.size() && wsp(message[end]));
    std::string_view field = message.substr(pos, end - pos);
    size_t colon = field.find(':');
    size_t lf = field.find('\n');
    if (colon != std::string_view::npos && (lf == std::string_view::npos || colon < lf) && !wsp(field.front())) {
      std::string_view name = field.substr(0, colon);
      while (!name.empty() && wsp(name.back())) name.remove_suffix(1);  // obsolete "Name :" syntax
      for (const auto& o : owned) {
        if (!core::iequals(name, o.name)) continue;
        if (!o.matches || o.matches(unfolded_value(field, colon))) {
          drop.emplace_back(pos, end);
          break;
        }
      }
    }
    pos = end;
  }
  if (drop.empty()) return 0;
  out.clear();
  out.reserve(message.size());
  size_t from = 0;
  for (const auto& [b, e] : drop) {
    out.append(message.substr(from, b - from));
    from = e;
  }
  out.append(message.substr(from));
  return drop.size();
}

}  // namespace filters
