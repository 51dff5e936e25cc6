// net::Watchdog: one timer wait always pending between start() and stop(); each wake-up checks the
// armed deadline against the clock, fires on_expiry when it passed, and waits again for the
// earlier of the armed deadline and the horizon.
#include "net/deadline.h"

namespace net {

void Watchdog::start(std::shared_ptr<void> owner, std::function<void()> on_expiry, Clock::time_point horizon) {
  on_expiry_ = std::move(on_expiry);
  horizon_ = horizon;
  stopped_ = false;
  timer_.expires_at(horizon_);
  wait(std::move(owner));
}

void Watchdog::stop() {
  stopped_ = true;
  timer_.cancel();
}

void Watchdog::wait(std::shared_ptr<void> owner) {
  timer_.async_wait([this, owner = std::move(owner)](boost::system::error_code) mutable { on_wake(std::move(owner)); });
}

// Runs on every expiry and on every early re-arm (the wait it replaced ends as cancelled).
void Watchdog::on_wake(std::shared_ptr<void> owner) {
  if (stopped_) return;
  auto now = Clock::now();
  if (now >= target_) {
    timed_out_ = true;
    target_ = Clock::time_point::max();
    on_expiry_();
    if (stopped_) return;  // on_expiry stopped the watch
  }
  // Past the horizon with nothing armed: look again each second (an arm() then fires at once).
  timer_.expires_at(std::min(target_, horizon_ > now ? horizon_ : now + std::chrono::seconds(1)));
  wait(std::move(owner));
}

}  // namespace net
