// The Received: trace header (RFC 5321 §4.4) mxfront prepends to every relayed message, in
// QMQP form (LF line endings). Peer-supplied text (HELO, the address) goes in as a bare token:
// core::safe_text(..., SafeChars::Token) turns anything else into '?'.
#pragma once
#include <ctime>
#include <string>
#include <string_view>

namespace smtpd {

struct ReceivedInfo {
  std::string_view helo;
  std::string_view client_ip;
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
