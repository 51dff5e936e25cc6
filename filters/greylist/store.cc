// Triplets in Redis with the local fallback (store.h).
#include "filters/greylist/store.h"

#include <algorithm>

#include "core/log.h"
#include "core/metrics.h"

namespace filters::greylist {
namespace {

// KEYS[1]: the triplet; ARGV: now, delay, retry_window, pass_ttl (ms).
// Returns {outcome, waited ms}: 0 new, 1 early, 2 passed after the delay, 3 known.
const redis::Script& script() {
  static const redis::Script s(
      "local v = redis.call('GET', KEYS[1]) "
      "if not v then "
      "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]) "
      "return {0, 0} end "
      "if v == 'p' then "
      "redis.call('PEXPIRE', KEYS[1], ARGV[4]) "
      "return {3, 0} end "
      "local waited = tonumber(ARGV[1]) - tonumber(v) "
      "if waited < tonumber(ARGV[2]) then return {1, waited} end "
      "redis.call('SET', KEYS[1], 'p', 'PX', ARGV[4]) "
      "return {2, waited}");
  return s;
}

void count_fallback(const char* reason) {
  core::count(core::labeled_counter("greylist_redis_fallback_total", core::labels({{"reason", reason}})));
}

std::optional<Decision> parse_reply(const redis::Reply& r) {
  if (r.type != redis::Reply::Type::Array || r.elements.size() != 2) return std::nullopt;
  const auto& code = r.elements[0];
  const auto& waited = r.elements[1];
  if (code.type != redis::Reply::Type::Integer || waited.type != redis::Reply::Type::Integer) return std::nullopt;
  if (code.integer < 0 || code.integer > 3) return std::nullopt;
  // a first sight written by an instance whose clock is ahead: counted from now
  return Decision{static_cast<Outcome>(code.integer), Millis(std::max(0LL, waited.integer))};
}

}  // namespace

Store::Store(std::optional<redis::ClientConfig> redis, std::string prefix, size_t local_capacity)
    : prefix_(std::move(prefix) + "gl:"), local_(local_capacity) {
  if (redis) redis_ = std::make_unique<redis::ThreadClients>(std::move(*redis), "greylist");
}

boost::asio::awaitable<Store::Checked> Store::check(std::string triplet, Millis now, Timing t) {
  if (!redis_) co_return Checked{local_.check(triplet, now, t), false};
  std::vector<std::string> keys{prefix_ + triplet};
  std::vector<std::string> argv{std::to_string(now.count()), std::to_string(t.delay.count()),
                                std::to_string(t.retry_window.count()), std::to_string(t.pass_ttl.count())};
  redis::Reply r = co_await redis_->eval(script(), std::move(keys), std::move(argv));
  std::optional<Decision> d = r.error() ? std::nullopt : parse_reply(r);
  if (!d) {
    count_fallback(r.error() ? redis::fallback_reason(r.str) : "error");
    set_farm(false, r.error() ? r.str : "unexpected reply to the script");
    co_return Checked{local_.check(triplet, now, t), false};
  }
  set_farm(true, "");
  local_.mirror(triplet, *d, now, t);
  co_return Checked{*d, true};
}

void Store::set_farm(bool farm, const std::string& why) {
  if (!farm_.set(farm)) return;
  const auto& cfg = redis_->config();
  if (farm) core::log().info("greylist: deciding farm-wide in redis {}:{}", cfg.host, cfg.port);
  else core::log().warn("greylist: redis {}:{} failed ({}): deciding on this instance only (fail open)", cfg.host,
                        cfg.port, why);
}

std::string Store::down_reason() const {
  if (!redis_) return "";
  std::string why = redis_->down_reason();
  return why.empty() ? "" : "not connected (" + why + "): greylisting on this instance only";
}

}  // namespace filters::greylist
