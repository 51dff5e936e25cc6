// The verdict-to-reply table's lookup, and compile-time checks that the table is complete, in
// index order, and gives every refusal (and the banner) a reply.
#include "filters/reply_for.h"

namespace filters {
namespace {

constexpr bool table_well_formed() {
  for (size_t i = 0; i < kReplyTable.size(); ++i) {
    const ReplyRule& r = kReplyTable[i];
    if (static_cast<size_t>(r.phase) != i / kActionCount || static_cast<size_t>(r.action) != i % kActionCount) return false;
    bool needs_reply = r.step != Step::Proceed || r.phase == Phase::Connect;  // a refusal; the banner
    if (needs_reply && r.fallback == DefaultReply::None) return false;
  }
  return true;
}
static_assert(table_well_formed(), "kReplyTable: one row per phase x action in index order; every refusal and banner has a default");

core::Reply default_reply(DefaultReply d, const ReplyNames& names) {
  namespace R = core::replies;
  switch (d) {
    case DefaultReply::None: break;
    case DefaultReply::Greeting: return R::greeting(names.hostname);
    case DefaultReply::RelayDenied: return R::relay_denied();
    case DefaultReply::ClientBlocked: return R::client_blocked(names.client_ip.str());
    case DefaultReply::LocalError: return R::local_error();
    case DefaultReply::FilterUnavailable: return R::filter_unavailable();
    case DefaultReply::ShuttingDown: return R::shutting_down();
  }
  return {};
}

}  // namespace

Answer reply_for(Phase p, const Verdict& v, const ReplyNames& names) {
  const ReplyRule& rule = reply_rule(p, v.action);
  Answer a;
  a.step = rule.step;
  if (rule.takes_verdict_reply && v.reply) a.reply = v.reply;
  else if (rule.fallback != DefaultReply::None) a.reply = default_reply(rule.fallback, names);
  return a;
}

}  // namespace filters
