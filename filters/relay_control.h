// The no-open-relay filter: at RcptTo, accepts recipients in the configured local domains (and
// <postmaster>), refuses everything else with 554 5.7.1 — including local-domain addresses whose
// local part carries routing syntax ('%', '!', quoted '@') that a downstream could act on.
#pragma once
#include <string>
#include <vector>

#include "filters/filter.h"

namespace filters {

class RelayControl final : public Filter {
 public:
  explicit RelayControl(std::vector<std::string> local_domains);  // lower-case
  std::string_view name() const override { return "relay_control"; }
  bool wants(Phase p) const override { return p == Phase::RcptTo; }
  boost::asio::awaitable<Verdict> check(Phase p, const Context& ctx) override;

  Verdict decide(const smtpd::Address& rcpt) const;  // pure, for tests

 private:
  std::vector<std::string> domains_;
};

}  // namespace filters
