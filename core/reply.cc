// The reply catalogue: texts and codes for every named reply in reply.h.
#include "core/reply.h"

#include <fmt/format.h>

#include "core/text.h"

namespace core {

std::string Reply::wire() const {
  std::string out;
  std::string_view rest = text;
  for (;;) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    bool last = nl == std::string_view::npos;
    out += std::to_string(code);
    out += last ? ' ' : '-';
    if (!enhanced.empty()) {
      out += enhanced;
      if (!line.empty()) out += ' ';
    }
    out += line;
    out += "\r\n";
    if (last) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

namespace replies {
// Text from outside in a reply (a client's parameter or address, a QMQP server's answer, a DNS
// list's TXT record, a signature name) goes through core::safe_text: one printable line, bounded.

Reply greeting(std::string_view h) { return {220, "", fmt::format("{} ESMTP mxfront", h)}; }
Reply closing(std::string_view h) { return {221, "2.0.0", fmt::format("{} closing connection", h)}; }
Reply ok() { return {250, "2.0.0", "Ok"}; }
Reply help() { return {214, "2.0.0", "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)"}; }
Reply vrfy() { return {252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"}; }
Reply shutting_down() { return {421, "4.3.2", "Service shutting down, closing connection"}; }
Reply too_many_connections() { return {421, "4.3.2", "Too many connections, try again later"}; }
Reply too_many_connections_from_ip() {
  return {421, "4.3.2", "Too many connections from your address, try again later"};
}
Reply timeout() { return {421, "4.4.2", "Timeout exceeded, closing connection"}; }

Reply unknown_command() { return {500, "5.5.1", "Command unrecognized"}; }
Reply not_implemented() { return {502, "5.5.1", "Command not implemented"}; }
Reply too_many_errors() { return {421, "4.7.0", "Too many errors, closing connection"}; }
Reply line_too_long() { return {500, "5.5.2", "Line too long"}; }
Reply invalid_character() { return {500, "5.5.2", "Invalid character in command"}; }
Reply bare_line_ending() {
  return {554, "5.5.2", "Bare CR or LF not allowed, line endings must be CRLF; closing connection"};
}
Reply syntax(std::string_view w) { return {501, "5.5.4", fmt::format("Syntax error: {}", w)}; }
Reply bad_address_syntax(std::string_view w) {
  return {501, "5.1.3", fmt::format("Bad recipient address syntax: {}", w)};
}
Reply bad_sender_syntax(std::string_view w) {
  return {501, "5.1.7", fmt::format("Bad sender address syntax: {}", w)};
}
Reply bad_sequence(std::string_view w) { return {503, "5.5.1", fmt::format("Bad sequence of commands: {}", w)}; }
Reply unknown_parameter(std::string_view p) {
  return {555, "5.5.4", fmt::format("Unsupported parameter: {}", safe_text(p))};
}
Reply helo_first() { return {503, "5.5.1", "Send HELO/EHLO first"}; }

Reply sender_ok() { return {250, "2.1.0", "Sender ok"}; }
Reply recipient_ok() { return {250, "2.1.5", "Recipient ok"}; }
Reply relay_denied() { return {554, "5.7.1", "Relay access denied"}; }
Reply too_many_recipients() { return {452, "4.5.3", "Too many recipients"}; }
Reply no_valid_recipients() { return {554, "5.5.1", "No valid recipients"}; }
Reply start_data() { return {354, "", "End data with <CR><LF>.<CR><LF>"}; }
Reply message_too_big() { return {552, "5.3.4", "Message size exceeds fixed limit"}; }
Reply data_line_too_long() { return {552, "5.3.4", "Line too long in message data"}; }
Reply insufficient_storage() { return {452, "4.3.1", "Insufficient system storage, try again later"}; }

Reply tls_ready() { return {220, "2.0.0", "Ready to start TLS"}; }
Reply tls_already_active() { return {503, "5.5.1", "TLS already active"}; }
Reply auth_not_enabled() { return {503, "5.5.1", "Authentication not enabled"}; }
Reply encryption_required() { return {538, "5.7.11", "Encryption required for requested authentication mechanism"}; }
Reply already_authenticated() { return {503, "5.5.1", "Already authenticated"}; }
Reply auth_in_transaction() { return {503, "5.5.1", "AUTH not permitted during a mail transaction"}; }
Reply auth_mechanism_unknown() { return {504, "5.5.4", "Unrecognized authentication type"}; }
Reply auth_canceled() { return {501, "5.0.0", "Authentication canceled"}; }
Reply auth_bad_base64() { return {501, "5.5.2", "Cannot decode response"}; }
Reply auth_ok() { return {235, "2.7.0", "Authentication successful"}; }
Reply auth_failed() { return {535, "5.7.8", "Authentication credentials invalid"}; }
Reply auth_unavailable() { return {454, "4.7.0", "Temporary authentication failure"}; }
Reply auth_required() { return {530, "5.7.0", "Authentication required"}; }
Reply too_many_auth_failures() { return {421, "4.7.0", "Too many authentication failures, closing connection"}; }
Reply auth_throttled() { return {454, "4.7.0", "Too many authentication failures, try again later"}; }
Reply sender_not_owned(std::string_view s) {
  return {553, "5.7.1", fmt::format("Sender address <{}> not owned by the authenticated user", safe_text(s))};
}
Reply recipient_unknown() { return {550, "5.1.1", "Recipient address rejected: user unknown"}; }
Reply recipient_disabled() { return {550, "5.2.1", "Recipient address rejected: mailbox disabled"}; }
Reply directory_unavailable() { return {451, "4.3.0", "Recipient verification temporarily unavailable, try again later"}; }
Reply too_many_rejected_recipients() { return {421, "4.7.0", "Too many rejected recipients, closing connection"}; }

Reply relayed(std::string_view t) {
  std::string text = safe_text(t);
  return {250, "2.0.0", text.empty() ? "Ok" : text};  // Postfix qmqpd: "Ok: queued as 4Xyz..."
}
Reply relay_tempfail(std::string_view t) {
  return {451, "4.3.0", fmt::format("Temporary failure at mailbox server: {}", safe_text(t))};
}
Reply relay_permfail(std::string_view t) {
  return {554, "5.6.0", fmt::format("Rejected by mailbox server: {}", safe_text(t))};
}
Reply relay_unavailable(std::string_view w) {
  return {451, "4.4.1", fmt::format("Mailbox server unavailable: {}", safe_text(w))};
}
Reply relay_protocol_error(std::string_view w) {
  return {451, "4.4.2", fmt::format("Bad answer from mailbox server: {}", safe_text(w))};
}
Reply local_error() { return {451, "4.3.0", "Local error in processing"}; }

Reply filter_unavailable() { return {451, "4.3.0", "Temporary problem checking the message; try again later"}; }
Reply filter_busy() { return {451, "4.3.0", "Too busy to check the message now; try again later"}; }
Reply spam_rejected(std::string_view reasons) {
  return {554, "5.7.1", fmt::format("Message refused as spam ({})", safe_text(reasons, 400))};
}
Reply client_blocked(std::string_view ip) { return {554, "5.7.1", fmt::format("Client host [{}] blocked by local policy", ip)}; }
Reply rbl_listed(std::string_view ip, std::string_view zone, std::string_view txt) {
  if (txt.empty()) return {554, "5.7.1", fmt::format("Service unavailable; client host [{}] blocked using {}", ip, zone)};
  return {554, "5.7.1", fmt::format("Service unavailable; client host [{}] blocked using {}; {}", ip, zone, safe_text(txt))};
}
Reply rhsbl_listed(std::string_view domain, std::string_view zone, std::string_view txt) {
  if (txt.empty()) return {554, "5.7.1", fmt::format("Service unavailable; sender domain {} blocked using {}", domain, zone)};
  return {554, "5.7.1", fmt::format("Service unavailable; sender domain {} blocked using {}; {}", domain, zone, safe_text(txt))};
}
Reply rule_rejected(std::string_view rule) { return {554, "5.7.1", fmt::format("Message refused by local policy ({})", rule)}; }
Reply virus_found(std::string_view signature) {
  return {554, "5.7.1", fmt::format("Message refused: virus found: {}", safe_text(signature))};
}
Reply rspamd_rejected(std::string_view smtp_message) {
  return {554, "5.7.1", smtp_message.empty() ? std::string("Message refused as spam") : safe_text(smtp_message)};
}
Reply rspamd_tempfailed(std::string_view smtp_message) {
  return {451, "4.7.1", smtp_message.empty() ? std::string("Try again later") : safe_text(smtp_message)};
}
Reply image_spam(std::string_view words) {
  return {554, "5.7.1", fmt::format("Message refused: image text matches spam words ({})", safe_text(words))};
}
Reply scan_limit_rejected() { return {554, "5.7.1", "Message refused: it exceeds the virus scanner's limits"}; }
// 5.6.0 (a media problem, RFC 3463): the message's structure, not its sender or content, is refused.
Reply scan_structure_rejected(std::string_view limit) {
  return {554, "5.6.0",
          fmt::format("Message refused: nested too deeply or too many parts for the virus scanner ({})", safe_text(limit))};
}
Reply mime_structure_rejected(std::string_view what) {
  return {554, "5.6.0", fmt::format("Message refused: MIME structure too complex ({})", safe_text(what))};
}
Reply spf_rejected(std::string_view result, std::string_view domain, std::string_view ip, std::string_view explanation) {
  std::string text = fmt::format("SPF {}: {} does not designate [{}] as permitted sender", result, safe_text(domain), ip);
  if (!explanation.empty()) text += fmt::format(" ({})", safe_text(explanation));
  return {550, "5.7.23", std::move(text)};
}
Reply spf_error(std::string_view domain) {
  return {550, "5.7.24", fmt::format("SPF permerror: the SPF record of {} is invalid", safe_text(domain))};
}
Reply spf_tempfailed(std::string_view result, std::string_view domain, std::string_view ip) {
  return {451, "4.7.23", fmt::format("SPF {}: {} does not designate [{}] as permitted sender, try again later", result,
                                     safe_text(domain), ip)};
}
Reply spf_temperror(std::string_view result, std::string_view domain) {
  return {451, "4.7.24", fmt::format("SPF {}: cannot check the SPF record of {} now, try again later", result, safe_text(domain))};
}
Reply dmarc_rejected(std::string_view from_domain) {
  return {550, "5.7.1", fmt::format("DMARC: message refused by the policy of {}: the From domain is not authenticated "
                                    "(no aligned SPF or DKIM pass)", safe_text(from_domain))};
}
Reply dmarc_multiple_from() {
  return {550, "5.7.1", "DMARC: message refused: multiple From addresses"};
}
Reply dmarc_temperror(std::string_view from_domain) {
  return {451, "4.7.1", fmt::format("DMARC: cannot check the DMARC policy of {} now, try again later", safe_text(from_domain))};
}
Reply greylisted(long long seconds) {
  return {451, "4.7.1", fmt::format("Greylisted, please try again in {} seconds", seconds < 1 ? 1 : seconds)};
}
}  // namespace replies

}  // namespace core
