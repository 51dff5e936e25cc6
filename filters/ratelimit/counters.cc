// Farm-wide counting in Redis with the local fallback (counters.h).
#include "filters/ratelimit/counters.h"

#include <fmt/format.h>

#include "core/log.h"
#include "core/metrics.h"

namespace filters::ratelimit {
namespace {

// KEYS: pairs (current window, previous window); ARGV[i]: the i-th pair's expiry in ms, set when
// the INCR created the key (the script is atomic: a key never exists without its expiry).
// Returns, per pair, the current count (this event included) and the previous count.
const redis::Script& script() {
  static const redis::Script s(
      "local out = {} "
      "for i = 1, #KEYS, 2 do "
      "local c = redis.call('INCR', KEYS[i]) "
      "if c == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[(i + 1) / 2]) end "
      "out[#out + 1] = c "
      "out[#out + 1] = tonumber(redis.call('GET', KEYS[i + 1]) or '0') "
      "end "
      "return out");
  return s;
}

void count_fallback(const char* reason) {
  core::count(core::labeled_counter("ratelimit_redis_fallback_total", core::labels({{"reason", reason}})));
}

// The estimates from the script's reply, or nullopt when it is not what the script returns.
std::optional<std::vector<double>> parse_reply(const redis::Reply& r, const std::vector<Count>& counts, Millis now) {
  if (r.type != redis::Reply::Type::Array || r.elements.size() != 2 * counts.size()) return std::nullopt;
  std::vector<double> out;
  for (size_t i = 0; i < counts.size(); ++i) {
    const auto& cur = r.elements[2 * i];
    const auto& prev = r.elements[2 * i + 1];
    if (cur.type != redis::Reply::Type::Integer || prev.type != redis::Reply::Type::Integer) return std::nullopt;
    out.push_back(estimate(static_cast<uint64_t>(std::max(0LL, prev.integer)),
                           static_cast<uint64_t>(std::max(0LL, cur.integer)), position(now, counts[i].window).elapsed));
  }
  return out;
}

// The script's KEYS (each limit's current and previous window) and ARGV (their expiry: two windows).
std::pair<std::vector<std::string>, std::vector<std::string>> keys_and_argv(const std::string& prefix,
                                                                              const std::vector<Count>& counts, Millis now) {
  std::vector<std::string> keys, argv;
  for (const auto& c : counts) {
    int64_t index = position(now, c.window).index;
    keys.push_back(fmt::format("{}{}:{}", prefix, c.key, index));
    keys.push_back(fmt::format("{}{}:{}", prefix, c.key, index - 1));
  }
  for (const auto& c : counts) argv.push_back(std::to_string(2 * std::max<int64_t>(c.window.count(), 1)));
  return {std::move(keys), std::move(argv)};
}

}  // namespace

Counters::Counters(std::optional<redis::ClientConfig> redis, std::string prefix, size_t local_capacity)
    : prefix_(std::move(prefix) + "rl:"), local_(local_capacity) {
  if (redis) redis_ = std::make_unique<redis::ThreadClients>(std::move(*redis), "ratelimit");
}

Counters::~Counters() = default;

std::vector<std::string> Counters::script_args(const std::string& prefix, const std::vector<Count>& counts, Millis now,
                                               bool by_sha) {
  auto [keys, argv] = keys_and_argv(prefix, counts, now);
  return script().args(by_sha, keys, argv);
}

std::vector<double> Counters::local_hit(const std::vector<Count>& counts, Millis now) {
  std::vector<double> out;
  for (const auto& c : counts) out.push_back(local_.hit(c.key, now, c.window));
  return out;
}

boost::asio::awaitable<std::vector<double>> Counters::hit(std::vector<Count> counts, Millis now) {
  if (!redis_ || counts.empty()) co_return local_hit(counts, now);
  auto [keys, argv] = keys_and_argv(prefix_, counts, now);
  redis::Reply r = co_await redis_->eval(script(), std::move(keys), std::move(argv));
  if (r.error()) {
    count_fallback(redis::fallback_reason(r.str));
    set_farm(false, r.str);
    co_return local_hit(counts, now);
  }
  auto est = parse_reply(r, counts, now);
  if (!est) {
    count_fallback("error");
    set_farm(false, "unexpected reply to the script");
    co_return local_hit(counts, now);
  }
  set_farm(true, "");
  co_return std::move(*est);
}

void Counters::set_farm(bool farm, const std::string& why) {
  if (!farm_.set(farm)) return;
  const auto& cfg = redis_->config();
  if (farm) core::log().info("ratelimit: counting farm-wide in redis {}:{}", cfg.host, cfg.port);
  else core::log().warn("ratelimit: redis {}:{} failed ({}): counting on this instance only (fail open)", cfg.host,
                        cfg.port, why);
}

std::string Counters::down_reason() const {
  if (!redis_) return "";
  std::string why = redis_->down_reason();
  return why.empty() ? "" : "not connected (" + why + "): counting on this instance only";
}

}  // namespace filters::ratelimit
