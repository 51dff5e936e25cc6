// Connection counting and the in-flight memory budget.
#include "smtpd/limits.h"

#include <fmt/format.h>

#include "core/ip.h"

namespace smtpd {

ConnectionLimiter::Ticket::~Ticket() {
  if (owner_) owner_->release(ip_);
}

ConnectionLimiter::Result ConnectionLimiter::acquire(const std::string& ip, Ticket& t) {
  std::lock_guard lock(mu_);
  if (count_ >= total_) return Result::TooMany;
  size_t& n = by_ip_[ip];
  if (n >= per_ip_) {
    if (n == 0) by_ip_.erase(ip);
    return Result::TooManyFromIp;
  }
  ++n;
  ++count_;
  t.owner_ = this;
  t.ip_ = ip;
  return Result::Ok;
}

ConnectionLimiter::Result ConnectionLimiter::acquire_total(Ticket& t) {
  std::lock_guard lock(mu_);
  if (count_ >= total_) return Result::TooMany;
  ++count_;
  t.owner_ = this;
  t.ip_.clear();
  return Result::Ok;
}

ConnectionLimiter::Result ConnectionLimiter::rekey(Ticket& t, const std::string& ip) {
  std::lock_guard lock(mu_);
  if (t.owner_ != this || t.ip_ == ip) return Result::Ok;
  size_t& n = by_ip_[ip];
  if (n >= per_ip_) {
    if (n == 0) by_ip_.erase(ip);
    return Result::TooManyFromIp;
  }
  ++n;
  if (!t.ip_.empty()) {
    auto it = by_ip_.find(t.ip_);
    if (it != by_ip_.end() && --it->second == 0) by_ip_.erase(it);
  }
  t.ip_ = ip;
  return Result::Ok;
}

void ConnectionLimiter::release(const std::string& ip) {
  std::lock_guard lock(mu_);
  --count_;
  if (ip.empty()) return;
  auto it = by_ip_.find(ip);
  if (it != by_ip_.end() && --it->second == 0) by_ip_.erase(it);
}

size_t ConnectionLimiter::current() const {
  std::lock_guard lock(mu_);
  return count_;
}

bool MemoryBudget::reserve(size_t n) {
  size_t cur = used_.load(std::memory_order_relaxed);
  do {
    if (cur + n > limit_) return false;
  } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
  return true;
}

bool MemoryBudget::reserve(const std::string& client, size_t n) {
  if (client.empty() || per_client_ == 0) return reserve(n);
  std::lock_guard lock(mu_);
  size_t& mine = by_client_[client];
  if (mine + n > per_client_ || !reserve(n)) {
    if (mine == 0) by_client_.erase(client);
    return false;
  }
  mine += n;
  return true;
}

void MemoryBudget::release(const std::string& client, size_t n) {
  release(n);
  if (client.empty() || per_client_ == 0 || n == 0) return;
  std::lock_guard lock(mu_);
  auto it = by_client_.find(client);
  if (it == by_client_.end()) return;
  it->second -= std::min(n, it->second);
  if (it->second == 0) by_client_.erase(it);
}

size_t MemoryBudget::used_by(const std::string& client) const {
  std::lock_guard lock(mu_);
  auto it = by_client_.find(client);
  return it == by_client_.end() ? 0 : it->second;
}

bool MemoryBudget::room_for(const std::string& client, size_t n) const {
  if (used() + n > limit_) return false;
  return client.empty() || per_client_ == 0 || used_by(client) + n <= per_client_;
}

void Reservation::set_client(std::string client) {
  if (held_ == 0) client_ = std::move(client);
}

bool Reservation::update(size_t want) {
  if (want <= held_) {
    b_.release(client_, held_ - want);
    held_ = want;
    return true;
  }
  if (!b_.reserve(client_, want - held_)) return false;
  held_ = want;
  return true;
}

std::string client_network(const std::string& ip) {
  auto a = core::parse_ip(ip);
  if (!a) return ip;
  const auto& b = a->bytes;
  if (!a->v6) return fmt::format("{}.{}.{}.0/24", b[0], b[1], b[2]);
  return fmt::format("{:x}:{:x}:{:x}:{:x}::/64", b[0] << 8 | b[1], b[2] << 8 | b[3], b[4] << 8 | b[5], b[6] << 8 | b[7]);
}

}  // namespace smtpd
