// The sanitiser for text from outside (text.h): byte classes, replacement and log quoting.
#include "core/text.h"

namespace core {
namespace {

bool printable(unsigned char u) { return u >= 0x20 && u < 0x7f; }

bool token_char(unsigned char u) {
  bool alnum = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9');
  return alnum || u == '.' || u == '-' || u == '_' || u == ':' || u == '[' || u == ']';
}

bool kept(unsigned char u, SafeChars chars) { return chars == SafeChars::Token ? token_char(u) : printable(u); }

}  // namespace

std::string safe_text(std::string_view s, size_t max, SafeChars chars) {
  std::string out(s.substr(0, max));
  for (char& c : out)
    if (!kept(static_cast<unsigned char>(c), chars)) c = '?';
  return out;
}

namespace {
std::string delimited_for_log(std::string_view s, size_t max, char open, char close) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(1, open);
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == close || c == '\\') {
      out += '\\';
      out += c;
    } else if (printable(u)) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  out += close;
  return out;
}
}  // namespace

std::string quoted_for_log(std::string_view s, size_t max) { return delimited_for_log(s, max, '"', '"'); }
std::string angled_for_log(std::string_view s, size_t max) { return delimited_for_log(s, max, '<', '>'); }

}  // namespace core
