// The ratelimit filter: which limits count at a phase, their keys, and the verdict of the hits.
#include "filters/ratelimit/ratelimit.h"

#include <cctype>
#include <cmath>
#include <fmt/format.h>

#include "core/cidr.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/text.h"

namespace filters {
namespace asio = boost::asio;

namespace ratelimit {

Millis system_now() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch());
}

bool counts_at(const Limit& l, Phase p) {
  switch (l.what) {
    case What::Connections: return p == Phase::Connect;
    case What::Messages: return p == Phase::MailFrom;
    case What::Recipients: return p == Phase::RcptTo;
  }
  return false;
}

std::optional<std::string> key_value(const Settings& s, const Limit& l, const Context& ctx) {
  bool client_key = l.key == Key::Client || l.key == Key::ClientNet;
  if (client_key && l.skip_authenticated && ctx.authenticated) return std::nullopt;
  switch (l.key) {
    case Key::Client: return ctx.client_ip.str();
    case Key::ClientNet: return core::network_of(ctx.client_ip, s.ipv4_prefix, s.ipv6_prefix).str();
    case Key::Sender: return ctx.sender.null() ? std::string("<>") : core::lowercase(ctx.sender.str());
    case Key::SenderDomain:
      return ctx.sender.domain.empty() ? std::string("<>") : core::lowercase(ctx.sender.domain);
    case Key::User:
      if (!ctx.authenticated || ctx.login.empty()) return std::nullopt;
      return core::lowercase(ctx.login);
  }
  return std::nullopt;
}

std::string tag_name(std::string_view limit_name) {
  std::string t = "RATELIMIT_";
  for (char c : limit_name) t += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_';
  return t;
}

std::string_view on_hit_name(OnHit a) {
  switch (a) {
    case OnHit::TempFail: return "tempfail";
    case OnHit::Disconnect: return "disconnect";
    case OnHit::Score: return "score";
  }
  return "?";
}

std::string_view what_name(What w) {
  switch (w) {
    case What::Connections: return "connections";
    case What::Messages: return "messages";
    case What::Recipients: return "recipients";
  }
  return "?";
}

std::string_view key_name(Key k) {
  switch (k) {
    case Key::Client: return "client";
    case Key::ClientNet: return "client_net";
    case Key::Sender: return "sender";
    case Key::SenderDomain: return "sender_domain";
    case Key::User: return "user";
  }
  return "?";
}

namespace {

std::string reply_text(const Limit& l) {
  return fmt::format("Rate limit \"{}\" exceeded: more than {} {} per {:g} seconds by {}, try again later", l.name,
                     l.limit, what_name(l.what), l.window.count(), key_name(l.key));
}

// Adds one hit to the verdict: the strongest action wins (disconnect > tempfail > score).
void apply_hit(Verdict& v, const Limit& l) {
  if (l.action == OnHit::Score) {
    v.score += l.score;
    v.tags.push_back(fmt::format("{}={:g}", tag_name(l.name), l.score));
    return;
  }
  if (v.action == Action::Disconnect) return;
  if (l.action == OnHit::Disconnect) {
    v.action = Action::Disconnect;
    v.reply = core::Reply{421, "4.7.0", reply_text(l) + "; closing connection"};
  } else if (v.action != Action::TempFail) {
    v.action = Action::TempFail;
    v.reply = core::Reply{451, "4.7.1", reply_text(l)};
  }
  v.reason = fmt::format("rate limit {} exceeded", l.name);
}

void count_check() {
  core::count(core::labeled_counter("ratelimit_checks_total", core::LabelSet{}));
}

void count_hit(const Limit& l) {
  core::count(core::labeled_counter("ratelimit_hits_total",
                                    core::labels({{"limit", l.name}, {"action", std::string(on_hit_name(l.action))}})));
}

}  // namespace
}  // namespace ratelimit

using namespace ratelimit;

RateLimit::RateLimit(Settings cfg, std::shared_ptr<Counters> counters, Clock clock)
    : s_(std::make_shared<const Shared>(Shared{std::move(cfg), std::move(counters), std::move(clock)})) {}

bool RateLimit::wants(Phase p) const {
  for (const auto& l : s_->cfg.limits)
    if (counts_at(l, p)) return true;
  return false;
}

asio::awaitable<Verdict> RateLimit::check(Phase p, std::shared_ptr<const Context> ctx) {
  auto s = s_;  // the settings stay with this check even if the filter goes (reload)
  std::vector<const Limit*> limits;
  std::vector<Count> counts;
  std::vector<std::string> values;
  for (const auto& l : s->cfg.limits) {
    if (!counts_at(l, p)) continue;
    auto value = key_value(s->cfg, l, *ctx);
    if (!value) continue;
    limits.push_back(&l);
    counts.push_back({l.name + ":" + *value, std::chrono::duration_cast<Millis>(l.window)});
    values.push_back(std::move(*value));
  }
  if (counts.empty()) co_return Verdict::cont();
  count_check();
  std::vector<double> est = co_await s->counters->hit(std::move(counts), s->clock());
  Verdict v;
  for (size_t i = 0; i < limits.size() && i < est.size(); ++i) {
    const Limit& l = *limits[i];
    if (est[i] <= static_cast<double>(l.limit)) continue;
    count_hit(l);
    core::log().info("ratelimit id={} client={} limit={} key={} count={} limit={} window={:g} action={}", ctx->session_id,
                     ctx->client_ip, l.name, core::quoted_for_log(values[i]), static_cast<uint64_t>(std::ceil(est[i])),
                     l.limit, l.window.count(), on_hit_name(l.action));
    apply_hit(v, l);
  }
  co_return v;
}

}  // namespace filters
