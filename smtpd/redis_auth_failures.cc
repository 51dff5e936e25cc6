// Farm-wide AUTH failure counts on Redis with a local view (redis_auth_failures.h).
#include "smtpd/redis_auth_failures.h"

#include <boost/asio/post.hpp>
#include <charconv>
#include <future>

#include "core/log.h"
#include "core/metrics.h"

namespace smtpd {
namespace {

// KEYS[1] the key; ARGV[1] the window in ms; ARGV[2] the channel. Returns the farm-wide count.
constexpr const char* kAddScript =
    "local n = redis.call('INCR', KEYS[1]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[1]) "
    "redis.call('PUBLISH', ARGV[2], n .. ' ' .. ARGV[1] .. ' ' .. KEYS[1]) "
    "return n";
// KEYS[1] the key; ARGV[1] how many to forgive; ARGV[2] the channel.
constexpr const char* kForgiveScript =
    "local n = redis.call('DECRBY', KEYS[1], ARGV[1]) "
    "local ttl = redis.call('PTTL', KEYS[1]) "
    "if n <= 0 or ttl <= 0 then redis.call('DEL', KEYS[1]) n = 0 ttl = 0 end "
    "redis.call('PUBLISH', ARGV[2], n .. ' ' .. ttl .. ' ' .. KEYS[1]) "
    "return n";

void count_fallback(const char* reason) {
  static const bool described = [] {
    core::describe({"redis_fallbacks_total",
                    "Updates of the farm-wide AUTH failure counts that Redis did not take (down, timeout, error, "
                    "too many in flight): the instance's local count answered alone (fail open), by reason."});
    return true;
  }();
  (void)described;
  core::count(core::labeled_counter("redis_fallbacks_total", core::labels({{"reason", reason}})));
}

const char* reason_of(const std::string& error) {
  if (error.find("timeout") != std::string::npos) return "timeout";
  if (error.find("not connected") != std::string::npos || error.find("connection lost") != std::string::npos) return "down";
  if (error.find("in flight") != std::string::npos) return "inflight";
  return "error";
}

}  // namespace

RedisAuthFailures::RedisAuthFailures(redis::ClientConfig cfg, std::string prefix, size_t capacity)
    : prefix_(prefix + "auth:"), channel_(prefix + "auth-failures"), cfg_(std::move(cfg)), local_(capacity),
      guard_(io_.get_executor()) {
  cmd_ = redis::Client::create(io_.get_executor(), cfg_,
                               [this](bool up, const std::string& why) { on_state("commands", up, why); });
  sub_ = redis::Client::create(io_.get_executor(), cfg_,
                               [this](bool up, const std::string& why) { on_state("subscription", up, why); });
  sub_->subscribe(channel_, [this](const std::string& m) { on_message(m); });
  boost::asio::post(io_, [this] {
    cmd_->start();
    sub_->start();
  });
  thread_ = std::thread([this] { io_.run(); });
}

RedisAuthFailures::~RedisAuthFailures() {
  std::promise<void> stopped;
  boost::asio::post(io_, [this, &stopped] {
    cmd_->stop();
    sub_->stop();
    cmd_.reset();
    sub_.reset();
    stopped.set_value();
  });
  stopped.get_future().wait();
  guard_.reset();
  io_.stop();
  thread_.join();
}

void RedisAuthFailures::on_state(const char* which, bool up, const std::string& why) {
  std::lock_guard lock(state_mu_);
  bool was = cmd_up_ && sub_up_;
  (std::string_view(which) == "commands" ? cmd_up_ : sub_up_) = up;
  bool now = cmd_up_ && sub_up_;
  if (!up) down_why_ = std::string(which) + ": " + why;
  if (was == now) return;
  if (now)
    core::log().info("redis {} up ({}): AUTH failure counts are farm-wide", redis::display_name(cfg_), why);
  else
    core::log().warn("redis {} down ({}): AUTH failure counts are this instance's only", redis::display_name(cfg_), down_why_);
}

bool RedisAuthFailures::up() const {
  std::lock_guard lock(state_mu_);
  return cmd_up_ && sub_up_;
}

std::string RedisAuthFailures::down_reason() const {
  std::lock_guard lock(state_mu_);
  return cmd_up_ && sub_up_ ? "" : down_why_;
}

core::Dependency RedisAuthFailures::dependency() const {
  core::Dependency d;
  d.kind = "redis";
  d.name = redis::display_name(cfg_);
  d.passive = [this] { return down_reason(); };
  return d;
}

size_t RedisAuthFailures::count(const std::string& key, AuthClock::time_point now) {
  auto e = local_.get(key, now);
  return e ? e->failures : 0;
}

void RedisAuthFailures::set_local(const std::string& key, size_t failures, AuthClock::duration ttl) {
  std::lock_guard lock(update_mu_);
  auto expires = AuthClock::now() + (failures ? ttl : AuthClock::duration::zero());
  local_.put(key, Entry{failures, expires}, expires);
}

void RedisAuthFailures::add(const std::string& key, AuthClock::time_point now, AuthClock::duration window) {
  {
    std::lock_guard lock(update_mu_);
    auto e = local_.get(key, now);
    local_.put(key, Entry{e ? e->failures + 1 : 1, now + window}, now + window);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(window).count();
  run_script(kAddScript, key, std::to_string(std::max<int64_t>(ms, 1)));
}

void RedisAuthFailures::forgive(const std::string& key, size_t n, AuthClock::time_point now) {
  {
    std::lock_guard lock(update_mu_);
    auto e = local_.get(key, now);
    if (e) local_.put(key, Entry{e->failures > n ? e->failures - n : 0, e->expires}, e->failures > n ? e->expires : now);
  }
  run_script(kForgiveScript, key, std::to_string(n));
}

// The published count wins over the local one (the message also answers this instance's own update).
void RedisAuthFailures::run_script(const char* script, const std::string& key, const std::string& arg) {
  cmd_->submit({"EVAL", script, "1", prefix_ + key, arg, channel_}, [](redis::Reply r) {
    if (r.error()) count_fallback(reason_of(r.str));
  });
}

// "<count> <ttl ms> <prefix><key>"
void RedisAuthFailures::on_message(const std::string& payload) {
  auto sp1 = payload.find(' ');
  auto sp2 = sp1 == std::string::npos ? sp1 : payload.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return;
  size_t n = 0;
  int64_t ttl = 0;
  if (std::from_chars(payload.data(), payload.data() + sp1, n).ec != std::errc{}) return;
  if (std::from_chars(payload.data() + sp1 + 1, payload.data() + sp2, ttl).ec != std::errc{}) return;
  std::string_view full(payload);
  full.remove_prefix(sp2 + 1);
  if (full.substr(0, prefix_.size()) != prefix_) return;
  set_local(std::string(full.substr(prefix_.size())), n, std::chrono::milliseconds(std::max<int64_t>(ttl, 0)));
}

}  // namespace smtpd
