// The greylist filter: allow-lists, the triplet, and the verdict of the store's decision (greylist.h).
#include "filters/greylist/greylist.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/cidr.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"

namespace filters {
namespace asio = boost::asio;

namespace greylist {
namespace {

std::string address_key(const smtp::Address& a) { return a.null() ? std::string("<>") : core::lowercase(a.str()); }

// A lower-cased list of "domain" and "user@domain" entries against an address.
bool listed(const std::vector<std::string>& list, const smtp::Address& a) {
  if (a.null()) return false;
  std::string address = core::lowercase(a.str()), domain = core::lowercase(a.domain);
  return std::any_of(list.begin(), list.end(), [&](const std::string& e) {
    return e.find('@') == std::string::npos ? e == domain : e == address;
  });
}

void count_result(std::string_view result) {
  core::count(core::labeled_counter("greylist_results_total", core::labels({{"result", std::string(result)}})));
}

}  // namespace

Millis system_now() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch());
}

Timing timing(const Settings& s) {
  auto ms = [](config::Seconds d) { return std::chrono::duration_cast<Millis>(d); };
  return {ms(s.delay), ms(s.retry_window), ms(s.pass_ttl)};
}

Settings normalized(Settings s) {
  for (auto& e : s.recipient_allow) e = core::lowercase(e);
  for (auto& e : s.sender_allow) e = core::lowercase(e);
  return s;
}

std::optional<std::string_view> allowlisted(const Settings& s, const Context& ctx) {
  if (ctx.authenticated) return "authenticated";
  for (const auto& net : s.client_allow)
    if (net.contains(ctx.client_ip)) return "client";
  if (ctx.sender.null() && !s.null_sender) return "null_sender";
  if (listed(s.sender_allow, ctx.sender)) return "sender";
  if (listed(s.recipient_allow, ctx.recipient)) return "recipient";
  return std::nullopt;
}

std::string triplet(const Settings& s, const Context& ctx) {
  return fmt::format("{}|{}|{}", core::network_of(ctx.client_ip, s.ipv4_prefix, s.ipv6_prefix).str(),
                     address_key(ctx.sender), address_key(ctx.recipient));
}

std::string_view result_name(Outcome o) {
  switch (o) {
    case Outcome::New:
    case Outcome::Early: return "greylisted";
    case Outcome::PassedAfterDelay: return "passed_after_delay";
    case Outcome::Known: return "known";
  }
  return "?";
}

}  // namespace greylist

using namespace greylist;

Greylist::Greylist(Settings cfg, std::shared_ptr<Store> store, Clock clock)
    : s_(std::make_shared<const Shared>(Shared{normalized(std::move(cfg)), std::move(store), std::move(clock)})) {}

asio::awaitable<Verdict> Greylist::check(Phase p, std::shared_ptr<const Context> ctx) {
  auto s = s_;  // the settings stay with this check even if the filter goes (reload)
  if (p != Phase::RcptTo) co_return Verdict::cont();
  if (auto why = allowlisted(s->cfg, *ctx)) {
    count_result("allowlisted");
    core::log().info("greylist id={} client={} sender={} rcpt={} result=allowlisted why={}", ctx->session_id,
                     ctx->client_ip, core::quoted_for_log(address_key(ctx->sender)),
                     core::quoted_for_log(ctx->recipient.str()), *why);
    co_return Verdict::cont();
  }
  Timing t = timing(s->cfg);
  Store::Checked c = co_await s->store->check(triplet(s->cfg, *ctx), s->clock(), t);
  std::string_view result = result_name(c.decision.outcome);
  count_result(result);
  bool greylisted = !accepted(c.decision.outcome);
  core::log().info("greylist id={} client={} sender={} rcpt={} result={} waited={}s{} store={}", ctx->session_id,
                   ctx->client_ip, core::quoted_for_log(address_key(ctx->sender)),
                   core::quoted_for_log(ctx->recipient.str()), result, c.decision.waited.count() / 1000,
                   greylisted ? fmt::format(" retry_in={}s", retry_in_seconds(c.decision, t)) : std::string(),
                   c.farm ? "redis" : "local");
  if (!greylisted) co_return Verdict::cont();
  Verdict v;
  v.action = Action::TempFail;
  v.reply = core::replies::greylisted(retry_in_seconds(c.decision, t));
  v.reason = "greylisted";
  co_return v;
}

}  // namespace filters
