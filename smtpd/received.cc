// Received header formatting.
#include "smtpd/received.h"

#include <cctype>

#include <fmt/format.h>

namespace smtpd {
namespace {
std::string safe(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (std::isalnum(u) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']') ? c : '?';
  }
  return out;
}
}  // namespace

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string received_header(const ReceivedInfo& r) {
  std::string h = fmt::format("Received: from {} ([{}])\n", safe(r.helo), safe(r.client_ip));
  if (!r.tls.empty()) h += fmt::format("\t(using {})\n", r.tls);
  h += fmt::format("\tby {} (mxfront) with {} id {}", r.hostname, r.protocol, r.id);
  if (!r.recipient.empty()) h += fmt::format("\n\tfor <{}>", r.recipient);
  h += fmt::format("; {}\n", rfc5322_date(r.when));
  return h;
}

}  // namespace smtpd
