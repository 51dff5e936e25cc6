// Small ASCII text helpers shared by every subsystem (addresses and domains are ASCII here:
// no SMTPUTF8), and the one sanitiser for text from outside that reaches a log line, an SMTP
// reply or a header (safe_text, quoted_for_log; text.cc).
#pragma once
#include <cctype>
#include <cstddef>
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

// ---- text from outside (a client, a peer server, a DNS list, a signature database) ------------

// Which bytes safe_text() keeps; every other byte becomes '?'.
enum class SafeChars {
  Printable,  // printable ASCII 0x20-0x7e: free text on one line (a reply, a log field, a header value)
  Token,      // ASCII letters, digits and . - _ : [ ] — a bare token in a structured header, e.g. the
              // HELO name in "Received: from HELO ([ip])", where ( ) ; " or a space would change its meaning
};

inline constexpr size_t kSafeTextMax = 200;

// Text from outside on its way to a log line, an SMTP reply or a header. Contract: the result is
// the first min(s.size(), max) bytes of `s` with each byte outside `chars` replaced by '?' — never
// a CR, LF, NUL, other control byte, DEL or 8-bit byte, so it can neither end the line it is put on
// nor start a new header, reply line or log record; nothing is dropped silently (same length as
// the prefix taken) and a cut is not marked.
std::string safe_text(std::string_view s, size_t max = kSafeTextMax, SafeChars chars = SafeChars::Printable);

// `s` as one double-quoted log field that a reader can split on and unescape: '"' and '\' are
// escaped with '\', every byte outside 0x20-0x7e is written \xNN (lower-case hex), and at most
// `max` bytes of `s` are taken (a cut is not marked). The 4 bytes  a"b<CR>  become  "a\"b\x0d"
std::string quoted_for_log(std::string_view s, size_t max = kSafeTextMax);

// A mail address as one log field in Postfix's form, <addr> (<> is the null sender): the same
// escapes as quoted_for_log, with '>' escaped instead of '"'. <a b>c@x> becomes <a b\>c@x>
std::string angled_for_log(std::string_view s, size_t max = kSafeTextMax);

}  // namespace core
