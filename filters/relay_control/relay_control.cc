// Relay decision: routing syntax -> deny; local domain -> accept (directory lookup if configured);
// other domains -> accept only when authenticated.
#include "filters/relay_control/relay_control.h"

#include <algorithm>

namespace filters {

RelayControl::RelayControl(std::vector<std::string> d, std::shared_ptr<ldap::Directory> dir, std::string postmaster)
    : domains_(std::move(d)), directory_(std::move(dir)), postmaster_(std::move(postmaster)) {
  if (postmaster_.empty() && !domains_.empty()) postmaster_ = "postmaster@" + domains_.front();
}

bool RelayControl::is_local_domain(const smtp::Address& rcpt) const {
  std::string d = smtp::lowercase(rcpt.domain);
  return std::find(domains_.begin(), domains_.end(), d) != domains_.end();
}

Verdict RelayControl::decide(const smtp::Address& rcpt, bool authenticated) const {
  if (smtp::has_routing_syntax(rcpt)) return {Action::Reject, core::replies::relay_denied(), "routing syntax in local part"};
  if (smtp::is_postmaster(rcpt, domains_)) return {Action::Accept, std::nullopt, "postmaster: " + postmaster_};
  if (is_local_domain(rcpt)) return {Action::Accept, std::nullopt, "local domain"};
  if (authenticated) return {Action::Accept, std::nullopt, "authenticated relay"};
  return {Action::Reject, core::replies::relay_denied(), "not a local domain"};
}

Verdict RelayControl::from_lookup(const ldap::RecipientResult& r) {
  switch (r.status) {
    case ldap::Lookup::Found: return {Action::Accept, std::nullopt, "directory: found"};
    case ldap::Lookup::NotFound: return {Action::Reject, core::replies::recipient_unknown(), "directory: unknown"};
    case ldap::Lookup::Disabled: return {Action::Reject, core::replies::recipient_disabled(), "directory: disabled"};
    case ldap::Lookup::Unavailable: break;
  }
  return {Action::TempFail, core::replies::directory_unavailable(), "directory unavailable: " + r.detail};
}

boost::asio::awaitable<Verdict> RelayControl::check(Phase, std::shared_ptr<const Context> ctx) {
  const smtp::Address& rcpt = ctx->recipient;
  // The postmaster forms are relayed to relay.postmaster: ask about that address (when local).
  if (directory_ && smtp::is_postmaster(rcpt, domains_) &&
      std::find(domains_.begin(), domains_.end(), smtp::lowercase(core::domain_of(postmaster_))) != domains_.end()) {
    Verdict v = from_lookup(co_await directory_->find_recipient(postmaster_));
    v.reason = "postmaster " + postmaster_ + ": " + v.reason;
    co_return v;
  }
  if (directory_ && !smtp::has_routing_syntax(rcpt) && !rcpt.domain.empty() && is_local_domain(rcpt))
    co_return from_lookup(co_await directory_->find_recipient(rcpt.str()));
  co_return decide(rcpt, ctx->authenticated);
}

}  // namespace filters
