// Relay decision: local domain (case-insensitive, exact) and no routing syntax -> Accept.
#include "filters/relay_control.h"

#include <algorithm>

namespace filters {

RelayControl::RelayControl(std::vector<std::string> d) : domains_(std::move(d)) {}

Verdict RelayControl::decide(const smtpd::Address& rcpt) const {
  if (smtpd::has_routing_syntax(rcpt)) return {Action::Reject, core::replies::relay_denied(), "routing syntax in local part"};
  if (rcpt.domain.empty()) return {Action::Accept, std::nullopt, "postmaster"};  // parser allows only <postmaster>
  std::string d = smtpd::lowercase(rcpt.domain);
  if (std::find(domains_.begin(), domains_.end(), d) != domains_.end()) return {Action::Accept, std::nullopt, "local domain"};
  return {Action::Reject, core::replies::relay_denied(), "not a local domain"};
}

boost::asio::awaitable<Verdict> RelayControl::check(Phase, const Context& ctx) {
  co_return decide(*ctx.recipient);
}

}  // namespace filters
