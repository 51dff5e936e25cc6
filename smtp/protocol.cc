// The SMTP server state machine: command framing, DATA framing (CRLF-only, dot-unstuffing,
// size and line caps), command sequencing and the pause-for-decision protocol.
#include "smtp/protocol.h"

#include <charconv>

#include "core/base64.h"
#include "smtp/command.h"

namespace smtp {

using core::Reply;
namespace R = core::replies;

Protocol::Protocol(Settings s) : s_(std::move(s)), tls_active_(s_.tls_active) {}

void Protocol::greet(const Reply& r) {
  send(r);
  if (!r.positive()) {
    phase_ = Phase::Closed;
    close_reason_ = CloseReason::Limit;
  }
}

void Protocol::receive(std::string_view bytes) {
  if (phase_ != Phase::Closed) in_.append(bytes);
}

Event Protocol::next() {
  for (;;) {
    if (phase_ == Phase::Closed) return Event::Close;
    if (pending_) return *pending_;
    std::optional<Event> e = phase_ == Phase::Data ? data_step() : command_step();
    if (!e) continue;
    if (*e == Event::NeedInput) compact_input();
    return *e;
  }
}

void Protocol::compact_input() {
  if (pos_ >= in_.size()) {
    in_.clear();
    pos_ = 0;
    if (in_.capacity() > 16384) in_.shrink_to_fit();
  } else if (pos_ > 0) {
    in_.erase(0, pos_);
    pos_ = 0;
  }
}

// --- command mode -------------------------------------------------------------------------

std::optional<Event> Protocol::command_step() {
  size_t lf = in_.find('\n', pos_);
  if (skipping_long_line_) {
    if (lf == std::string::npos) {
      pos_ = in_.size();
      return Event::NeedInput;
    }
    pos_ = lf + 1;
    skipping_long_line_ = false;
    return error(R::line_too_long());
  }
  if (lf == std::string::npos) {
    if (in_.size() - pos_ > s_.line_length) {
      skipping_long_line_ = true;
      pos_ = in_.size();
    }
    return Event::NeedInput;
  }
  if (lf == pos_ || in_[lf - 1] != '\r') {
    close_with(R::bare_line_ending(), CloseReason::Violation);
    return Event::Close;
  }
  std::string_view line(in_.data() + pos_, lf - 1 - pos_);
  pos_ = lf + 1;
  if (line.find('\r') != std::string_view::npos) {
    close_with(R::bare_line_ending(), CloseReason::Violation);
    return Event::Close;
  }
  if (line.size() + 2 > s_.line_length) return error(R::line_too_long());
  if (auth_step_ != AuthStep::None) return on_auth_line(line);
  return handle_line(line);
}

std::optional<Event> Protocol::handle_line(std::string_view line) {
  for (char c : line) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u == 0 || u >= 0x80) return error(R::invalid_character());
  }
  Command cmd = parse_command(line);
  if (draining_ && !in_transaction() && cmd.verb != Verb::Quit) {
    close_with(R::shutting_down(), CloseReason::Shutdown);
    return Event::Close;
  }
  switch (cmd.verb) {
    case Verb::Helo: return on_helo(cmd.arg, false);
    case Verb::Ehlo: return on_helo(cmd.arg, true);
    case Verb::Mail: return on_mail(cmd.arg);
    case Verb::Rcpt: return on_rcpt(cmd.arg);
    case Verb::Data: return on_data(cmd.arg);
    case Verb::Rset:
      if (!cmd.arg.empty()) return error(R::syntax("RSET takes no argument"));
      reset_transaction();
      send(R::ok());
      return std::nullopt;
    case Verb::Noop: send(R::ok()); return std::nullopt;
    case Verb::Vrfy: send(R::vrfy()); return std::nullopt;
    case Verb::Help: send(R::help()); return std::nullopt;
    case Verb::Quit:
      close_with(R::closing(s_.hostname), CloseReason::Quit);
      return Event::Close;
    case Verb::StartTls: return on_starttls(cmd.arg);
    case Verb::Auth: return on_auth(cmd.arg);
    case Verb::NotImplemented: return error(R::not_implemented());
    case Verb::Unknown: break;
  }
  return error(R::unknown_command());
}

std::optional<Event> Protocol::on_helo(std::string_view arg, bool esmtp) {
  size_t sp = arg.find(' ');
  std::string_view name = arg.substr(0, sp);
  if (name.empty()) return error(R::syntax(esmtp ? "EHLO hostname" : "HELO hostname"));
  if (name.size() > 255) return error(R::syntax("hostname too long"));
  pending_helo_ = std::string(name);
  pending_esmtp_ = esmtp;
  return pause(Event::Helo);
}

std::optional<Event> Protocol::on_mail(std::string_view arg) {
  if (phase_ == Phase::Init) return error(R::helo_first());
  if (phase_ != Phase::Ready) return error(R::bad_sequence("nested MAIL command"));
  if (s_.auth_required && !authenticated()) return error(R::auth_required());
  PathResult p = parse_path(arg, PathKind::Sender);
  if (!p.ok) return error(R::bad_sender_syntax(p.error));
  Transaction t;
  for (const Param& prm : p.ok->params) {
    if (!esmtp_) return error(R::unknown_parameter(prm.key));
    if (prm.key == "SIZE") {
      const char* b = prm.value.data();
      const char* e = b + prm.value.size();
      auto [ptr, ec] = std::from_chars(b, e, t.declared_size);
      if (prm.value.empty() || ptr != e) return error(R::syntax("SIZE=number"));
      if (ec == std::errc::result_out_of_range) t.declared_size = SIZE_MAX;
      if (t.declared_size > s_.message_size) {
        send(R::message_too_big());
        return std::nullopt;
      }
    } else if (prm.key == "BODY") {
      std::string v = lowercase(prm.value);
      if (v != "7bit" && v != "8bitmime") return error(R::syntax("BODY=7BIT or BODY=8BITMIME"));
      t.body_8bit = v == "8bitmime";
    } else {
      return error(R::unknown_parameter(prm.key));
    }
  }
  t.sender = p.ok->address;
  pending_addr_ = p.ok->address;
  txn_ = std::move(t);
  return pause(Event::MailFrom);
}

std::optional<Event> Protocol::on_rcpt(std::string_view arg) {
  if (phase_ == Phase::Init) return error(R::helo_first());
  if (phase_ == Phase::Ready) return error(R::bad_sequence("need MAIL before RCPT"));
  PathResult p = parse_path(arg, PathKind::Recipient);
  if (!p.ok) return error(R::bad_address_syntax(p.error));
  if (!p.ok->params.empty()) return error(R::unknown_parameter(p.ok->params.front().key));
  if (txn_.recipients.size() >= s_.recipients) {
    send(R::too_many_recipients());
    return std::nullopt;
  }
  pending_addr_ = p.ok->address;
  return pause(Event::RcptTo);
}

std::optional<Event> Protocol::on_data(std::string_view arg) {
  if (phase_ == Phase::Init) return error(R::helo_first());
  if (phase_ == Phase::Ready) return error(R::bad_sequence("need MAIL command"));
  if (!arg.empty()) return error(R::syntax("DATA takes no argument"));
  if (txn_.recipients.empty()) return error(R::no_valid_recipients());
  return pause(Event::DataStart);
}

// --- STARTTLS (RFC 3207) and AUTH (RFC 4954) ---------------------------------------------

std::optional<Event> Protocol::on_starttls(std::string_view arg) {
  if (!s_.starttls && !tls_active_) return error(R::not_implemented());
  if (tls_active_) return error(R::tls_already_active());
  if (!arg.empty()) return error(R::syntax("STARTTLS takes no argument"));
  if (phase_ == Phase::Init) return error(R::helo_first());
  if (in_transaction()) return error(R::bad_sequence("STARTTLS during a mail transaction"));
  send(R::tls_ready());
  // CVE-2011-0411: whatever the client pipelined after STARTTLS arrived in plaintext and
  // must never be executed inside the TLS session.
  pos_ = in_.size();
  return pause(Event::StartTls);
}

std::optional<Event> Protocol::on_auth(std::string_view arg) {
  if (!s_.auth) return error(R::auth_not_enabled());
  if (phase_ == Phase::Init) return error(R::helo_first());
  if (!tls_active_) return error(R::encryption_required());
  if (authenticated()) return error(R::already_authenticated());
  if (in_transaction()) return error(R::auth_in_transaction());
  size_t sp = arg.find(' ');
  std::string mech = lowercase(arg.substr(0, sp));
  std::string_view initial = sp == std::string_view::npos ? std::string_view() : arg.substr(sp + 1);
  bool has_initial = sp != std::string_view::npos;
  if (mech != "plain" && mech != "login") return error(R::auth_mechanism_unknown());
  auth_mech_ = mech == "plain" ? "PLAIN" : "LOGIN";
  if (has_initial && initial != "=") {
    auto decoded = core::base64_decode(initial);
    if (!decoded) return error(R::auth_bad_base64());
    if (mech == "plain") return finish_plain(*decoded);
    auth_login_ = *decoded;
    auth_step_ = AuthStep::LoginPass;
    send({334, "", "UGFzc3dvcmQ6"});  // "Password:"
    return std::nullopt;
  }
  if (has_initial && mech == "plain") return finish_plain("");
  auth_step_ = mech == "plain" ? AuthStep::Plain : AuthStep::LoginUser;
  send({334, "", mech == "plain" ? "" : "VXNlcm5hbWU6"});  // "Username:"
  return std::nullopt;
}

std::optional<Event> Protocol::on_auth_line(std::string_view line) {
  AuthStep step = auth_step_;
  auth_step_ = AuthStep::None;
  if (line == "*") {
    clear_credentials();
    return error(R::auth_canceled());
  }
  auto decoded = core::base64_decode(line);
  if (!decoded) {
    clear_credentials();
    return error(R::auth_bad_base64());
  }
  switch (step) {
    case AuthStep::Plain: return finish_plain(*decoded);
    case AuthStep::LoginUser:
      auth_login_ = *decoded;
      auth_step_ = AuthStep::LoginPass;
      send({334, "", "UGFzc3dvcmQ6"});
      return std::nullopt;
    default:
      auth_password_ = *decoded;
      return pause(Event::Auth);
  }
}

// PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616). Acting as another identity is refused.
std::optional<Event> Protocol::finish_plain(const std::string& d) {
  size_t a = d.find('\0');
  size_t b = a == std::string::npos ? a : d.find('\0', a + 1);
  if (b == std::string::npos) {
    clear_credentials();
    return error(R::auth_bad_base64());
  }
  std::string authzid = d.substr(0, a);
  auth_login_ = d.substr(a + 1, b - a - 1);
  auth_password_ = d.substr(b + 1);
  if (!authzid.empty() && authzid != auth_login_) auth_password_.clear();  // fails verification
  return pause(Event::Auth);
}

void Protocol::clear_credentials() {
  std::fill(auth_password_.begin(), auth_password_.end(), '\0');
  auth_password_.clear();
  auth_login_.clear();
}

std::string Protocol::received_protocol() const {
  if (!esmtp_) return "SMTP";
  std::string p = "ESMTP";
  if (tls_active_) p += 'S';
  if (authenticated()) p += 'A';
  return p;
}

// --- data mode ----------------------------------------------------------------------------

std::optional<Event> Protocol::data_step() {
  const size_t n = in_.size();
  while (pos_ < n) {
    char c = in_[pos_];
    if (prev_cr_) {
      if (c != '\n') {
        close_with(R::bare_line_ending(), CloseReason::Violation);
        return Event::Close;
      }
      prev_cr_ = false;
      ++pos_;
      if (line_dot_ && line_len_ == 1) return end_of_data();
      if (!data_failure_) message_ += '\n';
      data_bytes_ += 2;
      line_len_ = 0;
      line_dot_ = false;
      continue;
    }
    if (c == '\r') {
      prev_cr_ = true;
      ++pos_;
      continue;
    }
    if (c == '\n') {
      close_with(R::bare_line_ending(), CloseReason::Violation);
      return Event::Close;
    }
    size_t j = pos_;
    while (j < n && in_[j] != '\r' && in_[j] != '\n') ++j;
    std::string_view run(in_.data() + pos_, j - pos_);
    if (line_len_ == 0 && run.front() == '.') {
      line_dot_ = true;
      run.remove_prefix(1);
      ++line_len_;  // the line limit counts the line as sent; the size (RFC 1870) never counts a
                    // stuffing dot or the terminating one: the message as it will be relayed
    }
    line_len_ += run.size();
    data_bytes_ += run.size();
    pos_ = j;
    if (data_failure_) continue;
    if (line_len_ + 2 > s_.data_line_length) {
      drop_message(R::data_line_too_long());
    } else if (data_bytes_ > s_.message_size) {
      drop_message(R::message_too_big());
    } else {
      message_.append(run);
    }
  }
  return Event::NeedInput;
}

void Protocol::drop_message(const Reply& r) {
  data_failure_ = r;
  message_.clear();
  message_.shrink_to_fit();
}

void Protocol::abort_data(const Reply& r) {
  if (phase_ == Phase::Data && !data_failure_) drop_message(r);
}

std::optional<Event> Protocol::end_of_data() {
  if (data_failure_) {
    send(*data_failure_);
    reset_transaction();
    return std::nullopt;
  }
  return pause(Event::Message);
}

// --- decisions ----------------------------------------------------------------------------

std::optional<Event> Protocol::pause(Event e) {
  pending_ = e;
  return e;
}

void Protocol::accept(std::optional<Reply> r) {
  if (!pending_) return;
  Event e = *pending_;
  pending_.reset();
  switch (e) {
    case Event::Helo:
      helo_ = std::move(pending_helo_);
      esmtp_ = pending_esmtp_;
      reset_transaction();
      phase_ = Phase::Ready;
      send(r ? *r : esmtp_ ? ehlo_reply() : Reply{250, "", s_.hostname});
      break;
    case Event::MailFrom:
      phase_ = Phase::Mail;
      if (txn_.declared_size > 0) message_.reserve(std::min(txn_.declared_size, s_.message_size) + 1024);
      send(r.value_or(R::sender_ok()));
      break;
    case Event::RcptTo:
      txn_.recipients.push_back(pending_addr_);
      phase_ = Phase::Rcpt;
      send(r.value_or(R::recipient_ok()));
      break;
    case Event::StartTls:
      tls_active_ = true;  // RFC 3207 §4.2: forget everything learned before the handshake
      reset_transaction();
      phase_ = Phase::Init;
      helo_.clear();
      esmtp_ = false;
      break;
    case Event::Auth:
      auth_user_ = auth_login_;
      clear_credentials();
      send(r.value_or(R::auth_ok()));
      break;
    case Event::DataStart:
      phase_ = Phase::Data;
      line_len_ = 0;
      line_dot_ = false;
      prev_cr_ = false;
      data_bytes_ = 0;
      data_failure_.reset();
      send(r.value_or(R::start_data()));
      break;
    case Event::Message:
      ++messages_;
      send(r.value_or(R::ok()));
      reset_transaction();
      break;
    default:
      break;
  }
}

void Protocol::reject(const Reply& r) {
  if (!pending_) return;
  Event e = *pending_;
  pending_.reset();
  send(r);
  if (e == Event::MailFrom) txn_ = {};
  if (e == Event::Message) reset_transaction();
  if (e == Event::Auth) {
    clear_credentials();
    if (r.permanent() && ++auth_failures_ >= s_.auth_failure_limit) close_with(R::too_many_auth_failures(), CloseReason::Auth);
  }
}

void Protocol::disconnect(const Reply& r) {
  pending_.reset();
  close_with(r, CloseReason::Rejected);
}

void Protocol::timeout() { close_with(R::timeout(), CloseReason::Timeout); }

void Protocol::set_draining() { draining_ = true; }

void Protocol::shut_down() {
  draining_ = true;
  if (!in_transaction()) close_with(R::shutting_down(), CloseReason::Shutdown);
}

std::optional<Event> Protocol::error(const Reply& r) {
  // Any error ends an AUTH exchange in progress: the next line is a command, never a credential.
  if (auth_step_ != AuthStep::None) {
    auth_step_ = AuthStep::None;
    clear_credentials();
  }
  send(r);
  if (++errors_ >= s_.error_limit) {
    close_with(R::too_many_errors(), CloseReason::Errors);
    return Event::Close;
  }
  return std::nullopt;
}

void Protocol::close_with(const Reply& r, CloseReason reason) {
  if (phase_ == Phase::Closed) return;
  send(r);
  phase_ = Phase::Closed;
  pending_.reset();
  close_reason_ = reason;
  message_.clear();
  message_.shrink_to_fit();
}

void Protocol::reset_transaction() {
  txn_ = {};
  message_.clear();
  if (message_.capacity() > 65536) message_.shrink_to_fit();
  data_failure_.reset();
  if (phase_ != Phase::Init && phase_ != Phase::Closed) phase_ = Phase::Ready;
}

Reply Protocol::ehlo_reply() const {
  std::string text = s_.hostname;
  text += "\nPIPELINING\nSIZE " + std::to_string(s_.message_size) + "\n8BITMIME\nENHANCEDSTATUSCODES";
  if (s_.starttls && !tls_active_) text += "\nSTARTTLS";
  if (s_.auth && tls_active_) text += "\nAUTH PLAIN LOGIN";
  return {250, "", text};
}

}  // namespace smtp
