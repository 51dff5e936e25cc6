// Removing client-supplied copies of the headers mxfront writes (see owned_headers.h).
#include "filters/owned_headers.h"

#include <cstdint>

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

// One top-level header field: [begin, end) of the message (continuation lines included), the
// offset of its ':' within it and its name (without white space before the ':').
struct Field {
  size_t begin, end, colon;
  std::string_view name;
};

// The header block's fields (it ends at the first empty line); lines that are no field are skipped.
std::vector<Field> header_fields(std::string_view message) {
  std::vector<Field> fields;
  size_t pos = 0;
  while (pos < message.size() && message[pos] != '\n') {
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
      fields.push_back({pos, end, colon, name});
    }
    pos = end;
  }
  return fields;
}

}  // namespace

size_t strip_owned_headers(std::string_view message, const std::vector<OwnedHeader>& owned, std::string& out) {
  if (owned.empty()) return 0;
  // Pass 1: the top-level fields, as [begin, end) ranges of the header block with their names.
  std::vector<Field> fields = header_fields(message);
  // Pass 2: which of them go.
  std::vector<bool> drop(fields.size(), false);
  for (const auto& o : owned) {
    auto accepted = [&](const Field& f) { return !o.matches || o.matches(unfolded_value(message.substr(f.begin, f.end - f.begin), f.colon)); };
    if (o.occurrence == 0) {
      for (size_t i = 0; i < fields.size(); ++i)
        if (!drop[i] && core::iequals(fields[i].name, o.name) && accepted(fields[i])) drop[i] = true;
      continue;
    }
    std::vector<size_t> same;  // the fields of that name, in order
    for (size_t i = 0; i < fields.size(); ++i)
      if (core::iequals(fields[i].name, o.name)) same.push_back(i);
    size_t n = o.occurrence > 0 ? static_cast<size_t>(o.occurrence) : static_cast<size_t>(-static_cast<int64_t>(o.occurrence));
    if (n > same.size()) continue;
    size_t i = o.occurrence > 0 ? same[n - 1] : same[same.size() - n];
    if (accepted(fields[i])) drop[i] = true;
  }
  size_t removed = 0;
  for (bool d : drop) removed += d;
  if (!removed) return 0;
  out.clear();
  out.reserve(message.size());
  size_t from = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!drop[i]) continue;
    out.append(message.substr(from, fields[i].begin - from));
    from = fields[i].end;
  }
  out.append(message.substr(from));
  return removed;
}

}  // namespace filters
