// DNS list lookups: started at connect (client zones) or at MailFrom (sender domain zones), run
// as coroutines on the session's executor, cached, and judged zone by zone in config order.
#include "filters/rbl/rbl.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>

#include <fmt/format.h>

#include "core/domain.h"
#include "core/ip.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"

namespace filters {
using rbl::ZoneKind;
using rbl::ZoneAction;
namespace asio = boost::asio;
namespace R = core::replies;
using rbl::ZoneResult;

// ------------------------------------------------------------------------------------------------
// pure parts
namespace rbl {

std::string reverse_name(const core::IpAddress& ip) {
  const auto& a = ip.bytes();  // ::ffff:a.b.c.d was folded to IPv4 when the address was parsed
  if (!ip.is_v6()) return fmt::format("{}.{}.{}.{}", a[3], a[2], a[1], a[0]);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 15; i >= 0; --i) {
    out += hex[a[i] & 0x0F];
    out += '.';
    out += hex[a[i] >> 4];
    if (i) out += '.';
  }
  return out;
}

bool code_honoured(const Codes& codes, uint32_t a) {
  if (codes.empty()) return (a >> 24) == 127 && (a >> 8) != 0x7FFFFF;
  return std::any_of(codes.begin(), codes.end(), [a](const auto& r) { return a >= r.first && a <= r.second; });
}

std::string ipv4_text(uint32_t a) { return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255); }

std::string tag_name(const rbl::Zone& z) {
  std::string t = z.kind == ZoneKind::Domain ? "RHSBL_" : "RBL_";
  for (char c : z.zone) t += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_';
  return t;
}

bool valid_domain(std::string_view d) { return core::valid_domain(d, core::DomainRules::Dns); }

ZoneResult judge(const rbl::Zone& z, const net::DnsAnswer& a) {
  ZoneResult r;
  switch (a.status) {
    case net::DnsStatus::NxDomain:
    case net::DnsStatus::NoData: return r;
    case net::DnsStatus::Timeout:
    case net::DnsStatus::Failure:
      r.status = ZoneResult::Status::Failed;
      r.detail = fmt::format("{}{}{}", net::dns_status_name(a.status), a.error.empty() ? "" : ": ", a.error);
      return r;
    case net::DnsStatus::Ok: break;
  }
  for (uint32_t code : a.a)
    if (code_honoured(z.codes, code)) {
      r.status = ZoneResult::Status::Listed;
      r.code = code;
      return r;
    }
  for (uint32_t code : a.a) r.detail += (r.detail.empty() ? "" : ",") + ipv4_text(code);
  r.detail += " not honoured";
  return r;
}

std::string test_point(const rbl::Zone& z) { return (z.kind == ZoneKind::Domain ? "test." : "2.0.0.127.") + z.zone; }

std::string judge_test_point(const rbl::Zone& z, const net::DnsAnswer& a) {
  const char* point = z.kind == ZoneKind::Domain ? "test" : "127.0.0.2";
  switch (a.status) {
    case net::DnsStatus::NxDomain:
    case net::DnsStatus::NoData:
      return fmt::format("test point {} not listed (list empty or not serving)", point);
    case net::DnsStatus::Timeout:
    case net::DnsStatus::Failure:
      return fmt::format("{} A: {}{}{}", test_point(z), net::dns_status_name(a.status), a.error.empty() ? "" : ": ", a.error);
    case net::DnsStatus::Ok: break;
  }
  std::string seen;
  bool refused = false;
  for (uint32_t code : a.a) {
    if (code_honoured({}, code)) return "";
    refused = refused || (code >> 8) == 0x7FFFFF;
    seen += (seen.empty() ? "" : ",") + ipv4_text(code);
  }
  if (refused) return fmt::format("test point {} answered {}: the list refuses our queries (error code)", point, seen);
  return fmt::format("test point {} answered {}: not a list answer (wrong zone or servers?)", point, seen);
}

std::string zone_check(const rbl::Zone& z, const rbl::Settings& cfg) {
  using std::chrono::milliseconds;
  net::DnsOptions o;
  o.servers = z.servers.empty() ? cfg.servers : z.servers;
  o.timeout = std::clamp(std::chrono::duration_cast<milliseconds>(cfg.query_timeout), milliseconds(1), milliseconds(2000));
  o.tries = std::clamp(cfg.tries, 1u, 2u);
  // c-ares doubles the wait on each later round (one server); a margin for the answer's delivery.
  const milliseconds per_query = o.timeout * ((1u << o.tries) - 1) + milliseconds(250);

  std::vector<std::string> names{test_point(z)};
  if (z.kind != ZoneKind::Domain) names.push_back("2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0." + z.zone);
  // Declared before the io_context: its destruction drops a query still pending (frames and all).
  std::vector<net::DnsAnswer> answers;
  bool failed = false;
  auto run = [&]() -> asio::awaitable<void> {
    auto resolver = net::Resolver::get(co_await asio::this_coro::executor, o);
    for (const auto& n : names) {
      net::DnsAnswer a = co_await resolver->query(n, net::DnsType::A);
      bool absent = a.status == net::DnsStatus::NxDomain || a.status == net::DnsStatus::NoData;
      answers.push_back(std::move(a));
      if (!absent) break;  // listed, or an error worth reporting as it is
    }
  };
  asio::io_context io(1);
  auto work = run();
  asio::co_spawn(io, std::move(work), [&failed](std::exception_ptr e) { failed = e != nullptr; });
  const milliseconds budget = per_query * names.size();
  io.run_for(budget);
  if (failed) return test_point(z) + " A: internal error";
  if (answers.empty()) {
    std::string via;
    for (const auto& s : o.servers) via += (via.empty() ? "" : ",") + s;
    return fmt::format("{} A: no answer within {} ms from {}", test_point(z), budget.count(),
                       via.empty() ? "the resolv.conf servers" : via);
  }
  // The IPv6 test point only counts when it is listed; otherwise the IPv4 one's answer is the verdict.
  if (answers.size() > 1 && judge_test_point(z, answers[1]).empty()) return "";
  return judge_test_point(z, answers[0]);
}

}  // namespace rbl

// ------------------------------------------------------------------------------------------------
// lookups
struct Rbl::Shared {
  rbl::Settings cfg;
  std::vector<net::DnsOptions> dns;  // per zone
  std::shared_ptr<net::DnsCache> cache;
};

struct Rbl::Pending {
  Pending(size_t z, std::string q, std::string s)
      : zone(z), qname(std::move(q)), subject(std::move(s)) {}
  size_t zone;
  std::string qname;    // "2.0.0.127.bl.example"
  std::string subject;  // the client address or the sender domain
  std::optional<ZoneResult> result;
  bool reported = false;  // a failure is counted and logged once
  std::vector<std::weak_ptr<asio::steady_timer>> waiters;  // cancelled when the result arrives
  void done(ZoneResult r) {
    result = std::move(r);
    for (auto& w : waiters)
      if (auto t = w.lock()) t->cancel();
    waiters.clear();
  }
};

struct Rbl::State {
  core::IpAddress ip;
  bool static_allow = false;
  std::vector<std::shared_ptr<Pending>> client;  // ip and allow zones, in config order
};

namespace {

using Shared = Rbl::Shared;
using Pending = Rbl::Pending;

asio::awaitable<net::DnsAnswer> cached_query(const Shared& s, size_t zone, const std::string& qname, net::DnsType t) {
  std::string key = (t == net::DnsType::A ? "A " : "TXT ") + qname;
  if (auto hit = s.cache->get(key, net::DnsCache::Clock::now())) co_return *hit;
  auto ex = co_await asio::this_coro::executor;
  std::shared_ptr<net::Resolver> resolver = net::Resolver::get(ex, s.dns[zone]);
  net::DnsAnswer a = co_await resolver->query(qname, t);
  if (a.status != net::DnsStatus::Timeout && a.status != net::DnsStatus::Failure) {
    auto max_ttl = std::chrono::duration_cast<std::chrono::seconds>(s.cfg.max_ttl);
    s.cache->put(key, a, net::DnsCache::Clock::now(), max_ttl, s.cfg.cache_size);
  }
  co_return a;
}

asio::awaitable<ZoneResult> lookup(std::shared_ptr<const Shared> s, std::shared_ptr<Pending> p) {
  const rbl::Zone& z = s->cfg.zones[p->zone];
  net::DnsAnswer a = co_await cached_query(*s, p->zone, p->qname, net::DnsType::A);
  ZoneResult r = rbl::judge(z, a);
  if (r.status == ZoneResult::Status::Listed && z.action == ZoneAction::Reject) {
    net::DnsAnswer t = co_await cached_query(*s, p->zone, p->qname, net::DnsType::TXT);
    if (t.status == net::DnsStatus::Ok && !t.txt.empty()) r.txt = t.txt.front();
  }
  co_return r;
}

std::shared_ptr<Pending> start(const std::shared_ptr<const Shared>& s, const asio::any_io_executor& ex, size_t zone,
                               std::string qname, std::string subject) {
  auto p = std::make_shared<Pending>(zone, std::move(qname), std::move(subject));
  asio::co_spawn(ex, lookup(s, p), [p](std::exception_ptr e, ZoneResult r) {
    if (e) {
      r = ZoneResult{};
      r.status = ZoneResult::Status::Failed;
      r.detail = "internal error";
    }
    p->done(std::move(r));
  });
  return p;
}

// Waits for a lookup's result; false when the check was cancelled first.
asio::awaitable<bool> wait(Pending& p, const Cancel& cancel) {
  if (p.result) co_return true;
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  p.waiters.push_back(timer);
  while (!p.result && !cancel.cancelled()) {
    timer->expires_after(std::chrono::milliseconds(100));  // the chain's cancel is a flag: look now and then
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return p.result.has_value();
}

void report_failure(const std::string& sid, const core::IpAddress& client, const rbl::Zone& z, Pending& p) {
  if (p.reported) return;
  p.reported = true;
  core::count(core::Counter::RblZoneFailures);
  core::log().warn("rbl id={} client={} zone={} query={} skipped (fail open): {}", sid, client, z.zone,
                   core::safe_text(p.qname), core::safe_text(p.result->detail));
}

}  // namespace

Rbl::Rbl(rbl::Settings cfg, std::shared_ptr<net::DnsCache> cache) {
  auto s = std::make_shared<Shared>();
  s->cache = cache ? std::move(cache) : std::make_shared<net::DnsCache>();
  for (const auto& z : cfg.zones) {
    net::DnsOptions o;
    o.servers = z.servers.empty() ? cfg.servers : z.servers;
    o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.query_timeout);
    o.tries = cfg.tries;
    s->dns.push_back(std::move(o));
  }
  s->cfg = std::move(cfg);
  s_ = std::move(s);
}

std::shared_ptr<Rbl::State> Rbl::start_client(const Context& ctx, const asio::any_io_executor& ex) const {
  auto st = std::make_shared<State>();
  st->ip = ctx.client_ip;
  for (const auto& c : s_->cfg.allow)
    if (c.contains(ctx.client_ip)) {
      st->static_allow = true;
      return st;
    }
  std::string rev = rbl::reverse_name(ctx.client_ip);
  const auto& zones = s_->cfg.zones;
  for (size_t i = 0; i < zones.size(); ++i)
    if (zones[i].kind != ZoneKind::Domain) st->client.push_back(start(s_, ex, i, rev + "." + zones[i].zone, ctx.client_ip.str()));
  return st;
}

std::shared_ptr<void> Rbl::connect(const Context& ctx, asio::any_io_executor ex) { return start_client(ctx, ex); }

asio::awaitable<Verdict> Rbl::check(Phase, std::shared_ptr<const Context> ctx) {
  auto s = s_;  // the config stays with this check even if the filter goes (reload)
  auto ex = co_await asio::this_coro::executor;
  auto st = std::static_pointer_cast<State>(ctx->state);
  if (!st) st = start_client(*ctx, ex);
  if (st->static_allow) {
    core::log().info("rbl id={} client={} allowlisted by rbl.allow: blocklists skipped", ctx->session_id, st->ip);
    co_return Verdict::cont();
  }
  // The sender domain's lookups start now and run while the client's are awaited.
  std::vector<std::shared_ptr<Pending>> lookups = st->client;
  std::string domain = core::lowercase(ctx->sender.domain);
  if (rbl::valid_domain(domain))
    for (size_t i = 0; i < s->cfg.zones.size(); ++i)
      if (s->cfg.zones[i].kind == ZoneKind::Domain) lookups.push_back(start(s, ex, i, domain + "." + s->cfg.zones[i].zone, domain));

  for (auto& p : lookups)
    if (!co_await wait(*p, *ctx->cancel)) co_return Verdict::failure("cancelled");

  for (auto& p : lookups) {  // an allow zone listing the client wins over every blocklist
    const rbl::Zone& z = s->cfg.zones[p->zone];
    if (z.kind == ZoneKind::Allow && p->result->status == ZoneResult::Status::Listed) {
      core::log().info("rbl id={} client={} allowlisted by {} ({}): blocklists skipped", ctx->session_id, st->ip, z.zone,
                       rbl::ipv4_text(p->result->code));
      co_return Verdict::cont();
    }
  }
  Verdict v;
  for (auto& p : lookups) {
    const rbl::Zone& z = s->cfg.zones[p->zone];
    const ZoneResult& r = *p->result;
    if (r.status == ZoneResult::Status::Failed) report_failure(ctx->session_id, st->ip, z, *p);
    if (r.status != ZoneResult::Status::Listed || z.kind == ZoneKind::Allow) continue;
    std::string what = fmt::format("{} listed in {} ({})", p->subject, z.zone, rbl::ipv4_text(r.code));
    if (z.action == ZoneAction::Reject) {
      core::Reply reply = z.kind == ZoneKind::Domain ? R::rhsbl_listed(p->subject, z.zone, r.txt) : R::rbl_listed(p->subject, z.zone, r.txt);
      co_return Verdict{Action::Reject, std::move(reply), r.txt.empty() ? what : what + ": " + r.txt};
    }
    v.score += z.weight;
    v.tags.push_back(fmt::format("{}={:g}", rbl::tag_name(z), z.weight));
    v.reason += (v.reason.empty() ? "" : "; ") + what;
  }
  co_return v;
}

}  // namespace filters
