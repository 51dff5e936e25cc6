// The spf filter: RFC 7208 check_host() (spf.h) for the MAIL FROM identity, or the HELO identity
// (postmaster@<helo>) for the null sender. The evaluation STARTS at MailFrom, in the background on
// the session's executor (MAIL is answered at once, the dialogue goes on while the DNS answers
// come in), and is JUDGED at RcptTo: the first recipient waits for it. Non-blocking DNS
// (net::Resolver on spf.dns_servers; answers cached by TTL in the filter's own net::DnsCache); the
// evaluation is bounded by the filter's timeout counted from MAIL, and stops querying when the
// transaction or the connection ends. Authenticated clients are not checked.
// The result is always recorded: an Authentication-Results field (RFC 8601) with our authserv-id
// for the relayed message, a tag SPF_<RESULT>=<score> (score policy), a counter
// spf_results_total{result=...} and a log line. The policy per result (settings.h) may refuse
// every recipient (550 5.7.23 fail/softfail, 550 5.7.24 permerror) or tempfail them (451 4.7.23 /
// 4.7.24); the score, tag and header go with the first recipient the filter judges.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "filters/filter.h"
#include "filters/auth_results.h"
#include "filters/spf/settings.h"
#include "filters/spf/spf.h"
#include "net/dns.h"
#include "net/dns_cache.h"

namespace filters {

namespace spf {
// The Authentication-Results value: "<id>; spf=<result> (<comment>) smtp.mailfrom=<identity>"
// (smtp.helo=<helo> for the null sender). The comment is made safe for a header comment.
std::string auth_results(std::string_view authserv_id, const Outcome& o, std::string_view identity, bool helo_identity);
using filters::carries_authserv_id;  // filters/auth_results.h
// The verdict for an outcome under `s` (pure): action/reply, score, tag and header.
Verdict verdict_for(const Settings& s, std::string_view authserv_id, const Outcome& o, std::string_view identity,
                    std::string_view domain, bool helo_identity, const core::IpAddress& ip);
struct Pending;  // one transaction's evaluation (spf_filter.cc)
}  // namespace spf

class SpfFilter final : public Filter {
 public:
  // `timeout` bounds one evaluation, from MAIL (the filter's configured timeout).
  SpfFilter(spf::Settings cfg, std::string authserv_id, std::chrono::milliseconds timeout,
            std::shared_ptr<net::DnsCache> cache = nullptr);
  std::string_view name() const override { return "spf"; }
  bool wants(Phase p) const override { return p == Phase::MailFrom || p == Phase::RcptTo; }
  std::shared_ptr<void> connect(const Context& ctx, boost::asio::any_io_executor ex) override;
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

 private:
  struct Shared {
    spf::Settings cfg;
    std::string authserv_id;
    std::chrono::milliseconds timeout;
    net::DnsOptions dns;
    std::shared_ptr<net::DnsCache> cache;  // may be null: no caching
  };
  std::shared_ptr<const Shared> s_;
  static boost::asio::awaitable<void> evaluate(std::shared_ptr<const Shared> s, std::shared_ptr<const Context> ctx,
                                               std::shared_ptr<spf::Pending> p);
  static boost::asio::awaitable<Verdict> judge(std::shared_ptr<spf::Pending> pending);
};

}  // namespace filters
