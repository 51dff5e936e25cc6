// The filter API: hooks named after SMTP phases, a small closed set of verdicts, async checks.
// A filter never blocks its thread: I/O is awaited, CPU-heavy work goes to the worker pool
// (filters/resources.h). Chain semantics are in chain.h.
//
// Ownership: a check receives its Context as a shared_ptr and must keep it for as long as it
// runs. A check that outlives its timeout, or whose client went away, is abandoned by the chain
// but keeps running until it returns; it should look at ctx->cancel and stop early.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.h"
#include "core/reply.h"
#include "filters/mime_text.h"
#include "smtp/address.h"

namespace filters {

class ParsedMessage;  // filters/parsed_message.h
class SenderAuth;     // filters/sender_auth.h

enum class Phase { Connect, Helo, MailFrom, RcptTo, Data };
enum class Action { Continue, Accept, Reject, TempFail, Disconnect };
std::string_view phase_name(Phase p);    // "connect", "helo", "mail", "rcpt", "data"
std::string_view action_name(Action a);  // "continue", "accept", "reject", "tempfail", "disconnect"

// A header field a filter asks to add to the relayed message (e.g. Authentication-Results, a
// DKIM-Signature, rspamd's X-Spamd-Result). The value may be folded (CRLF or LF + white space);
// ChainRun::added_headers() writes it safely (filters/chain.h).
struct HeaderField {
  std::string name;
  std::string value;
};

// A header field a filter asks to remove from the relayed message's top-level header block:
// every field of that name, or one occurrence of it (rspamd's milter remove_headers).
struct HeaderRemoval {
  std::string name;    // compared case-insensitively
  int occurrence = 0;  // 0: every field of that name; N > 0: the N-th (from 1); N < 0: the |N|-th from the end
  bool operator==(const HeaderRemoval&) const = default;
};

struct Verdict {
  Action action = Action::Continue;
  std::optional<core::Reply> reply;  // the reply to send; a default is used when empty
  std::string reason;                // for the log (and the reply of a score reject)
  double score = 0;                  // added to the message's score, whatever the action
  std::vector<std::string> tags;     // what scored, for X-Spam-Report: "RBL_ZEN_TEST=3"
  bool failed = false;               // the filter could not judge: the filter's on_error applies
  // Only for a message that is relayed: fields prepended (after Received:, in chain order), and
  // fields removed from the message's top-level header block.
  std::vector<HeaderField> add_headers;
  std::vector<HeaderRemoval> remove_headers;
  // Data: the message is relayed with the [spam] headers even below the profile's tag_score (the
  // filter judged it spam to be marked, e.g. rspamd's "add header").
  bool tag = false;

  static Verdict cont() { return {}; }
  static Verdict failure(std::string why) {
    Verdict v;
    v.failed = true;
    v.reason = std::move(why);
    return v;
  }
};

// Set when the check's result is no longer wanted (timeout, client gone). Thread-safe.
struct Cancel {
  std::atomic<bool> flag{false};
  bool cancelled() const { return flag.load(std::memory_order_relaxed); }
};

// What a filter may look at, owned by the check.
struct Context {
  std::string session_id;
  std::string message_id;                       // Data: the transaction's id in the log, "<session_id>.<n>"
  core::IpAddress client_ip;                    // the real client (after a PROXY header)
  std::string helo;                             // the last HELO/EHLO name ("" at Connect)
  bool authenticated = false;                   // the client passed AUTH
  std::string login;                            // the authenticated user ("" when not)
  bool tls = false;
  smtp::Address sender;                        // MailFrom and later
  smtp::Address recipient;                     // RcptTo: the recipient being judged
  std::vector<smtp::Address> recipients;       // Data: every accepted recipient
  std::shared_ptr<const std::string> message;   // Data: as received, LF line endings, dot-unstuffed
  // Data: the message's one MIME parse, made on first use and shared by every check of the chain
  // (set by ChainRun; may be null, e.g. in unit tests: see parsed_message() in parsed_message.h).
  std::shared_ptr<const ParsedMessage> parsed;
  // This transaction's sender-authentication results (spf, dkim -> dmarc); set by ChainRun, may
  // be null outside a chain (unit tests).
  std::shared_ptr<SenderAuth> auth;
  std::shared_ptr<void> state;                  // this filter's per-connection state (Filter::connect)
  std::shared_ptr<const Cancel> cancel;         // never null inside a check
};

class Filter {
 public:
  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  virtual bool wants(Phase p) const = 0;
  // Spam checks (rbl, rules) are skipped for a client a Connect-phase Accept allowlisted;
  // safety checks (relay control, virus scan) are not.
  virtual bool skipped_when_allowlisted() const { return false; }
  // Called once when the connection arrives, on the session's executor, before any check; must
  // not block. What it returns comes back in ctx->state for every check of that connection
  // (e.g. DNS lookups already under way, so their latency overlaps with the SMTP dialogue).
  virtual std::shared_ptr<void> connect(const Context& ctx, boost::asio::any_io_executor ex) { return nullptr; }
  virtual boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) = 0;
  // What this filter reads of Context::parsed at Data (nothing by default). The chain's shared
  // parse keeps the union of its filters' needs, so that one parse serves them all.
  virtual mime::Limits mime_needs() const { return {}; }
};

}  // namespace filters
