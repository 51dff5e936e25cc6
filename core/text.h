// Small ASCII text helpers shared by every subsystem (addresses and domains are ASCII here:
// no SMTPUTF8). Header-only.
#pragma once
#include <cctype>
#include <string>
#include <string_view>

namespace core {

inline std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// "user@Example.ORG" -> "Example.ORG"; "" when there is no '@'.
inline std::string_view domain_of(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

}  // namespace core
