// Verb table and prefix matching (case-insensitive) for SMTP command lines.
#include "smtp/command.h"

#include <array>
#include <cctype>

namespace smtp {
namespace {

bool iprefix(std::string_view s, std::string_view p) {
  if (s.size() < p.size()) return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(s[i])) != p[i]) return false;
  return true;
}

struct Entry {
  std::string_view word;
  Verb verb;
};
// Commands we know but do not offer (not advertised, or not carried by QMQP): 502.
constexpr std::array<Entry, 16> kVerbs{{
    {"HELO", Verb::Helo}, {"EHLO", Verb::Ehlo}, {"DATA", Verb::Data}, {"RSET", Verb::Rset},
    {"NOOP", Verb::Noop}, {"QUIT", Verb::Quit}, {"VRFY", Verb::Vrfy}, {"HELP", Verb::Help},
    {"EXPN", Verb::NotImplemented}, {"TURN", Verb::NotImplemented}, {"ETRN", Verb::NotImplemented},
    {"BDAT", Verb::NotImplemented}, {"STARTTLS", Verb::StartTls}, {"AUTH", Verb::Auth},
    {"SEND", Verb::NotImplemented}, {"SAML", Verb::NotImplemented},
}};

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

}  // namespace

Command parse_command(std::string_view line) {
  if (iprefix(line, "MAIL FROM:")) return {Verb::Mail, line.substr(10)};
  if (iprefix(line, "RCPT TO:")) return {Verb::Rcpt, line.substr(8)};
  if (iprefix(line, "MAIL") || iprefix(line, "RCPT")) {
    // "MAIL" / "RCPT" without the FROM:/TO: keyword: a syntax error, not an unknown command.
    if (line.size() == 4 || line[4] == ' ') return {iprefix(line, "MAIL") ? Verb::Mail : Verb::Rcpt, {}};
  }
  for (const auto& e : kVerbs) {
    if (!iprefix(line, e.word)) continue;
    std::string_view rest = line.substr(e.word.size());
    if (!rest.empty() && rest.front() != ' ') continue;
    return {e.verb, trim_left(rest)};
  }
  return {Verb::Unknown, {}};
}

}  // namespace smtp
