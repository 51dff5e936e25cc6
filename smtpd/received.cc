// Received header formatting.
#include "smtpd/received.h"

#include <fmt/format.h>

#include "core/text.h"

namespace smtpd {
namespace {
// The HELO name is a bare token in the header: core::safe_text's Token class.
// 255 is the longest HELO name the engine accepts (protocol.cc), so nothing is cut in practice.
std::string token(std::string_view s) { return core::safe_text(s, 255, core::SafeChars::Token); }
}  // namespace

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string received_header(const ReceivedInfo& r) {
  std::string h = fmt::format("Received: from {} ({})\n", token(r.helo), r.client_ip.address_literal());
  if (!r.tls.empty()) h += fmt::format("\t(using {})\n", r.tls);
  h += fmt::format("\tby {} (mxfront) with {} id {}", r.hostname, r.protocol, r.id);
  if (!r.recipient.empty()) h += fmt::format("\n\tfor <{}>", r.recipient);
  h += fmt::format("; {}\n", rfc5322_date(r.when));
  return h;
}

}  // namespace smtpd
