// smtp::Protocol — the sans-I/O RFC 5321 server engine: bytes in, events and reply bytes out.
// No sockets, no clock, no threads. The session feeds received bytes with receive(), then calls
// next() until it returns NeedInput (flush output() to the client, read more) or Close (flush,
// close). Events that need a decision (Helo, MailFrom, RcptTo, DataStart, Message) pause the
// engine until the session answers with accept()/reject()/disconnect(): replies therefore stay in
// command order under PIPELINING, and nothing after DATA is read as a command before the 354.
// Smuggling defence: only CRLF ends a line; a bare CR or LF anywhere is a violation that closes
// the session, and the partial message is dropped.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/reply.h"
#include "smtp/address.h"
#include "smtp/close_reason.h"

namespace smtp {

struct Settings {
  std::string hostname = "localhost";
  size_t line_length = 512;         // command line incl. CRLF
  size_t data_line_length = 65536;  // DATA line incl. CRLF
  size_t message_size = 10485760;
  size_t recipients = 100;
  size_t error_limit = 20;          // protocol errors before 421 + close
  // Profile features (listener profile + TLS config):
  bool starttls = false;            // offer STARTTLS (a certificate is configured)
  bool tls_active = false;          // the session started in TLS (implicit TLS, RFC 8314)
  bool auth = false;                // offer AUTH PLAIN LOGIN, only once TLS is active
  bool auth_required = false;       // MAIL needs a successful AUTH (submission profiles)
  size_t auth_failure_limit = 3;    // failed AUTH attempts before 421 + close
};

enum class Event {
  NeedInput,  // all buffered input processed: flush output(), then receive() more
  Helo,       // HELO/EHLO arrived: helo_name(), esmtp()
  MailFrom,   // pending_address(), declared_size()
  RcptTo,     // pending_address()
  StartTls,   // 220 queued, pipelined input discarded: flush, handshake, then accept() (or close)
  Auth,       // AUTH exchange complete: auth_login(), auth_password(); accept() = 235, reject(r)
  DataStart,  // DATA with ≥1 recipient: accept() sends 354
  Message,    // end of data: message() is complete; accept(reply)/reject(reply)
  Close,      // flush output(), then close the connection
};

struct Transaction {
  Address sender;
  std::vector<Address> recipients;
  size_t declared_size = 0;  // SIZE= (0 if absent)
  bool body_8bit = false;    // BODY=8BITMIME
};

class Protocol {
 public:
  explicit Protocol(Settings s);

  // Queue the banner. A refusal (421) closes the session after being sent.
  void greet(const core::Reply& r);
  void receive(std::string_view bytes);
  Event next();

  // Answers to the pending event. accept() without a reply uses the engine's default reply.
  void accept(std::optional<core::Reply> r = std::nullopt);
  void reject(const core::Reply& r);
  void disconnect(const core::Reply& r);

  // Session-level interventions.
  void timeout();                             // 421 4.4.2, then Close
  void set_draining();                        // idle sessions get 421 4.3.2 on their next command
  void shut_down();                           // draining; outside a transaction 421 4.3.2 now, then Close
  void set_tls_active() { tls_active_ = true; }  // implicit TLS: the handshake is done
  void abort_data(const core::Reply& r);      // while in DATA: drop the body, answer r at its end

  std::string& output() { return out_; }
  bool closing() const { return phase_ == Phase::Closed; }
  bool in_data() const { return phase_ == Phase::Data; }
  bool in_transaction() const { return phase_ == Phase::Mail || phase_ == Phase::Rcpt || phase_ == Phase::Data; }
  bool has_unprocessed_input() const { return pos_ < in_.size(); }

  const std::string& helo_name() const { return helo_; }
  const std::string& pending_helo() const { return pending_helo_; }
  bool esmtp() const { return esmtp_; }
  const Address& pending_address() const { return pending_addr_; }
  const Transaction& transaction() const { return txn_; }
  const std::string& message() const { return message_; }  // LF line endings, dot-unstuffed
  // During Event::Message: moves the message out (the filters and the relay share it).
  std::string take_message() { return std::move(message_); }
  // Octets of the message so far as RFC 1870 counts them (CRLF line ends, no stuffing dots, no
  // terminating dot): what limits.message_size and SIZE= are compared with.
  size_t message_bytes_received() const { return data_bytes_; }
  // Message data held (received body + unprocessed input): what the in-flight bound counts.
  size_t held_bytes() const { return message_.size() + (in_.size() - pos_); }
  size_t messages() const { return messages_; }
  CloseReason close_reason() const { return close_reason_; }
  bool tls_active() const { return tls_active_; }
  bool authenticated() const { return !auth_user_.empty(); }
  const std::string& auth_user() const { return auth_user_; }
  const std::string& auth_login() const { return auth_login_; }        // during Event::Auth
  const std::string& auth_password() const { return auth_password_; }  // during Event::Auth
  std::string_view auth_mechanism() const { return auth_mech_; }
  // RFC 3848 "with" keyword: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA.
  std::string received_protocol() const;

 private:
  enum class Phase { Init, Ready, Mail, Rcpt, Data, Closed };

  // Steps return nullopt when they handled input internally and the loop should go on.
  std::optional<Event> command_step();
  std::optional<Event> data_step();
  std::optional<Event> handle_line(std::string_view line);
  std::optional<Event> on_helo(std::string_view arg, bool esmtp);
  std::optional<Event> on_mail(std::string_view arg);
  std::optional<Event> on_rcpt(std::string_view arg);
  std::optional<Event> on_data(std::string_view arg);
  std::optional<Event> on_starttls(std::string_view arg);
  std::optional<Event> on_auth(std::string_view arg);
  std::optional<Event> on_auth_line(std::string_view line);
  std::optional<Event> finish_plain(const std::string& decoded);
  void clear_credentials();
  std::optional<Event> end_of_data();
  std::optional<Event> error(const core::Reply& r);
  std::optional<Event> pause(Event e);
  void drop_message(const core::Reply& r);
  void send(const core::Reply& r) { out_ += r.wire(); }
  void close_with(const core::Reply& r, CloseReason reason);
  void reset_transaction();
  core::Reply ehlo_reply() const;
  void compact_input();

  Settings s_;
  Phase phase_ = Phase::Init;
  std::optional<Event> pending_;
  bool draining_ = false;

  std::string in_;
  size_t pos_ = 0;
  bool skipping_long_line_ = false;
  std::string out_;

  std::string helo_;
  bool esmtp_ = false;
  bool tls_active_ = false;
  enum class AuthStep { None, Plain, LoginUser, LoginPass } auth_step_ = AuthStep::None;
  std::string_view auth_mech_;
  std::string auth_login_, auth_password_, auth_user_;
  size_t auth_failures_ = 0;
  std::string pending_helo_;
  bool pending_esmtp_ = false;
  Address pending_addr_;
  Transaction txn_;
  size_t errors_ = 0;
  size_t messages_ = 0;
  CloseReason close_reason_ = CloseReason::None;

  // DATA state
  std::string message_;
  size_t line_len_ = 0;          // octets of the current line seen so far (excl. CRLF)
  bool line_dot_ = false;        // current line began with a '.' (removed)
  bool prev_cr_ = false;         // last octet seen was CR (awaiting LF)
  size_t data_bytes_ = 0;
  std::optional<core::Reply> data_failure_;  // too big / line too long / aborted
};

}  // namespace smtp
