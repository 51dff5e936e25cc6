// The rspamd filter, judged at Data: the message is POSTed to rspamd's /checkv2 (Boost.Beast, on
// the session's executor, one fresh connection per message: rspamd 3.4's workers answer
// "Connection: close" even to a keep-alive request, so there is nothing to pool), servers tried in
// order while a connect fails or a server has rspamd.max_connections exchanges in flight; the JSON
// answer is mapped by protocol.h. A message larger than rspamd.max_size is not sent (Continue,
// counted). Any failure (no server, timeout, HTTP
// status other than 200, bad JSON) is a failed verdict: the filter's on_error applies.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "filters/filter.h"
#include "filters/rspamd/settings.h"

namespace filters {

namespace rspamd {
// One HTTP exchange with one server: status 0 and `error` set when it did not complete.
struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::string error;
  bool connected = false;  // false: the next server may be tried
};
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
  std::chrono::milliseconds timeout_;  // the whole exchange with one server
};

}  // namespace filters
