// Farm-wide counts per key with a window on Redis, with a local view (redis_window_counts.h).
#include "smtpd/redis_window_counts.h"

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

void count_fallback(const std::string& counts, const char* reason) {
  static const bool described = [] {
    core::describe({"redis_fallbacks_total",
                    "Updates of the farm-wide counts (counts=auth: AUTH failures, counts=rcpt: refused recipients "
                    "per client address) that Redis did not take (down, timeout, error, too many in flight): the "
                    "instance's local count answered alone (fail open), by reason."});
    return true;
  }();
  (void)described;
  core::count(core::labeled_counter("redis_fallbacks_total", core::labels({{"counts", counts}, {"reason", reason}})));
}

// What the log says is counted.
const char* described(const std::string& name) {
  return name == "auth" ? "AUTH failure counts" : name == "rcpt" ? "refused-recipient counts" : "counts";
}

const char* reason_of(const std::string& error) {
  if (error.find("timeout") != std::string::npos) return "timeout";
  if (error.find("not connected") != std::string::npos || error.find("connection lost") != std::string::npos) return "down";
  if (error.find("in flight") != std::string::npos) return "inflight";
  return "error";
}

}  // namespace

RedisWindowCounts::RedisWindowCounts(redis::ClientConfig cfg, const std::string& prefix, std::string name,
                                     const std::string& channel, size_t capacity)
    : name_(std::move(name)), prefix_(prefix + name_ + ":"), channel_(prefix + channel), cfg_(std::move(cfg)),
      local_(capacity),
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

RedisWindowCounts::~RedisWindowCounts() {
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

void RedisWindowCounts::on_state(const char* which, bool up, const std::string& why) {
  std::lock_guard lock(state_mu_);
  bool was = cmd_up_ && sub_up_;
  (std::string_view(which) == "commands" ? cmd_up_ : sub_up_) = up;
  bool now = cmd_up_ && sub_up_;
  if (!up) down_why_ = std::string(which) + ": " + why;
  if (was == now) return;
  if (now)
    core::log().info("redis {} up ({}): {} are farm-wide", redis::display_name(cfg_), why, described(name_));
  else
    core::log().warn("redis {} down ({}): {} are this instance's only", redis::display_name(cfg_), down_why_,
                     described(name_));
}

bool RedisWindowCounts::up() const {
  std::lock_guard lock(state_mu_);
  return cmd_up_ && sub_up_;
}

std::string RedisWindowCounts::down_reason() const {
  std::lock_guard lock(state_mu_);
  return cmd_up_ && sub_up_ ? "" : down_why_;
}

core::Dependency RedisWindowCounts::dependency() const {
  core::Dependency d;
  d.kind = "redis";
  d.name = redis::display_name(cfg_);
  d.passive = [this] { return down_reason(); };
  return d;
}

size_t RedisWindowCounts::count(const std::string& key, CountsClock::time_point now) {
  auto e = local_.get(key, now);
  return e ? e->n : 0;
}

void RedisWindowCounts::set_local(const std::string& key, size_t n, CountsClock::duration ttl) {
  std::lock_guard lock(update_mu_);
  auto expires = CountsClock::now() + (n ? ttl : CountsClock::duration::zero());
  local_.put(key, Entry{n, expires}, expires);
}

void RedisWindowCounts::add(const std::string& key, CountsClock::time_point now, CountsClock::duration window) {
  {
    std::lock_guard lock(update_mu_);
    auto e = local_.get(key, now);
    local_.put(key, Entry{e ? e->n + 1 : 1, now + window}, now + window);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(window).count();
  run_script(kAddScript, key, std::to_string(std::max<int64_t>(ms, 1)));
}

void RedisWindowCounts::forgive(const std::string& key, size_t n, CountsClock::time_point now) {
  {
    std::lock_guard lock(update_mu_);
    auto e = local_.get(key, now);
    if (e) local_.put(key, Entry{e->n > n ? e->n - n : 0, e->expires}, e->n > n ? e->expires : now);
  }
  run_script(kForgiveScript, key, std::to_string(n));
}

// The published count wins over the local one (the message also answers this instance's own update).
void RedisWindowCounts::run_script(const char* script, const std::string& key, const std::string& arg) {
  cmd_->submit({"EVAL", script, "1", prefix_ + key, arg, channel_}, [name = name_](redis::Reply r) {
    if (r.error()) count_fallback(name, reason_of(r.str));
  });
}

// "<count> <ttl ms> <prefix><key>"
void RedisWindowCounts::on_message(const std::string& payload) {
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

// Raw pointers, like each store's own dependency: the snapshot keeps the stores as long as the monitor runs.
core::Dependency FarmCounts::dependency() const {
  core::Dependency d = auth->dependency();
  d.passive = [a = auth.get(), r = rcpt.get()] {
    std::string why = a->down_reason();
    return why.empty() ? r->down_reason() : why;
  };
  return d;
}

}  // namespace smtpd
