// Session: the coroutine loop  next() -> decide/relay/TLS/AUTH -> flush -> read, with one
// watchdog (net::Watchdog) that cancels the socket's wait when it outlives its timeout or the
// session deadline.
// The transport is the plain socket until STARTTLS (or from the start on implicit-TLS
// listeners), then an OpenSSL stream over the same socket.
#include "smtpd/session.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <unordered_map>
#include <sys/socket.h>

#include "core/ids.h"
#include "core/ip.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"
#include "filters/reply_for.h"
#include "net/deadline.h"
#include "net/proxy_protocol.h"
#include "qmqp/client.h"
#include "smtp/protocol.h"
#include "smtpd/received.h"
#include "smtpd/recipient_brake.h"
#include "smtpd/tls.h"

namespace smtpd {
namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using core::Reply;
namespace R = core::replies;

namespace {

smtp::Settings settings_from(const config::Config& c, const config::Profile& p, bool tls_available) {
  smtp::Settings s;
  s.hostname = c.hostname;
  s.line_length = c.limits.line_length;
  s.data_line_length = c.limits.data_line_length;
  s.message_size = p.message_size ? p.message_size : c.limits.message_size;
  s.recipients = p.recipients ? p.recipients : c.limits.recipients;
  s.error_limit = c.limits.errors;
  s.starttls = tls_available && !p.implicit_tls;
  s.tls_active = false;  // implicit TLS: set by the engine once the handshake is done
  s.auth = p.auth && tls_available;
  s.auth_required = p.auth_required;
  s.auth_failure_limit = c.auth.failure_limit;
  return s;
}

// A client-controlled (or otherwise outside) value as one quoted, escaped log field: whatever it
// holds, one event stays one line that splits unambiguously (core::quoted_for_log).
std::string q(std::string_view s, size_t max = core::kSafeTextMax) { return core::quoted_for_log(s, max); }

AuthBrakeSettings auth_brake_settings(const config::Auth& a) {
  AuthBrakeSettings s;
  s.delay = std::chrono::duration_cast<Clock::duration>(a.failure_delay);
  s.max_delay = std::chrono::duration_cast<Clock::duration>(a.max_delay);
  s.address_limit = a.address_failure_limit;
  s.login_limit = a.login_failure_limit;
  s.network_limit = a.network_failure_limit;
  s.window = std::chrono::duration_cast<Clock::duration>(a.failure_window);
  return s;
}

RecipientBrakeSettings recipient_brake_settings(const config::Limits& l) {
  RecipientBrakeSettings s;
  s.soft = l.rejected_recipients_soft;
  s.hard = l.rejected_recipients;
  s.step = std::chrono::duration_cast<Clock::duration>(l.rejected_recipient_delay);
  s.address_soft = l.address_rejected_recipients_soft;
  s.address_hard = l.address_rejected_recipients;
  s.window = std::chrono::duration_cast<Clock::duration>(l.rejected_recipients_window);
  return s;
}

// Sessions closed by the recipient brake, by the count that closed them.
void count_brake_close(BrakeScope scope) {
  static const bool described = [] {
    core::describe({"rejected_recipient_closes_total",
                    "Sessions closed with 421 4.7.0 for too many refused recipients, by scope: session "
                    "(limits.rejected_recipients) or address (limits.address_rejected_recipients, across connections)."});
    return true;
  }();
  (void)described;
  const char* name = scope == BrakeScope::Address ? "address" : "session";
  core::count(core::labeled_counter("rejected_recipient_closes_total", core::labels({{"scope", name}})));
}

double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The envelope on a message line, Postfix's way: from=<sender> and one to=<rcpt> per recipient.
constexpr size_t kAddressLogMax = 512;  // an address longer than RFC 5321 allows is cut here
std::string envelope_fields(std::string_view sender, const std::vector<std::string>& recipients) {
  std::string out = "from=" + core::angled_for_log(sender, kAddressLogMax);
  for (const auto& r : recipients) out += " to=" + core::angled_for_log(r, kAddressLogMax);
  return out;
}

std::vector<std::string> recipient_strings(const smtp::Transaction& t) {
  std::vector<std::string> out;
  for (const auto& r : t.recipients) out.push_back(r.str());
  return out;
}

// The chain's judgement on a message line: the total score and what scored ("RBL_ZEN=3 X=2").
std::string score_fields(const filters::Score& s) { return fmt::format("score={:g} tags={}", s.total(), q(s.report())); }

std::string_view outcome_name(const Reply& r) { return r.positive() ? "relayed" : r.temporary() ? "tempfailed" : "rejected"; }

// Per mailbox server: answers by kind and relay latency. The metric registry is looked up once
// per server and I/O thread, not per message (the set of servers is the config's, so bounded).
struct RelayMetrics {
  std::array<core::LabeledCounter*, 5> answers;  // indexed by qmqp::Status
  core::Histogram* latency;
};

const RelayMetrics& relay_metrics(const std::string& server) {
  thread_local std::unordered_map<std::string, RelayMetrics> cache;
  auto it = cache.find(server);
  if (it != cache.end()) return it->second;
  static constexpr const char* kAnswer[] = {"K", "Z", "D", "unavailable", "protocol_error"};
  RelayMetrics m{};
  for (size_t i = 0; i < m.answers.size(); ++i)
    m.answers[i] = core::labeled_counter("qmqp_answers_total", core::labels({{"server", server}, {"answer", kAnswer[i]}}));
  m.latency = core::histogram("qmqp_duration_seconds", core::labels({{"server", server}}));
  return cache.emplace(server, m).first->second;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, std::shared_ptr<const Snapshot> snap, Shared& sh, config::Listener listener)
      : sock_(std::move(s)),
        watchdog_(sock_.get_executor()),
        snap_(std::move(snap)),
        cfg_(*snap_->config),
        profile_(cfg_.profile(listener.profile)),
        chain_(snap_->chains.at(profile_.name)),
        shared_(sh),
        listener_(std::move(listener)),
        proto_(settings_from(cfg_, profile_, snap_->tls != nullptr)),
        reservation_(sh.budget) {}

  asio::awaitable<void> run();

 private:
  enum class ReadResult { Ok, Eof, Timeout, Error, Drained };

  asio::awaitable<ReadResult> fill(config::Seconds timeout);
  asio::awaitable<bool> flush();
  asio::awaitable<void> decide(smtp::Event e);
  asio::awaitable<bool> admit();
  asio::awaitable<bool> greet();
  void close_unanswered(std::string_view when);
  void on_drain();
  asio::awaitable<void> judge_message();
  size_t strip_headers(const std::string& body, std::string& cleaned) const;
  asio::awaitable<void> relay(const std::string& body, const std::string& extra_headers);
  filters::Context context() const;
  std::string message_id() const;
  filters::ReplyNames reply_names() const { return {cfg_.hostname, ip_}; }
  void watch_for_disconnect();
  asio::awaitable<bool> start_tls();
  asio::awaitable<bool> read_proxy_header();
  asio::awaitable<bool> read_more(std::string& buf, size_t want);
  void finish(boost::system::error_code& ec);
  asio::awaitable<void> authenticate();
  asio::awaitable<void> wait_until(Clock::time_point t);
  bool sender_allowed() const;
  tcp::socket& raw() { return tls_ ? tls_->next_layer() : sock_; }
  void on_data_start();
  void account_memory();
  // Timeouts: one watchdog per session, cut to the session deadline; its timer is re-armed only
  // when a deadline moves earlier, so a wait costs a clock read instead of a timer syscall.
  void arm(config::Seconds d) { watchdog_.arm_after(d); }
  void disarm() { watchdog_.disarm(); }
  bool timed_out() const { return watchdog_.timed_out(); }
  void set_in_transaction(bool on);
  config::Seconds read_timeout() const;
  std::atomic<size_t>& profile_slot() {
    size_t i = static_cast<size_t>(&profile_ - cfg_.profiles.data());
    return shared_.sessions_by_profile[std::min(i, shared_.sessions_by_profile.size() - 1)];
  }

  tcp::socket sock_;  // moved into tls_ by STARTTLS / implicit TLS: use raw()
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  std::unique_ptr<std::array<char, 16384>> tls_buf_;  // TLS records are read into this
  std::string tls_desc_;                               // "TLSv1.3 with cipher ..."
  net::Watchdog watchdog_;
  std::shared_ptr<const Snapshot> snap_;
  const config::Config& cfg_;
  const config::Profile& profile_;
  std::shared_ptr<const filters::Chain> chain_;
  std::unique_ptr<filters::ChainRun> filters_;  // this connection's passage through chain_
  Shared& shared_;
  config::Listener listener_;
  smtp::Protocol proto_;
  Reservation reservation_;
  ConnectionLimiter::Ticket ticket_;
  ConnectionLimiter::Result admission_ = ConnectionLimiter::Result::Ok;  // taken at accept
  Reply banner_;                                                           // set by admit()
  uint64_t wakeup_ = 0;                                                    // in shared_.drain_wakeups
  bool waiting_ = false;  // for the client's bytes (a command, a TLS handshake, a PROXY header)
  bool drained_ = false;  // the drain ended that wait

  std::string sid_;
  core::IpAddress ip_;  // parsed once: from the socket, then from the PROXY header
  uint16_t port_ = 0;
  Clock::time_point start_, deadline_;
  bool got_input_ = false;
  bool counted_txn_ = false;
  size_t auth_failures_ = 0;
  size_t refused_recipients_ = 0;  // recipients refused (5xx by a filter) in this session
  std::vector<std::string> auth_addresses_;  // addresses the authenticated user may send as
  smtp::CloseReason reason_ = smtp::CloseReason::None;
};

config::Seconds Session::read_timeout() const {
  if (proto_.in_data()) return cfg_.limits.data_timeout;
  return got_input_ ? cfg_.limits.command_timeout : cfg_.limits.greeting_timeout;
}

asio::awaitable<Session::ReadResult> Session::fill(config::Seconds timeout) {
  // Wait for readability first and read into a per-thread buffer afterwards, so an idle
  // connection holds no read buffer of its own.
  thread_local std::array<char, 65536> buf;
  if (tls_) {  // TLS: the stream may hold decrypted bytes already, so read through it directly
    boost::system::error_code ec;
    arm(timeout);
    waiting_ = true;
    size_t n = co_await tls_->async_read_some(asio::buffer(*tls_buf_), asio::redirect_error(asio::use_awaitable, ec));
    waiting_ = false;
    disarm();
    if (drained_) co_return ReadResult::Drained;
    if (timed_out()) co_return ReadResult::Timeout;
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) co_return ReadResult::Eof;
    if (ec) co_return ReadResult::Error;
    got_input_ = true;
    proto_.receive(std::string_view(tls_buf_->data(), n));
    co_return ReadResult::Ok;
  }
  for (;;) {
    boost::system::error_code ec;
    arm(timeout);
    waiting_ = true;
    co_await sock_.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    waiting_ = false;
    disarm();
    if (drained_) co_return ReadResult::Drained;
    if (timed_out()) co_return ReadResult::Timeout;
    if (ec) co_return ReadResult::Error;
    size_t n = sock_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
    if (ec == asio::error::eof || (!ec && n == 0)) co_return ReadResult::Eof;
    if (ec) co_return ReadResult::Error;
    got_input_ = true;
    proto_.receive(std::string_view(buf.data(), n));
    co_return ReadResult::Ok;
  }
}

asio::awaitable<bool> Session::flush() {
  std::string& out = proto_.output();
  if (out.empty()) co_return true;
  boost::system::error_code ec;
  arm(cfg_.limits.command_timeout);
  if (tls_) co_await asio::async_write(*tls_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
  else co_await asio::async_write(sock_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
  disarm();
  out.clear();
  if (out.capacity() > 4096) out.shrink_to_fit();
  co_return !ec && !timed_out();
}

void Session::set_in_transaction(bool on) {
  if (on == counted_txn_) return;
  counted_txn_ = on;
  if (on) shared_.transactions.fetch_add(1);
  else shared_.transactions.fetch_sub(1);
}

// Keeps the reservation equal to what the engine holds; past the budget, the message being
// received is dropped and answered 452 4.3.1 at its end.
void Session::account_memory() {
  if (reservation_.update(proto_.held_bytes())) return;
  if (proto_.in_data())
    core::log().info("inflight id={} client={} message dropped at {} bytes: memory bound (all sessions {}, this client {})", sid_,
                     ip_, proto_.held_bytes(), shared_.budget.used(), shared_.budget.used_by(client_network(ip_)));
  proto_.abort_data(R::insufficient_storage());
  reservation_.update(0);
  reservation_.update(proto_.held_bytes());  // the small remainder; may fail, nothing left to drop
}

void Session::on_data_start() {
  if (!reservation_.room_for(cfg_.limits.data_line_length)) {  // in all, and this client's share
    proto_.reject(R::insufficient_storage());
    return;
  }
  proto_.accept();
}

// The transaction's message id, "<session id>.<n>" (the n-th message of the connection): in the
// log lines, the Received field, and rspamd's Queue-Id.
std::string Session::message_id() const { return sid_ + "." + std::to_string(proto_.messages() + 1); }

// The session's side of a filter Context; each phase adds its own fields.
filters::Context Session::context() const {
  filters::Context c;
  c.session_id = sid_;
  c.client_ip = ip_;
  c.helo = proto_.helo_name();
  c.authenticated = proto_.authenticated();
  c.login = proto_.auth_user();
  c.tls = tls_ != nullptr;
  return c;
}

asio::awaitable<void> Session::decide(smtp::Event e) {
  filters::Phase phase = e == smtp::Event::Helo ? filters::Phase::Helo
                         : e == smtp::Event::MailFrom ? filters::Phase::MailFrom
                                                : filters::Phase::RcptTo;
  filters::Context ctx = context();
  if (e == smtp::Event::Helo) ctx.helo = proto_.pending_helo();
  if (e == smtp::Event::MailFrom) ctx.sender = proto_.pending_address();
  if (e == smtp::Event::RcptTo) {
    ctx.sender = proto_.transaction().sender;
    ctx.recipient = proto_.pending_address();
  }
  if (e == smtp::Event::MailFrom) {
    filters_->new_transaction();
    if (!sender_allowed()) {
      proto_.reject(R::sender_not_owned(proto_.pending_address().str()));
      core::log().info("reject id={} client={} user={} from={} reason=\"sender not owned\"", sid_, ip_,
                       q(proto_.auth_user()), q(proto_.pending_address().str()));
      co_return;
    }
  }
  filters::Verdict v = co_await filters_->run(phase, std::move(ctx));
  filters::Answer a = filters::reply_for(phase, v, reply_names());
  RecipientBrakeStep brake;
  if (e == smtp::Event::RcptTo && a.step != filters::Step::Proceed) {
    // Every refused recipient is logged; the permanent refusals feed the harvesting brake.
    bool counted = v.action == filters::Action::Reject && a.reply && a.reply->permanent();
    size_t address_refused = 0;  // this address's refusals across connections (0: not counted, or the brake is off)
    if (counted) {
      RecipientBrakeSettings bs = recipient_brake_settings(cfg_.limits);
      address_refused = shared_.recipient_brake.refused(ip_.network_key().str(), bs, Clock::now());
      brake = recipient_brake(++refused_recipients_, address_refused, bs);
      if (brake.close) count_brake_close(brake.closed_by);
    }
    core::log().info("reject id={} client={} rcpt={} reply=\"{} {}\" reason={} refused={} address_refused={}{}", sid_,
                     ip_, q(proto_.pending_address().str()), a.reply ? a.reply->code : 0,
                     a.reply ? a.reply->enhanced : "", q(v.reason.empty() ? "no filter accepted the recipient" : v.reason),
                     refused_recipients_, address_refused,
                     brake.closed_by == BrakeScope::Address ? " closing=\"too many rejected recipients from the address\""
                     : brake.close                          ? " closing=\"too many rejected recipients\""
                                                            : "");
    if (brake.delay.count() > 0) co_await wait_until(Clock::now() + brake.delay);
  }
  switch (a.step) {
    case filters::Step::Proceed: proto_.accept(std::move(a.reply)); break;
    case filters::Step::Refuse: proto_.reject(*a.reply); break;
    case filters::Step::Disconnect: proto_.disconnect(*a.reply); break;
  }
  if (brake.close) proto_.disconnect(R::too_many_rejected_recipients());  // after the refusal itself
  // Every refused recipient is counted, also one that no filter vouched for (Continue).
  if (e == smtp::Event::RcptTo && a.step != filters::Step::Proceed)
    core::count(core::Counter::RecipientsRejected);
}

asio::awaitable<void> Session::wait_until(Clock::time_point t) {
  if (t <= Clock::now()) co_return;
  asio::steady_timer timer(raw().get_executor());
  timer.expires_at(t);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Admission: the connection limits (taken at accept), then the chain's connect phase (client
// block lists; the RBL lookups start here). Leaves the banner in banner_; false = refused (the
// banner says why). On implicit-TLS listeners it runs before the handshake.
asio::awaitable<bool> Session::admit() {
  if (shared_.draining) {
    banner_ = R::shutting_down();
    co_return false;
  }
  switch (admission_) {
    case ConnectionLimiter::Result::Ok: break;
    case ConnectionLimiter::Result::TooMany: banner_ = R::too_many_connections(); co_return false;
    case ConnectionLimiter::Result::TooManyFromIp: banner_ = R::too_many_connections_from_ip(); co_return false;
  }
  filters::Context ctx = context();
  filters_->connect(ctx);
  filters::Verdict v = co_await filters_->run(filters::Phase::Connect, std::move(ctx));
  filters::Answer a = filters::reply_for(filters::Phase::Connect, v, reply_names());
  banner_ = *a.reply;
  if (a.step == filters::Step::Proceed) co_return true;
  reason_ = smtp::CloseReason::Refused;
  co_return false;
}

// The greeting: admission, then its banner. A refusal (not 2xx) closes the connection once sent.
asio::awaitable<bool> Session::greet() {
  bool ok = co_await admit();
  proto_.greet(banner_);
  co_return ok;
}

// A refusal that cannot be told in SMTP (before a PROXY header or a TLS handshake: nothing may be
// sent in clear text there): logged and counted, and the connection is closed without a word.
void Session::close_unanswered(std::string_view when) {
  core::count(core::Counter::ConnectionsRefused);
  if (reason_ == smtp::CloseReason::None) reason_ = smtp::CloseReason::Refused;
  core::log().info("refused id={} client={} listener={} reply=\"{} {} {}\" closed {} without a reply", sid_, ip_,
                   listener_.name(), banner_.code, banner_.enhanced, banner_.text, when);
}

// SIGTERM: a session waiting for its client outside a transaction is closed at once (421 4.3.2
// when SMTP is spoken already); one inside a transaction, or busy, goes on (it looks at
// shared_.draining before its next wait).
void Session::on_drain() {
  if (!waiting_ || proto_.in_transaction() || drained_) return;
  drained_ = true;
  boost::system::error_code ignored;
  raw().cancel(ignored);
}

// While a long check runs nobody reads the socket: watch it, and when the client closes (FIN or
// RST; pipelined bytes are left alone), abandon the check.
void Session::watch_for_disconnect() {
  raw().async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->filters_) return;
    char c;
    ssize_t n = ::recv(self->raw().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) self->filters_->cancel();
  });
}

// Removes the header fields that go before the relay: the generation's owned ones and those the
// filters asked to remove for this message (the list is copied only in that rare case).
size_t Session::strip_headers(const std::string& body, std::string& cleaned) const {
  const auto& removed = filters_->removed_headers();
  if (removed.empty()) return filters::strip_owned_headers(body, snap_->owned_headers, cleaned);
  std::vector<filters::OwnedHeader> owned = snap_->owned_headers;
  for (const auto& r : removed) owned.push_back({r.name, nullptr, r.occurrence});
  return filters::strip_owned_headers(body, owned, cleaned);
}

// End of data: the data phase of the chain (virus scan, body rules, the score), then the relay
// with the spam headers when the score reached tag_score.
asio::awaitable<void> Session::judge_message() {
  auto body = std::make_shared<const std::string>(proto_.take_message());
  reservation_.update(proto_.held_bytes() + body->size());  // the body stays counted while judged
  filters::Context ctx = context();
  ctx.sender = proto_.transaction().sender;
  ctx.recipients = proto_.transaction().recipients;
  ctx.message_id = message_id();
  ctx.message = body;
  watch_for_disconnect();
  filters::Verdict v = co_await filters_->run(filters::Phase::Data, std::move(ctx));
  boost::system::error_code ignored;
  raw().cancel(ignored);  // stops the watch
  // Logged before the answer: the engine forgets the transaction once it is answered.
  filters::Answer a = filters::reply_for(filters::Phase::Data, v, reply_names());
  if (a.step != filters::Step::Proceed)  // the final line of a refused message (relay() logs the others)
    core::log().info("message id={} client={} helo={} {} size={} {} result={} reply={} reason={}", message_id(),
                     ip_, q(proto_.helo_name()),
                     envelope_fields(proto_.transaction().sender.str(), recipient_strings(proto_.transaction())),
                     body->size(), score_fields(filters_->score()), outcome_name(*a.reply),
                     q(fmt::format("{} {} {}", a.reply->code, a.reply->enhanced, a.reply->text)), q(v.reason));
  if (a.step == filters::Step::Proceed) {
    std::string extra = filters_->spam_headers(cfg_.filters.headers) + filters_->added_headers();
    std::string cleaned;  // without the client's copies of the headers mxfront writes, and what filters removed
    size_t removed = strip_headers(*body, cleaned);
    if (removed) {
      reservation_.update(proto_.held_bytes() + body->size() + cleaned.size());  // the copy counts while relayed
      core::log().info("message id={} client={} removed {} header(s) that mxfront writes itself", message_id(), ip_,
                       removed);
    }
    const std::string& relayed = removed ? cleaned : *body;
    co_await relay(relayed, extra);
    co_return;
  }
  if (a.step == filters::Step::Refuse) proto_.reject(*a.reply);
  else proto_.disconnect(*a.reply);
  core::count(v.action == filters::Action::TempFail ? core::Counter::MessagesTempFailed : core::Counter::MessagesRejected);
}

// An authenticated user may only send as its own addresses (or with the null sender).
bool Session::sender_allowed() const {
  if (!proto_.authenticated() || !profile_.sender_login_match) return true;
  const smtp::Address& from = proto_.pending_address();
  if (from.null()) return true;
  std::string want = smtp::lowercase(from.str());
  return std::find(auth_addresses_.begin(), auth_addresses_.end(), want) != auth_addresses_.end();
}

// Appends to `buf` what the socket has, but never more than `want` bytes in all: nothing after the
// PROXY header is consumed, so a TLS ClientHello or SMTP bytes behind it stay in the socket.
asio::awaitable<bool> Session::read_more(std::string& buf, size_t want) {
  size_t have = buf.size();
  buf.resize(want);
  boost::system::error_code ec;
  size_t n = co_await sock_.async_read_some(asio::buffer(buf.data() + have, want - have),
                                            asio::redirect_error(asio::use_awaitable, ec));
  buf.resize(have + n);
  co_return !ec && !timed_out();
}

// PROXY protocol v1/v2 (haproxy doc/proxy-protocol.txt): only from trusted balancers, complete
// before anything is sent; the source address becomes the client address for everything after.
// The parser judges every prefix, so garbage is refused at its first wrong byte.
asio::awaitable<bool> Session::read_proxy_header() {
  bool trusted = false;
  for (const auto& c : listener_.proxy_trusted) trusted = trusted || c.contains(ip_);
  if (!trusted) {
    core::log().warn("proxy id={} peer={} untrusted: closed", sid_, ip_);
    reason_ = smtp::CloseReason::Proxy;
    co_return false;
  }
  std::string buf;
  net::ProxyResult r = net::parse_proxy_header(buf);  // NeedMore: what the shortest header needs
  bool ok = true;
  arm(cfg_.limits.greeting_timeout);
  waiting_ = true;
  while (r.status == net::ProxyStatus::NeedMore) {
    // Only what certainly belongs to the header: the bytes after it stay in the socket.
    ok = co_await read_more(buf, buf.size() + r.more);
    if (!ok) break;
    r = net::parse_proxy_header(buf);
  }
  waiting_ = false;
  disarm();
  if (drained_) {
    reason_ = smtp::CloseReason::Shutdown;
    co_return false;
  }
  if (!ok || r.status != net::ProxyStatus::Done) {
    core::log().warn("proxy id={} peer={} bad header: {}", sid_, ip_,
                     q(!ok ? (timed_out() ? "timeout" : "connection closed") : r.error));
    reason_ = smtp::CloseReason::Proxy;
    co_return false;
  }
  if (!r.header.local) {
    auto src = core::IpAddress::parse(r.header.src_ip);  // the parser printed it: always an address
    if (!src) {
      core::log().warn("proxy id={} peer={} bad header: source address", sid_, ip_);
      reason_ = smtp::CloseReason::Proxy;
      co_return false;
    }
    core::log().info("proxy id={} peer={} client={} v{}", sid_, ip_, src->with_port(r.header.src_port), r.header.version);
    ip_ = *src;
    port_ = r.header.src_port;
    admission_ = shared_.limiter.rekey(ticket_, ip_);  // from the balancer's count to the client's
  }
  co_return true;
}

asio::awaitable<bool> Session::start_tls() {
  boost::system::error_code ec;
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(sock_), *snap_->tls);
  tls_buf_ = std::make_unique<std::array<char, 16384>>();
  arm(cfg_.limits.tls_handshake_timeout);
  waiting_ = true;
  co_await tls_->async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  waiting_ = false;
  disarm();
  if (drained_) {
    reason_ = smtp::CloseReason::Shutdown;
    co_return false;
  }
  if (ec || timed_out()) {
    core::count(core::Counter::TlsHandshakeFailures);
    core::log().warn("tls handshake failed id={} client={} error={}", sid_, ip_, q(timed_out() ? "timeout" : ec.message()));
    reason_ = smtp::CloseReason::Tls;
    co_return false;
  }
  core::count(core::Counter::TlsHandshakes);
  tls_desc_ = describe_tls(tls_->native_handle());
  core::log().info("tls id={} client={} {}", sid_, ip_, tls_desc_);
  co_return true;
}

// The answer to every AUTH waits the same time from the command, whatever the outcome (the
// brake's delay, known before the password is checked): timing tells neither whether the password
// was right nor whether the login exists. Failures are counted per connection (421 at
// auth.failure_limit, in the engine) and per address and login across connections (auth_brake.h).
asio::awaitable<void> Session::authenticate() {
  auto t0 = Clock::now();
  std::string login = proto_.auth_login();
  AuthBrakeSettings bs = auth_brake_settings(cfg_.auth);
  AuthStanding st = shared_.auth_brake.standing(ip_.network_key().str(), login, auth_failures_, bs, t0);
  auto answer_at = t0 + st.delay;
  if (st.refused) {  // past a threshold: the password is not even checked
    core::count(core::Counter::AuthFailures);
    co_await wait_until(answer_at);
    proto_.reject(R::auth_throttled());
    core::log().warn("auth id={} client={} user={} mechanism={} result=throttled address_failures={} login_failures={} network_failures={}",
                     sid_, ip_, q(login), proto_.auth_mechanism(), st.address_failures, st.login_failures,
                     st.network_failures);
    co_return;
  }
  ldap::AuthResult res;
  if (snap_->directory) res = co_await snap_->directory->authenticate(login, proto_.auth_password());
  switch (res.status) {
    case ldap::AuthStatus::Ok:
      shared_.auth_brake.succeeded(ip_.network_key().str(), login, bs, Clock::now());
      auth_addresses_ = std::move(res.addresses);
      core::count(core::Counter::AuthSuccesses);
      co_await wait_until(answer_at);
      proto_.accept();
      core::log().info("auth id={} client={} user={} mechanism={} result=ok", sid_, ip_, q(login), proto_.auth_mechanism());
      co_return;
    case ldap::AuthStatus::Unavailable:
      core::count(core::Counter::AuthUnavailable);
      co_await wait_until(answer_at);
      proto_.reject(R::auth_unavailable());
      core::log().warn("auth id={} client={} user={} result=unavailable detail={}", sid_, ip_, q(login), q(res.detail));
      co_return;
    case ldap::AuthStatus::BadCredentials:
    case ldap::AuthStatus::Disabled:
      break;
  }
  ++auth_failures_;
  shared_.auth_brake.failed(ip_.network_key().str(), login, bs, Clock::now());  // seen at once by the client's other connections
  core::count(core::Counter::AuthFailures);
  co_await wait_until(answer_at);
  proto_.reject(R::auth_failed());
  core::log().warn("auth id={} client={} user={} mechanism={} result=failed failures={}", sid_, ip_, q(login),
                   proto_.auth_mechanism(), auth_failures_);
}

asio::awaitable<void> Session::relay(const std::string& body, const std::string& extra_headers) {
  auto t0 = Clock::now();
  const smtp::Transaction& t = proto_.transaction();
  qmqp::Envelope env;
  env.sender = t.sender.str();
  for (const auto& r : t.recipients)
    env.recipients.push_back(smtp::is_postmaster(r, cfg_.local_domains) ? cfg_.postmaster : r.str());
  std::string id = message_id();
  ReceivedInfo info;
  info.helo = proto_.helo_name();
  info.client_ip = ip_;
  info.hostname = cfg_.hostname;
  std::string protocol = proto_.received_protocol();
  info.protocol = protocol;
  info.tls = tls_desc_;
  info.id = id;
  if (env.recipients.size() == 1) info.recipient = env.recipients.front();
  info.when = std::time(nullptr);
  std::string header = received_header(info) + extra_headers;

  qmqp::Outcome o = co_await qmqp::relay(snap_->relay, env, header, body);
  Reply r = qmqp::to_reply(o);
  const RelayMetrics& m = relay_metrics(o.server);
  core::count(m.answers[static_cast<size_t>(o.status)]);
  core::observe(m.latency, secs_since(t0));
  // The final line of a relayed (or relay-refused) message: one per message, with the verdict.
  core::log().info("message id={} client={} helo={} {} size={} {} result={} reply={} server={} duration={:.3f}",
                   id, ip_, q(proto_.helo_name()), envelope_fields(env.sender, env.recipients), body.size(),
                   score_fields(filters_->score()), outcome_name(r), q(fmt::format("{} {} {}", r.code, r.enhanced, r.text)),
                   q(o.server), secs_since(t0));
  core::count(r.positive() ? core::Counter::MessagesRelayed
              : r.temporary() ? core::Counter::MessagesTempFailed
                              : core::Counter::MessagesRejected);
  if (r.positive()) proto_.accept(r);
  else proto_.reject(r);
}

asio::awaitable<void> Session::run() {
  start_ = Clock::now();
  deadline_ = start_ + std::chrono::duration_cast<Clock::duration>(cfg_.limits.session_timeout);
  sid_ = core::new_session_id();
  boost::system::error_code ec;
  auto peer = sock_.remote_endpoint(ec);
  if (ec) co_return;
  const auto addr = peer.address();
  ip_ = addr.is_v4() ? core::IpAddress::v4(addr.to_v4().to_bytes()) : core::IpAddress::v6(addr.to_v6().to_bytes());
  port_ = peer.port();
  sock_.set_option(tcp::no_delay(true), ec);
  sock_.non_blocking(true, ec);
  watchdog_.start(shared_from_this(), [this] {  // a wait outlived its deadline: end it
    boost::system::error_code ignored;
    raw().cancel(ignored);
  }, deadline_);
  shared_.sessions.fetch_add(1);
  profile_slot().fetch_add(1);
  // Counted from accept, before any PROXY header or TLS handshake: a socket that never says a word
  // holds a slot too. Behind a balancer the peer counts against the total only until the header
  // names the client (read_proxy_header re-keys the ticket).
  admission_ = listener_.proxy_protocol ? shared_.limiter.acquire_total(ticket_) : shared_.limiter.acquire(ip_, ticket_);
  wakeup_ = shared_.drain_wakeups.add([w = weak_from_this(), ex = sock_.get_executor()] {
    asio::post(ex, [w] {
      if (auto self = w.lock()) self->on_drain();
    });
  });
  if (listener_.proxy_protocol && admission_ != ConnectionLimiter::Result::Ok) {
    banner_ = R::too_many_connections();
    close_unanswered("before the PROXY header");
    finish(ec);
    co_return;
  }
  if (listener_.proxy_protocol && !co_await read_proxy_header()) {
    core::count(core::Counter::ConnectionsRefused);
    finish(ec);
    co_return;
  }
  reservation_.set_client(client_network(ip_));
  core::log().info("connect id={} client={} listener={} profile={}", sid_, ip_.with_port(port_), listener_.name(), profile_.name);
  filters_ = std::make_unique<filters::ChainRun>(chain_, raw().get_executor());
  if (profile_.implicit_tls) {
    // Limits and block lists before the handshake: a refused client gets no TLS, and as nothing can
    // be said in clear text on this port, no reply either.
    if (!co_await admit()) {
      close_unanswered("before TLS");
      finish(ec);
      co_return;
    }
    if (!snap_->tls || !co_await start_tls()) {
      finish(ec);
      co_return;
    }
    proto_.set_tls_active();
    proto_.greet(banner_);
  } else {
    co_await greet();
  }
  core::count(proto_.closing() ? core::Counter::ConnectionsRefused : core::Counter::ConnectionsAccepted);

  for (bool open = true; open;) {
    smtp::Event e = proto_.next();
    switch (e) {
      case smtp::Event::NeedInput: {
        account_memory();
        if (!co_await flush()) {
          reason_ = timed_out() ? smtp::CloseReason::Timeout : smtp::CloseReason::Error;
          open = false;
          break;
        }
        if (shared_.draining && !proto_.in_transaction()) {  // the drain closes idle sessions at once
          proto_.shut_down();
          break;
        }
        ReadResult rr = co_await fill(read_timeout());
        if (rr == ReadResult::Timeout) proto_.timeout();
        if (rr == ReadResult::Drained) proto_.shut_down();
        if (rr == ReadResult::Eof || rr == ReadResult::Error) {
          reason_ = rr == ReadResult::Eof ? smtp::CloseReason::Eof : smtp::CloseReason::Error;
          open = false;
        }
        if (shared_.draining) proto_.set_draining();
        break;
      }
      case smtp::Event::Helo:
      case smtp::Event::MailFrom:
      case smtp::Event::RcptTo: co_await decide(e); break;
      case smtp::Event::StartTls:
        if (co_await flush() && co_await start_tls()) {
          proto_.accept();
        } else {
          if (reason_ == smtp::CloseReason::None) reason_ = smtp::CloseReason::Error;
          open = false;
        }
        break;
      case smtp::Event::Auth: co_await authenticate(); break;
      case smtp::Event::DataStart: on_data_start(); break;
      case smtp::Event::Message: co_await judge_message(); break;
      case smtp::Event::Close:
        watchdog_.clear();  // the last flush (the 421 after a timeout too) is judged on its own
        co_await flush();
        reason_ = proto_.close_reason();
        open = false;
        break;
    }
    set_in_transaction(proto_.in_transaction());
  }
  finish(ec);
}

void Session::finish(boost::system::error_code& ec) {
  if (reason_ == smtp::CloseReason::Timeout) core::count(core::Counter::Timeouts);
  if (reason_ == smtp::CloseReason::Violation || reason_ == smtp::CloseReason::Errors) core::count(core::Counter::ProtocolViolations);
  set_in_transaction(false);
  shared_.drain_wakeups.remove(wakeup_);
  if (filters_) filters_->cancel();
  watchdog_.stop();
  raw().close(ec);
  profile_slot().fetch_sub(1);
  shared_.sessions.fetch_sub(1);
  core::log().info("disconnect id={} client={} messages={} reason={} duration={:.3f}", sid_, ip_, proto_.messages(),
                   name(reason_), secs_since(start_));
}

}  // namespace

void start_session(tcp::socket socket, std::shared_ptr<const Snapshot> snap, Shared& shared, config::Listener listener) {
  auto exec = socket.get_executor();
  auto s = std::make_shared<Session>(std::move(socket), std::move(snap), shared, std::move(listener));
  asio::co_spawn(
      exec,
      [s]() -> asio::awaitable<void> {
        try {
          co_await s->run();
        } catch (const std::exception& e) {
          core::log().error("session aborted: {}", e.what());
        }
      },
      asio::detached);
}

}  // namespace smtpd
