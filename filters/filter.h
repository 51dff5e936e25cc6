// The filter API: hooks named after SMTP phases, a small closed set of verdicts, async checks.
// A filter must never block its thread: I/O is awaited, CPU-heavy work goes to a worker pool.
// Chain semantics (chain.h): filters run in order; the first verdict that is not Continue ends
// the phase. At RcptTo a recipient is accepted only on an explicit Accept.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/reply.h"
#include "smtpd/address.h"

namespace filters {

enum class Phase { Connect, Helo, MailFrom, RcptTo, DataPost };
enum class Action { Continue, Accept, Reject, TempFail, Disconnect };

struct Verdict {
  Action action = Action::Continue;
  std::optional<core::Reply> reply;  // the reply to send; a default is used when empty
  std::string reason;                // for the log
};

// What a filter may look at. Pointers are valid for the duration of the check only.
struct Context {
  std::string_view session_id;
  std::string_view client_ip;
  std::string_view helo;
  const smtpd::Address* sender = nullptr;     // MailFrom and later
  const smtpd::Address* recipient = nullptr;  // RcptTo: the recipient being checked
  const std::string* message = nullptr;       // DataPost: LF line endings, dot-unstuffed
  bool authenticated = false;                 // the client passed AUTH
};

class Filter {
 public:
  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  virtual bool wants(Phase p) const = 0;
  virtual boost::asio::awaitable<Verdict> check(Phase p, const Context& ctx) = 0;
};

}  // namespace filters
