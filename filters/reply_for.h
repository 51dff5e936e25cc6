// reply_for(): what the session answers to the chain's verdict at a phase. One table, one row per
// phase x action: what the session does (proceed, refuse the command, close) and the reply — the
// verdict's own where the row takes it, else the row's default. Pure: no I/O, no clock, no state.
#pragma once
#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

#include "core/ip.h"
#include "core/reply.h"
#include "filters/filter.h"

namespace filters {

// What the session does with a verdict.
enum class Step {
  Proceed,     // Connect: the 220 greeting; Helo/MailFrom/RcptTo: accept the command; Data: relay
  Refuse,      // reject the command; the connection stays open
  Disconnect,  // send the reply, then close (at Connect every refusal closes: a refused banner)
};

// The reply of a row when the verdict brings none (or the row does not take the verdict's own).
enum class DefaultReply {
  None,               // ours to leave out: the engine's default reply, or at Data the relay's answer
  Greeting,           // 220 <hostname> ESMTP mxfront
  RelayDenied,        // 554 5.7.1 Relay access denied
  ClientBlocked,      // 554 5.7.1 Client host [<ip>] blocked by local policy
  LocalError,         // 451 4.3.0 Local error in processing
  FilterUnavailable,  // 451 4.3.0 Temporary problem checking the message (a filter's on_error tempfail)
  ShuttingDown,       // 421 4.3.2
};

struct ReplyRule {
  Phase phase;
  Action action;
  Step step;
  bool takes_verdict_reply;  // the verdict's reply, when set, is sent instead of `fallback`
  DefaultReply fallback;
};

inline constexpr size_t kPhaseCount = static_cast<size_t>(Phase::Data) + 1;
inline constexpr size_t kActionCount = static_cast<size_t>(Action::Disconnect) + 1;

// Row (phase, action) is at index phase * kActionCount + action. Score rejects and on_error
// tempfails come from the chain with their reply set (554 5.7.1 naming what scored; 451 4.3.0).
// Where the defaults differ by phase, they are what the session has always sent: a Reject at Connect
// names the client, a TempFail during the envelope is a "local error", and at RcptTo only an
// explicit Accept lets a recipient in.
inline constexpr std::array<ReplyRule, kPhaseCount * kActionCount> kReplyTable = {{
    // phase           action              step              verdict's  default
    {Phase::Connect, Action::Continue, Step::Proceed, false, DefaultReply::Greeting},
    {Phase::Connect, Action::Accept, Step::Proceed, false, DefaultReply::Greeting},
    {Phase::Connect, Action::Reject, Step::Disconnect, true, DefaultReply::ClientBlocked},
    {Phase::Connect, Action::TempFail, Step::Disconnect, true, DefaultReply::FilterUnavailable},
    {Phase::Connect, Action::Disconnect, Step::Disconnect, true, DefaultReply::ShuttingDown},

    {Phase::Helo, Action::Continue, Step::Proceed, false, DefaultReply::None},
    {Phase::Helo, Action::Accept, Step::Proceed, true, DefaultReply::None},
    {Phase::Helo, Action::Reject, Step::Refuse, true, DefaultReply::RelayDenied},
    {Phase::Helo, Action::TempFail, Step::Refuse, true, DefaultReply::LocalError},
    {Phase::Helo, Action::Disconnect, Step::Disconnect, true, DefaultReply::ShuttingDown},

    {Phase::MailFrom, Action::Continue, Step::Proceed, false, DefaultReply::None},
    {Phase::MailFrom, Action::Accept, Step::Proceed, true, DefaultReply::None},
    {Phase::MailFrom, Action::Reject, Step::Refuse, true, DefaultReply::RelayDenied},
    {Phase::MailFrom, Action::TempFail, Step::Refuse, true, DefaultReply::LocalError},
    {Phase::MailFrom, Action::Disconnect, Step::Disconnect, true, DefaultReply::ShuttingDown},

    {Phase::RcptTo, Action::Continue, Step::Refuse, false, DefaultReply::RelayDenied},
    {Phase::RcptTo, Action::Accept, Step::Proceed, true, DefaultReply::None},
    {Phase::RcptTo, Action::Reject, Step::Refuse, true, DefaultReply::RelayDenied},
    {Phase::RcptTo, Action::TempFail, Step::Refuse, true, DefaultReply::LocalError},
    {Phase::RcptTo, Action::Disconnect, Step::Disconnect, true, DefaultReply::ShuttingDown},

    {Phase::Data, Action::Continue, Step::Proceed, false, DefaultReply::None},
    {Phase::Data, Action::Accept, Step::Proceed, false, DefaultReply::None},
    {Phase::Data, Action::Reject, Step::Refuse, true, DefaultReply::RelayDenied},
    {Phase::Data, Action::TempFail, Step::Refuse, true, DefaultReply::FilterUnavailable},
    {Phase::Data, Action::Disconnect, Step::Disconnect, true, DefaultReply::ShuttingDown},
}};

constexpr const ReplyRule& reply_rule(Phase p, Action a) {
  return kReplyTable[static_cast<size_t>(p) * kActionCount + static_cast<size_t>(a)];
}

// What the defaults name.
struct ReplyNames {
  std::string_view hostname;   // the greeting's
  core::IpAddress client_ip;   // a blocked client's
};

struct Answer {
  Step step = Step::Proceed;
  // Always set for Refuse and Disconnect. Empty with Proceed where the row has no default: the
  // engine's own reply for the command, or at Data the relay's answer.
  std::optional<core::Reply> reply;
};

Answer reply_for(Phase p, const Verdict& v, const ReplyNames& names);

}  // namespace filters
