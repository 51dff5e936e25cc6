// Farm-wide counting in Redis with the local fallback (counters.h).
#include "filters/ratelimit/counters.h"

#include <openssl/sha.h>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <future>

#include "core/log.h"
#include "core/metrics.h"

namespace filters::ratelimit {
namespace {

// KEYS: pairs (current window, previous window); ARGV[i]: the i-th pair's expiry in ms.
// Returns, per pair, the current count (this event included) and the previous count.
constexpr const char* kScript =
    "local out = {} "
    "for i = 1, #KEYS, 2 do "
    "local c = redis.call('INCR', KEYS[i]) "
    "redis.call('PEXPIRE', KEYS[i], ARGV[(i + 1) / 2]) "
    "out[#out + 1] = c "
    "out[#out + 1] = tonumber(redis.call('GET', KEYS[i + 1]) or '0') "
    "end "
    "return out";

const std::string& script_sha() {
  static const std::string sha = [] {
    unsigned char d[SHA_DIGEST_LENGTH];
    std::string_view s(kScript);
    SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
    std::string hex;
    for (unsigned char c : d) hex += fmt::format("{:02x}", c);
    return hex;
  }();
  return sha;
}

const char* reason_of(const std::string& error) {
  if (error.find("timeout") != std::string::npos) return "timeout";
  if (error.find("not connected") != std::string::npos || error.find("connection lost") != std::string::npos) return "down";
  if (error.find("in flight") != std::string::npos) return "inflight";
  return "error";
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

}  // namespace

Counters::Counters(std::optional<redis::ClientConfig> redis, std::string prefix, size_t local_capacity)
    : prefix_(std::move(prefix) + "rl:"), cfg_(std::move(redis)), local_(local_capacity), guard_(io_.get_executor()) {
  if (!cfg_) return;
  client_ = redis::Client::create(io_.get_executor(), *cfg_, [this](bool up, const std::string& why) {
    if (up) core::log().info("ratelimit: redis {}:{} connected", cfg_->host, cfg_->port);
    else core::log().warn("ratelimit: redis {}:{} down ({})", cfg_->host, cfg_->port, why);
  });
  boost::asio::post(io_, [c = client_] { c->start(); });
  thread_ = std::thread([this] { io_.run(); });
}

Counters::~Counters() {
  if (!client_) return;
  std::promise<void> stopped;
  boost::asio::post(io_, [this, &stopped] {
    client_->stop();
    client_.reset();
    stopped.set_value();
  });
  stopped.get_future().wait();
  guard_.reset();
  io_.stop();
  thread_.join();
}

std::vector<std::string> Counters::script_args(const std::string& prefix, const std::vector<Count>& counts, Millis now,
                                               bool by_sha) {
  std::vector<std::string> args{by_sha ? "EVALSHA" : "EVAL", by_sha ? script_sha() : kScript,
                                std::to_string(2 * counts.size())};
  for (const auto& c : counts) {
    int64_t index = position(now, c.window).index;
    args.push_back(fmt::format("{}{}:{}", prefix, c.key, index));
    args.push_back(fmt::format("{}{}:{}", prefix, c.key, index - 1));
  }
  for (const auto& c : counts) args.push_back(std::to_string(2 * std::max<int64_t>(c.window.count(), 1)));
  return args;
}

std::vector<double> Counters::local_hit(const std::vector<Count>& counts, Millis now) {
  std::vector<double> out;
  for (const auto& c : counts) out.push_back(local_.hit(c.key, now, c.window));
  return out;
}

boost::asio::awaitable<std::vector<double>> Counters::hit(std::vector<Count> counts, Millis now) {
  if (!client_ || counts.empty()) co_return local_hit(counts, now);
  auto client = client_;
  redis::Reply r = co_await client->command(script_args(prefix_, counts, now, true));
  if (r.error() && r.str.rfind("NOSCRIPT", 0) == 0) r = co_await client->command(script_args(prefix_, counts, now, false));
  if (r.error()) {
    count_fallback(reason_of(r.str));
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
  int was = farm_.exchange(farm ? 1 : 0);
  if (was == (farm ? 1 : 0)) return;
  if (farm) core::log().info("ratelimit: counting farm-wide in redis {}:{}", cfg_->host, cfg_->port);
  else core::log().warn("ratelimit: redis {}:{} failed ({}): counting on this instance only (fail open)", cfg_->host,
                        cfg_->port, why);
}

std::string Counters::down_reason() const {
  if (!client_) return "";
  return client_->up() ? "" : "not connected: counting on this instance only";
}

}  // namespace filters::ratelimit
