// Replies as data: every SMTP reply mxfront sends is named here, once, with its code and
// enhanced status code (RFC 3463). Code elsewhere refers to these names, never to literals.
#pragma once
#include <string>
#include <string_view>

namespace core {

struct Reply {
  int code = 0;              // 3-digit SMTP code
  std::string enhanced;      // "2.1.0"; empty only for the 220 greeting / 221 is fine with it too
  std::string text;          // single line; multi-line replies use '\n' between lines

  bool positive() const { return code >= 200 && code < 400; }
  bool temporary() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // Wire form: "250-2.1.0 a\r\n250 2.1.0 b\r\n"; every line carries the enhanced code.
  std::string wire() const;
};

namespace replies {
// --- session level ---
Reply greeting(std::string_view hostname);                      // 220
Reply closing(std::string_view hostname);                       // 221 2.0.0
Reply ok();                                                     // 250 2.0.0 Ok
Reply help();                                                   // 214 2.0.0
Reply vrfy();                                                   // 252 2.0.0 (never reveals users)
Reply shutting_down();                                          // 421 4.3.2 (drain)
Reply too_many_connections();                                   // 421 4.3.2
Reply too_many_connections_from_ip();                           // 421 4.3.2
Reply timeout();                                                // 421 4.4.2
// --- syntax / sequence ---
Reply unknown_command();                                        // 500 5.5.1
Reply not_implemented();                                        // 502 5.5.1
Reply too_many_errors();                                        // 421 4.7.0
Reply line_too_long();                                          // 500 5.5.2
Reply invalid_character();                                      // 500 5.5.2 (NUL, 8-bit in command)
Reply bare_line_ending();                                       // 554 5.5.2 + close (smuggling defence)
Reply syntax(std::string_view what);                            // 501 5.5.4
Reply bad_address_syntax(std::string_view what);                // 501 5.1.3
Reply bad_sender_syntax(std::string_view what);                 // 501 5.1.7
Reply bad_sequence(std::string_view what);                      // 503 5.5.1
Reply unknown_parameter(std::string_view param);                // 555 5.5.4
Reply helo_first();                                             // 503 5.5.1
// --- envelope ---
Reply sender_ok();                                              // 250 2.1.0
Reply recipient_ok();                                           // 250 2.1.5
Reply relay_denied();                                           // 554 5.7.1
Reply too_many_recipients();                                    // 452 4.5.3
Reply no_valid_recipients();                                    // 554 5.5.1
Reply start_data();                                             // 354
Reply message_too_big();                                        // 552 5.3.4
Reply data_line_too_long();                                     // 552 5.3.4
Reply insufficient_storage();                                   // 452 4.3.1 (in-flight memory bound)
// --- TLS and AUTH ---
Reply tls_ready();                                              // 220 2.0.0
Reply tls_already_active();                                     // 503 5.5.1
Reply auth_not_enabled();                                       // 503 5.5.1
Reply encryption_required();                                    // 538 5.7.11
Reply already_authenticated();                                  // 503 5.5.1
Reply auth_in_transaction();                                    // 503 5.5.1
Reply auth_mechanism_unknown();                                 // 504 5.5.4
Reply auth_canceled();                                          // 501 5.0.0
Reply auth_bad_base64();                                        // 501 5.5.2
Reply auth_ok();                                                // 235 2.7.0
Reply auth_failed();                                            // 535 5.7.8
Reply auth_unavailable();                                       // 454 4.7.0
Reply auth_required();                                          // 530 5.7.0
Reply too_many_auth_failures();                                 // 421 4.7.0
Reply auth_throttled();                                         // 454 4.7.0 (address or login past its failure limit)
Reply sender_not_owned(std::string_view sender);                // 553 5.7.1
// --- recipients (directory) ---
Reply recipient_unknown();                                      // 550 5.1.1
Reply recipient_disabled();                                     // 550 5.2.1
Reply directory_unavailable();                                  // 451 4.3.0
Reply too_many_rejected_recipients();                           // 421 4.7.0 (recipient harvesting)
// --- relay outcome (QMQP) ---
Reply relayed(std::string_view server_text);                    // 250 2.0.0 <server text> (after K)
Reply relay_tempfail(std::string_view server_text);             // 451 4.3.0 (Z)
Reply relay_permfail(std::string_view server_text);             // 554 5.6.0 (D)
Reply relay_unavailable(std::string_view why);                  // 451 4.4.1 (no server / no answer)
Reply relay_protocol_error(std::string_view why);               // 451 4.4.2 (broken answer)
Reply local_error();                                            // 451 4.3.0
// --- filter chain ---
Reply filter_unavailable();                                     // 451 4.3.0 (check failed/timed out, on_error tempfail)
Reply filter_busy();                                            // 451 4.3.0 (worker queue full)
Reply spam_rejected(std::string_view reasons);                  // 554 5.7.1 (score >= reject_score)
Reply client_blocked(std::string_view ip);                      // 554 5.7.1 (rules.client_block)
Reply rbl_listed(std::string_view ip, std::string_view zone, std::string_view txt);  // 554 5.7.1
Reply rhsbl_listed(std::string_view domain, std::string_view zone, std::string_view txt);  // 554 5.7.1
Reply rule_rejected(std::string_view rule);                     // 554 5.7.1
Reply virus_found(std::string_view signature);                  // 554 5.7.1
Reply rspamd_rejected(std::string_view smtp_message);          // 554 5.7.1 (rspamd action reject; its smtp_message if any)
Reply rspamd_tempfailed(std::string_view smtp_message);        // 451 4.7.1 (rspamd soft reject / greylist)
Reply image_spam(std::string_view words);                       // 554 5.7.1 (ocr.reject_score)
Reply scan_limit_rejected();                                    // 554 5.7.1 (clamav.on_limit reject)
Reply scan_structure_rejected(std::string_view limit);          // 554 5.6.0 (clamav: MaxRecursion/MaxFiles)
Reply mime_structure_rejected(std::string_view what);           // 554 5.6.0 (limits.mime_depth / mime_parts)
// SPF (RFC 7208 §8, codes of RFC 7372): `result` is "fail", "softfail", "permerror", "temperror".
// 550 5.7.23 (fail, softfail); `explanation`: the domain's own exp= text (RFC 7208 §6.2), appended sanitised
Reply spf_rejected(std::string_view result, std::string_view domain, std::string_view ip, std::string_view explanation = {});
Reply spf_error(std::string_view domain);                                                    // 550 5.7.24 (permerror)
Reply spf_tempfailed(std::string_view result, std::string_view domain, std::string_view ip);  // 451 4.7.23 (fail, softfail)
Reply spf_temperror(std::string_view result, std::string_view domain);                       // 451 4.7.24 (temperror, permerror)
// DMARC (RFC 7489): the From domain's p=reject / several From addresses / a transient DNS error.
Reply dmarc_rejected(std::string_view from_domain);                                          // 550 5.7.1
Reply dmarc_multiple_from();                                                                 // 550 5.7.1
Reply dmarc_temperror(std::string_view from_domain);                                         // 451 4.7.1
// Greylisting: this (client network, sender, recipient) was not seen `seconds` ago or more.
Reply greylisted(long long seconds);                                                         // 451 4.7.1
}  // namespace replies

}  // namespace core
