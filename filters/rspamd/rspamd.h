// The rspamd filter, judged at Data: the message is POSTed to rspamd's /checkv2 (Boost.Beast, on
// the session's executor) within the filter's timeout, counted from the start of the check. Servers
// are tried in order (one whose connect failed in the last kDownFor after the others): a server not
// connected within rspamd.connect_timeout, or with rspamd.max_connections exchanges in flight, is
// passed over for the next; when every server was busy the check waits for a slot of the first busy
// one. A connection whose answer allowed keep-alive is kept idle on its I/O thread
// (connections.h) for rspamd.idle_timeout and reused; a request on a reused connection that fails
// before any byte of the answer (the peer closed it meanwhile) is sent again once on a fresh one.
// The JSON answer is mapped by protocol.h. A message larger than rspamd.max_size is not sent
// (Continue, counted). Any other failure (timeout, HTTP status other than 200, bad JSON) is a
// failed verdict: the filter's on_error applies.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "filters/filter.h"
#include "filters/rspamd/settings.h"

namespace filters {

namespace rspamd {
// A server whose connect failed is tried after the others for this long (it is still tried).
inline constexpr std::chrono::seconds kDownFor{10};
// The order the servers are tried in: those whose connect failed (`failed_at`) within kDownFor
// before `now` go after the others, each group in its configured order.
std::vector<std::string> try_order(
    const std::vector<std::string>& servers,
    const std::function<std::optional<std::chrono::steady_clock::time_point>(const std::string&)>& failed_at,
    std::chrono::steady_clock::time_point now);
// The /health check of one server: GET /ping within `timeout` on a private io_context run by the
// calling thread (blocking, bounded; never on an I/O thread). "" when it answered "pong".
std::string ping(const std::string& server, std::chrono::milliseconds timeout);
}  // namespace rspamd

class Rspamd final : public Filter {
 public:
  Rspamd(rspamd::Settings s, std::string hostname, std::chrono::milliseconds timeout);
  std::string_view name() const override { return "rspamd"; }
  bool wants(Phase p) const override { return p == Phase::Data; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

 private:
  rspamd::Settings s_;
  std::string hostname_;
  std::chrono::milliseconds timeout_;  // the whole check: waits, connects and exchanges
};

}  // namespace filters
