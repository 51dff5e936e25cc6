// Connection counting and the in-flight memory budget.
#include "smtpd/limits.h"

namespace smtpd {

ConnectionLimiter::Ticket::~Ticket() {
  if (owner_) owner_->release(ip_);
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
  return Result::Ok;
}

void ConnectionLimiter::release(const core::IpAddress& key) {
  std::lock_guard lock(mu_);
  --count_;
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

bool Reservation::update(size_t want) {
  if (want <= held_) {
    b_.release(held_ - want);
    held_ = want;
    return true;
  }
  if (!b_.reserve(want - held_)) return false;
  held_ = want;
  return true;
}

}  // namespace smtpd
