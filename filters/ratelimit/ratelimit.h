// The ratelimit filter: rates per client address, client network, envelope sender, sender domain
// and authenticated user, over sliding windows (window.h), counted farm-wide in Redis or per
// instance (counters.h). Connections are counted at Connect, messages at MAIL, recipients at each
// RCPT; every limit that applies to the phase is counted in one round trip. A limit is hit when
// the estimate, this event included, exceeds it; the hit is logged
// ("ratelimit id= client= limit=<name> key=<value> count=<n> limit=<l> window=<s> action=..."),
// counted (ratelimit_hits_total{limit,action}) and answered: tempfail 451 4.7.1, disconnect 421
// 4.7.0 and close, or score (+score, tag RATELIMIT_<NAME>=<score>). Several hits: disconnect
// wins over tempfail, scores add up. Otherwise the filter answers Continue (never Accept: at RCPT
// the recipient is still for relay_control to accept).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "filters/filter.h"
#include "filters/ratelimit/counters.h"
#include "filters/ratelimit/settings.h"

namespace filters {

namespace ratelimit {
using Clock = std::function<Millis()>;  // ms since the epoch
Millis system_now();
// The value a limit counts by for this context, or nullopt when the limit does not apply to it.
std::optional<std::string> key_value(const Settings& s, const Limit& l, const Context& ctx);
// Whether a limit counts at this phase.
bool counts_at(const Limit& l, Phase p);
std::string tag_name(std::string_view limit_name);  // "RATELIMIT_PER_CLIENT"
std::string_view on_hit_name(OnHit a);
std::string_view what_name(What w);
std::string_view key_name(Key k);
}  // namespace ratelimit

class RateLimit final : public Filter {
 public:
  RateLimit(ratelimit::Settings cfg, std::shared_ptr<ratelimit::Counters> counters,
            ratelimit::Clock clock = ratelimit::system_now);
  std::string_view name() const override { return "ratelimit"; }
  bool wants(Phase p) const override;
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

 private:
  struct Shared {
    ratelimit::Settings cfg;
    std::shared_ptr<ratelimit::Counters> counters;
    ratelimit::Clock clock;
  };
  std::shared_ptr<const Shared> s_;
};

}  // namespace filters
