// Connection counting and the in-flight memory budget.
#include "smtpd/limits.h"

#include <fmt/format.h>

#include "core/ip.h"

namespace smtpd {

ConnectionLimiter::Ticket::~Ticket() {
  if (owner_) owner_->release(ip_, keyed_);
}

ConnectionLimiter::Result ConnectionLimiter::acquire(const core::IpAddress& ip, Ticket& t) {
  const core::IpAddress key = ip.network_key();
  std::lock_guard lock(mu_);
  if (count_ >= total_) return Result::TooMany;
  size_t& n = by_ip_[key];
  if (n >= per_ip_) {
    if (n == 0) by_ip_.erase(key);
    return Result::TooManyFromIp;
  }
  ++n;
  ++count_;
  t.owner_ = this;
  t.ip_ = key;
  t.keyed_ = true;
  return Result::Ok;
}

ConnectionLimiter::Result ConnectionLimiter::acquire_total(Ticket& t) {
  std::lock_guard lock(mu_);
  if (count_ >= total_) return Result::TooMany;
  ++count_;
  t.owner_ = this;
  t.keyed_ = false;
  return Result::Ok;
}

ConnectionLimiter::Result ConnectionLimiter::rekey(Ticket& t, const core::IpAddress& ip) {
  const core::IpAddress key = ip.network_key();
  std::lock_guard lock(mu_);
  if (t.owner_ != this || (t.keyed_ && t.ip_ == key)) return Result::Ok;
  size_t& n = by_ip_[key];
  if (n >= per_ip_) {
    if (n == 0) by_ip_.erase(key);
    return Result::TooManyFromIp;
  }
  ++n;
  if (t.keyed_) {
    auto it = by_ip_.find(t.ip_);
    if (it != by_ip_.end() && --it->second == 0) by_ip_.erase(it);
  }
  t.ip_ = key;
  t.keyed_ = true;
  return Result::Ok;
}

void ConnectionLimiter::release(const core::IpAddress& key, bool keyed) {
  std::lock_guard lock(mu_);
  --count_;
  if (!keyed) return;
  auto it = by_ip_.find(key);
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

std::string client_network(const core::IpAddress& ip) {
  return fmt::format("{}/{}", ip.prefix(ip.is_v6() ? 64 : 24).str(), ip.is_v6() ? 64 : 24);
}

}  // namespace smtpd
