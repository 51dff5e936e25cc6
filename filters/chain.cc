// Runs a phase through the chain: first non-Continue verdict wins.
#include "filters/chain.h"

namespace filters {

boost::asio::awaitable<Verdict> Chain::run(Phase p, const Context& ctx) const {
  for (const auto& f : filters_) {
    if (!f->wants(p)) continue;
    Verdict v = co_await f->check(p, ctx);
    if (v.action != Action::Continue) {
      if (v.reason.empty()) v.reason = std::string(f->name());
      co_return v;
    }
  }
  co_return Verdict{};
}

}  // namespace filters
