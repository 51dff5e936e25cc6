// The greylist filter: at each RCPT, the triplet (client network /ipv4_prefix or /ipv6_prefix,
// envelope sender lower-cased or "<>", recipient lower-cased) is looked up in the Store
// (store.h: Redis shared by the farm, or this instance's table): first sight and retries before
// `delay` get 451 4.7.1 "Greylisted, please try again in N seconds"; a retry after `delay` and
// within `retry_window` passes the triplet for `pass_ttl`. Never greylisted: authenticated
// clients, client_allow networks, sender_allow and recipient_allow domains or addresses, and the
// null sender when null_sender = false. Each decision is logged ("greylist id= client= sender=
// rcpt= result=<result> ...") and counted (greylist_results_total{result}); otherwise the filter
// answers Continue (never Accept: the recipient is still for relay_control to accept).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "filters/filter.h"
#include "filters/greylist/settings.h"
#include "filters/greylist/store.h"

namespace filters {

namespace greylist {
using Clock = std::function<Millis()>;  // ms since the epoch
Millis system_now();
Timing timing(const Settings& s);
// The settings with their allow-lists lower-cased, as the filter matches them.
Settings normalized(Settings s);
// Why this recipient is never greylisted ("authenticated", "client", "sender", "recipient",
// "null_sender"), or nullopt. `s`: normalized().
std::optional<std::string_view> allowlisted(const Settings& s, const Context& ctx);
// "<net>|<sender>|<rcpt>": "192.0.2.0/24|alice@example.net|bob@example.org".
std::string triplet(const Settings& s, const Context& ctx);
std::string_view result_name(Outcome o);  // "greylisted", "passed_after_delay", "known"
}  // namespace greylist

class Greylist final : public Filter {
 public:
  Greylist(greylist::Settings cfg, std::shared_ptr<greylist::Store> store, greylist::Clock clock = greylist::system_now);
  std::string_view name() const override { return "greylist"; }
  bool wants(Phase p) const override { return p == Phase::RcptTo; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

 private:
  struct Shared {
    greylist::Settings cfg;
    std::shared_ptr<greylist::Store> store;
    greylist::Clock clock;
  };
  std::shared_ptr<const Shared> s_;
};

}  // namespace filters
