// rspamd's HTTP protocol (/checkv2) as pure functions, without I/O: the request headers built from
// a filter Context, and the JSON answer turned into a Verdict. The limits on what an answer may
// bring in (symbols kept as tags, header edits) are defined here, once.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filters/filter.h"
#include "filters/rspamd/settings.h"

namespace filters::rspamd {

inline constexpr size_t kMaxTags = 30;            // symbols kept as tags (highest |score| first)
inline constexpr size_t kMaxHeaderEdits = 50;     // milter.add_headers + remove_headers entries honoured
inline constexpr size_t kMaxHeaderValue = 8192;   // longer values from rspamd are cut
inline constexpr size_t kMaxReplyBody = 1 << 20;  // rspamd's JSON answer
inline constexpr int kMaxOccurrence = 1000;       // a remove_headers index beyond +-this is not understood

using Headers = std::vector<std::pair<std::string, std::string>>;

// The /checkv2 request headers (without Host, Content-Length): IP, Helo, From ("<>" for the null
// sender), one Rcpt per recipient, User when authenticated, MTA-Name (our hostname; never Hostname,
// which is the client's name to rspamd), Queue-Id (the message's id
// "<session>.<n>" as in mxfront's log; the session id when there is none), Settings-ID and
// Password when configured. Text from the client is made single-line printable (core::safe_text).
Headers request_headers(const Context& ctx, const Settings& s, std::string_view hostname);

// What rspamd said, for the log and the metrics.
struct Answer {
  std::string action;   // "reject", "no action", ...; empty when the answer was unusable
  double score = 0;
  Verdict verdict;
};

// rspamd's JSON answer -> Verdict. reject: 554 5.7.1 (+ messages.smtp_message); soft reject and
// greylist: 451 4.7.1; add header, rewrite subject, no action: Continue, the first two with
// Verdict::tag (relayed with the [spam] headers whatever the chain's score). Score (ScoreMode::Add
// only: with Alone rspamd's action alone decides, its score never reaches the chain's reject_score)
// and symbols as tags ("SYMBOL=1.5", at most kMaxTags); milter.add_headers (string, {value, order}
// or a list of those) and milter.remove_headers ({name: occurrence}: 0 all, N the N-th, -N the
// N-th from the end) go to the verdict, as do the DKIM-Signature rspamd made (dkim_signing: its
// "dkim-signature", a string or a list) and, for "rewrite subject", the new Subject (every old one
// removed). Bad JSON, no action or an unknown action: a failed verdict (the filter's on_error applies).
Answer parse_answer(std::string_view body, ScoreMode mode);

}  // namespace filters::rspamd
