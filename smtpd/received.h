// The Received: trace header (RFC 5321 §4.4) mxfront prepends to every relayed message, in
// QMQP form (LF line endings). The client address is an RFC 5321 §4.1.3 address literal,
// "[192.0.2.7]" or "[IPv6:2001:db8::25]", printed from the parsed address. The peer-supplied HELO
// goes in as a bare token: core::safe_text(..., SafeChars::Token) turns anything else into '?'.
#pragma once
#include <ctime>
#include <string>
#include <string_view>

#include "core/ip.h"

namespace smtpd {

struct ReceivedInfo {
  std::string_view helo;
  core::IpAddress client_ip;
  std::string_view hostname;
  std::string_view protocol;   // "ESMTP" or "SMTP" (ESMTPS/ESMTPA come with TLS/AUTH)
  std::string_view id;         // session id + message number
  std::string_view tls;        // "TLSv1.3 with cipher ..." or empty
  std::string_view recipient;  // only when the message has exactly one recipient
  std::time_t when = 0;
};

std::string received_header(const ReceivedInfo& r);
std::string rfc5322_date(std::time_t t);

}  // namespace smtpd
